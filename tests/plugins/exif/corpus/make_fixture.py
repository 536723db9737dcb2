"""Record exiftool's answers for the EXIF agreement corpus (run on demand, never in CI).

    python tests/plugins/exif/corpus/make_fixture.py      # needs exiftool on PATH

Runs exiftool once over ``files/`` and writes ``fixture.json``: for every file, the tags
exiftool printed (``-j -n -G1 -a``: JSON, numbers unformatted, every group, duplicates
kept) and the eight values the agreement test compares, reduced from them by the rules
below. It also records, for each file in ``fallback/``, exactly what the plugin's own
exiftool fallback command prints for it, so the fallback can be tested with a fake
``exiftool`` that replays it.

The reduction is written here, apart from the plugin, on purpose: the fixture is the
reference the plugin is measured against, so it must not share the plugin's code.

Rules (a value that is missing, empty or not a positive number counts as no value):

- make, model: ``IFD0`` (EXIF), then ``ExifIFD``, then any other group exiftool found
  it in (Canon CIFF, maker notes, XMP), trimmed.
- date_taken: DateTimeOriginal (EXIF, then XMP's ``exif:DateTimeOriginal`` and
  ``photoshop:DateCreated``), else CreateDate (EXIF DateTimeDigitized, then XMP's
  ``xmp:CreateDate``), else ModifyDate (EXIF DateTime only: an edit date is a poor
  capture date, so XMP's is not taken), else the DateTimeOriginal of another group
  (Canon CIFF, APP12 picture info, maker notes). Compared as wall-clock time
  ``YYYY-MM-DDTHH:MM:SS`` (offsets and sub-seconds dropped; a date without a time, as
  XMP allows, is midnight).
- gps: ``Composite:GPSLatitude`` / ``Composite:GPSLongitude`` (signed degrees).
- iso: EXIF ``ISO`` unless 65535 ("saturated"), then EXIF ``ISOSpeed``,
  ``RecommendedExposureIndex``, then XMP's ``ISO``, then ``Composite:ISO`` (exiftool's
  Canon reading: CameraISO, else BaseISO x AutoISO / 100), then a maker note's ISO;
  rounded to an integer as exiftool prints it.
- f_number: EXIF ``FNumber``, else ``Composite:Aperture`` (FNumber or the APEX
  ApertureValue of any group).
- exposure: EXIF ``ExposureTime`` in seconds, else ``Composite:ShutterSpeed``.
- focal_length: EXIF ``FocalLength`` in mm, else any other group's.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
FALLBACK = HERE / "fallback"
FIXTURE = HERE / "fixture.json"

TAGS = (
    "Make",
    "Model",
    "DateTimeOriginal",
    "DateCreated",
    "CreateDate",
    "ModifyDate",
    "GPSLatitude",
    "GPSLongitude",
    "ISO",
    "ISOSpeed",
    "RecommendedExposureIndex",
    "FNumber",
    "Aperture",
    "ExposureTime",
    "ShutterSpeed",
    "FocalLength",
)
COMMAND = ["exiftool", "-j", "-n", "-G1", "-a", "-r", *(f"-{tag}" for tag in TAGS)]

EXIF_GROUPS = ("IFD0", "ExifIFD")


def _values(found: dict[str, Any], tag: str) -> list[tuple[str, Any]]:
    """(group, value) for every group that has ``tag``, in exiftool's output order."""
    return [
        (key.split(":", 1)[0], value)
        for key, value in found.items()
        if ":" in key and key.split(":", 1)[1] == tag
    ]


def _in(found: dict[str, Any], tag: str, groups: tuple[str, ...] | None) -> list[Any]:
    """Values of ``tag`` from ``groups`` (in that order); None = every other group."""
    pairs = _values(found, tag)
    if groups is None:
        return [v for g, v in pairs if g not in EXIF_GROUPS and not g.startswith("XMP")]
    return [v for name in groups for g, v in pairs if g == name or g.startswith(name + "-")]


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(value: Any) -> float | None:
    """A positive number; for a list-like "0 800" (Nikon's ISO) the last one."""
    if isinstance(value, str):
        parts = value.split()
        value = parts[-1] if parts else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def _wall_clock(value: Any) -> str | None:
    match = _DATE.match(str(value).strip()) if value is not None else None
    if not match or match[1] == "0000":
        return None
    year, month, day, hour, minute, second = match.groups()
    return f"{year}-{month}-{day}T{hour or '00'}:{minute or '00'}:{second or '00'}"


def _first(candidates: list[Any], convert: Any) -> Any:
    for value in candidates:
        converted = convert(value)
        if converted is not None:
            return converted
    return None


def expected(found: dict[str, Any]) -> dict[str, Any]:
    """The eight compared values from one file's exiftool output (see the module doc)."""

    def text_field(tag: str) -> str | None:
        return _first(
            _in(found, tag, ("IFD0",)) + _in(found, tag, ("ExifIFD",)) + _in(found, tag, None)
            + _in(found, tag, ("XMP",)),
            _text,
        )  # fmt: skip

    date = _first(
        _in(found, "DateTimeOriginal", EXIF_GROUPS) + _in(found, "DateTimeOriginal", ("XMP",))
        + _in(found, "DateCreated", ("XMP",)) + _in(found, "CreateDate", EXIF_GROUPS)
        + _in(found, "CreateDate", ("XMP",)) + _in(found, "ModifyDate", EXIF_GROUPS)
        + _in(found, "DateTimeOriginal", None),
        _wall_clock,
    )  # fmt: skip

    lat = _first(_in(found, "GPSLatitude", ("Composite",)), lambda v: v)
    lon = _first(_in(found, "GPSLongitude", ("Composite",)), lambda v: v)

    def valid_iso(value: Any) -> float | None:
        number = _number(value)
        return number if number is not None and number != 65535 else None

    iso = _first(
        _in(found, "ISO", ("ExifIFD",)) + _in(found, "ISOSpeed", ("ExifIFD",))
        + _in(found, "RecommendedExposureIndex", ("ExifIFD",)) + _in(found, "ISO", ("XMP",))
        + _in(found, "ISO", ("Composite",)) + _in(found, "ISO", None),
        valid_iso,
    )  # fmt: skip
    f_number = _first(
        _in(found, "FNumber", ("ExifIFD",)) + _in(found, "Aperture", ("Composite",)), _number
    )
    exposure = _first(
        _in(found, "ExposureTime", ("ExifIFD",)) + _in(found, "ShutterSpeed", ("Composite",)),
        _number,
    )
    focal = _first(
        _in(found, "FocalLength", ("ExifIFD",)) + _in(found, "FocalLength", None), _number
    )
    return {
        "make": text_field("Make"),
        "model": text_field("Model"),
        "date_taken": date,
        "gps": [float(lat), float(lon)] if lat is not None and lon is not None else None,
        "iso": round(iso) if iso is not None else None,
        "f_number": f_number,
        "exposure": exposure,
        "focal_length": focal,
    }


def run(command: list[str], cwd: Path) -> list[dict[str, Any]]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, check=False, text=True)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        sys.exit(f"exiftool failed ({done.returncode}): {done.stderr.strip()}")
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def main() -> None:
    version = subprocess.run(
        ["exiftool", "-ver"], capture_output=True, text=True, check=True
    ).stdout.strip()
    files: dict[str, Any] = {}
    for entry in sorted(run([*COMMAND, "."], FILES), key=lambda e: e["SourceFile"]):
        name = entry.pop("SourceFile").removeprefix("./")
        files[name] = {"exiftool": entry, "expected": expected(entry)}
    sys.path.insert(0, str(HERE.parents[3]))
    from plugins.exif import exiftool as fallback  # the plugin's exact fallback command

    replay = {
        path.name: run(["exiftool", *fallback.ARGS, path.name], FALLBACK)
        for path in sorted(FALLBACK.iterdir())
        if path.is_file()
    }
    fixture = {
        "about": "exiftool's answers for the EXIF agreement corpus; see make_fixture.py",
        "exiftool_version": version,
        "exiftool_command": " ".join([*COMMAND, "."]) + "   (run in files/)",
        "fallback_command": " ".join(["exiftool", *fallback.ARGS, "FILE"]),
        "files": files,
        "fallback": replay,
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(files)} files, {len(replay)} fallback samples -> {FIXTURE}")


if __name__ == "__main__":
    main()
