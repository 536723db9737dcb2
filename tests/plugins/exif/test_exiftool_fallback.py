"""exiftool as the last resort, with a fake ``exiftool`` on PATH that replays what the
real one printed (``corpus/fixture.json``, "fallback", recorded by
``corpus/make_fixture.py`` with the plugin's own command) for a real JPEG XL file, a
format none of our readers opens. CI needs no exiftool; one test compares the
recording with the real exiftool where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from kernel.testing import harness
from plugins.exif import exiftool
from plugins.exif.extract import extract

CORPUS = Path(__file__).parent / "corpus"
SAMPLE = CORPUS / "fallback" / "test_0001.jxl"
FIXTURE = json.loads((CORPUS / "fixture.json").read_text())
REPLAY = FIXTURE["fallback"][SAMPLE.name]
FLAGS = FIXTURE["fallback_command"].split()[1:-1]  # between "exiftool" and the file

FAKE = """#!{python}
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
mode = {mode!r}
if mode == "fail":
    sys.stderr.write("Error: something went wrong\\n")
    sys.exit(1)
if mode == "garbage":
    print("[{{not json")
    sys.exit(0)
if sys.argv[1:-1] != {flags!r}:
    sys.exit(2)  # not the command the replay was recorded with
with open({replay!r}) as recorded:
    entries = json.load(recorded)
for entry in entries:
    entry["SourceFile"] = sys.argv[-1]
print(json.dumps(entries, indent=2))
"""

Fake = Callable[..., Path]


@pytest.fixture
def fake_exiftool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    """Put a fake ``exiftool`` alone on PATH; returns the log of its calls."""

    def install(mode: str = "replay") -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        log = tmp_path / "exiftool-calls.log"
        replay = tmp_path / "replay.json"
        replay.write_text(json.dumps(REPLAY))
        script = bin_dir / "exiftool"
        script.write_text(
            FAKE.format(
                python=sys.executable, log=str(log), mode=mode, flags=FLAGS, replay=str(replay)
            )
        )
        script.chmod(0o755)
        monkeypatch.setenv("PATH", str(bin_dir))
        return log

    return install


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_file_no_reader_opens_is_read_by_exiftool(tmp_path: Path, fake_exiftool: Fake) -> None:
    log = fake_exiftool()
    path = tmp_path / "drone.jxl"
    shutil.copyfile(SAMPLE, path)
    data = extract(path, "photo", 1_000_000_000.0)
    assert (data.camera_make, data.camera_model) == ("Lab 308", "Smart Pilot Cam")
    assert (data.date_taken, data.date_source) == (
        datetime(2025, 8, 15, 22, 25, 54),
        "DateTimeOriginal",
    )
    assert (data.gps_lat, data.gps_lon, data.gps_alt) == pytest.approx(
        (44.0603785, -121.314136, 2019.847)
    )
    assert data.focal_length == 14.0
    assert calls(log) == [[*FLAGS, str(path.resolve())]]


def test_files_our_readers_open_never_start_exiftool(tmp_path: Path, fake_exiftool: Fake) -> None:
    log = fake_exiftool()
    plain = tmp_path / "screenshot.png"
    Image.new("RGB", (8, 8)).save(plain)  # readable, just without metadata
    for path in (
        CORPUS / "files" / "jpg" / "exif-org" / "canon-ixus.jpg",
        CORPUS / "files" / "jpg" / "PaintTool_sample.jpg",
        CORPUS / "files" / "heic" / "samplefilehub.heif",
        plain,
    ):
        extract(path, "photo", 0.0)
    assert calls(log) == []


def test_without_exiftool_such_a_file_is_dated_by_its_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    data = extract(SAMPLE, "photo", 1_000_000_000.0)
    assert (data.camera_make, data.date_source) == (None, "mtime")
    assert data.date_taken == datetime(2001, 9, 9, 1, 46, 40)


@pytest.mark.parametrize("mode", ["fail", "garbage"])
def test_a_failing_exiftool_costs_nothing_but_its_answer(fake_exiftool: Fake, mode: str) -> None:
    log = fake_exiftool(mode)
    data = extract(SAMPLE, "photo", 1_000_000_000.0)
    assert (data.camera_make, data.date_source) == (None, "mtime")
    assert len(calls(log)) == 1


@pytest.mark.db
def test_ingest_uses_the_fallback_in_its_workers(
    tmp_path: Path, library: Path, fake_exiftool: Fake
) -> None:
    """A Minolta MRW (none of our readers opens it) through a real scan: the worker
    processes inherit PATH and ask exiftool."""
    log = fake_exiftool()
    (library / "old.mrw").write_bytes(b"\x00MRM" + bytes(range(256)) * 8)
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        body = h.get("/image/metadata", params={"path": "old.mrw"}).json()
    assert body["exif_status"] == "ok"
    assert (body["exif"]["camera_make"], body["date_taken"]) == ("Lab 308", "2025-08-15T22:25:54")
    assert body["exif"]["gps"]["lat"] == pytest.approx(44.0603785)
    assert len(calls(log)) == 1


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_the_recording_is_what_exiftool_prints_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where exiftool is installed: the replayed answer is still the real one."""
    real = [d for d in os.environ["PATH"].split(os.pathsep) if not d.endswith("exiftool-stub")]
    monkeypatch.setenv("PATH", os.pathsep.join(real))
    found = exiftool.run(SAMPLE)
    assert found is not None
    expected = dict(REPLAY[0])
    expected.pop("SourceFile")
    found.pop("SourceFile")
    assert found == expected
