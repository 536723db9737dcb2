"""How closely the extractor agrees with exiftool on real camera files.

``corpus/files`` holds real JPEG, HEIC, AVIF, TIFF, DNG and ARW files from public sample
collections (see ``corpus/LICENSE.md``); ``corpus/fixture.json`` holds what exiftool
read from each (``corpus/make_fixture.py`` makes it, on demand; CI needs no exiftool).
Every file is read with ``extract``, the function ingest runs in its workers, and
compared field by field:

- make, model: trimmed, case-sensitive;
- date_taken: wall-clock ``YYYY-MM-DDTHH:MM:SS`` (a date from the file name or the
  mtime counts as no date);
- gps: latitude and longitude each within 1e-5 degrees;
- iso: the same integer;
- f_number, focal_length: within 1e-3 relative, or the same at exiftool's display
  precision (one decimal);
- exposure: seconds within 1e-3 relative, or the same as exiftool prints it (1/250).

A field counts when either side has a value; it agrees when both have the same one.
Missing on one side, or different, is a disagreement. The goal is at least 98 % of the
fields that count; the report lists every disagreement.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugins.exif.extract import ExifData, extract

CORPUS = Path(__file__).parent / "corpus"
FIELDS = ("make", "model", "date_taken", "gps", "iso", "f_number", "exposure", "focal_length")
GOAL = 0.98


def fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / "fixture.json").read_text())
    return data


def ours(data: ExifData) -> dict[str, Any]:
    """Our reading of a file in the fixture's terms."""
    dated = data.date_taken is not None and data.date_source not in ("mtime", "filename")
    has_gps = data.gps_lat is not None and data.gps_lon is not None
    return {
        "make": data.camera_make,
        "model": data.camera_model,
        "date_taken": data.date_taken.replace(microsecond=0).isoformat()
        if dated and data.date_taken
        else None,
        "gps": [data.gps_lat, data.gps_lon] if has_gps else None,
        "iso": data.iso,
        "f_number": data.aperture,
        "exposure": data.exposure_seconds,
        "focal_length": data.focal_length,
    }


def _exposure_text(seconds: float) -> str:
    """exiftool's PrintExposureTime."""
    if 0 < seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    return f"{seconds:.1f}".removesuffix(".0")


def _close(display: Callable[[float], str]) -> Callable[[Any, Any], bool]:
    def same(expected: float, got: float) -> bool:
        return math.isclose(expected, got, rel_tol=1e-3) or display(expected) == display(got)

    return same


SAME: dict[str, Callable[[Any, Any], bool]] = {
    "make": lambda e, g: e.strip() == g.strip(),
    "model": lambda e, g: e.strip() == g.strip(),
    "date_taken": lambda e, g: e == g,
    "gps": lambda e, g: abs(e[0] - g[0]) <= 1e-5 and abs(e[1] - g[1]) <= 1e-5,
    "iso": lambda e, g: int(e) == int(g),
    "f_number": _close(lambda v: f"{v:.1f}"),
    "exposure": _close(_exposure_text),
    "focal_length": _close(lambda v: f"{v:.1f}"),
}


def measure(readings: dict[str, dict[str, Any]], expected: dict[str, Any]) -> dict[str, Any]:
    """Per field: how many counted and agreed; and every disagreement."""
    counted = dict.fromkeys(FIELDS, 0)
    agreed = dict.fromkeys(FIELDS, 0)
    wrong: list[tuple[str, str, Any, Any]] = []
    for name, got in readings.items():
        want = expected[name]["expected"]
        for field in FIELDS:
            e, g = want[field], got[field]
            if e is None and g is None:
                continue
            counted[field] += 1
            if e is not None and g is not None and SAME[field](e, g):
                agreed[field] += 1
            else:
                wrong.append((name, field, e, g))
    return {"counted": counted, "agreed": agreed, "wrong": wrong, "files": len(readings)}


def report(result: dict[str, Any]) -> tuple[float, str]:
    counted, agreed = result["counted"], result["agreed"]
    total = sum(counted.values())
    rate = sum(agreed.values()) / total if total else 1.0
    pairs = result["files"] * len(FIELDS)
    both_empty = pairs - total
    lines = [
        f"agreement with exiftool: {sum(agreed.values())}/{total} = {rate:.1%} of the fields"
        f" either side has ({(sum(agreed.values()) + both_empty) / pairs:.1%} of all {pairs}"
        " file x field pairs, counting those both leave empty as agreeing)"
    ]
    for field in FIELDS:
        share = agreed[field] / counted[field] if counted[field] else 1.0
        lines.append(f"  {field:13s} {agreed[field]:3d}/{counted[field]:3d} = {share:6.1%}")
    if result["wrong"]:
        lines.append("disagreements (file, field, exiftool, ours):")
        lines += [f"  {n}  {f}: {e!r} != {g!r}" for n, f, e, g in result["wrong"]]
    return rate, "\n".join(lines)


@pytest.fixture
def no_exiftool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own readers only: the exiftool fallback stays out of the measurement."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_the_fixture_covers_exactly_the_corpus_files() -> None:
    on_disk = {
        p.relative_to(CORPUS / "files").as_posix()
        for p in (CORPUS / "files").rglob("*")
        if p.is_file()
    }
    assert set(fixture()["files"]) == on_disk


@pytest.mark.usefixtures("no_exiftool")
def test_agreement_with_exiftool_on_real_camera_files() -> None:
    expected = fixture()["files"]
    readings = {
        name: ours(extract(CORPUS / "files" / name, "photo", 0.0)) for name in sorted(expected)
    }
    rate, text = report(measure(readings, expected))
    print(text)
    assert rate >= GOAL, text
