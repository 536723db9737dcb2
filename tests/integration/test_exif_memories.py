"""Memories dated by the exif plugin: EXIF and container dates (with their offsets) through
exif's ``date_taken_table`` and its ``month_day`` column, items carrying exif's extras,
and files exif has not read yet left out until it has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kernel.media.ffmpeg import run_ffmpeg
from kernel.testing import Harness, harness, make_jpeg

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("exif", "memories")]


def make_clip(path: Path, creation_time: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        ["-f", "lavfi", "-i", "color=c=blue:s=64x48:d=0.2:r=5", "-c:v", "mpeg4",
         "-metadata", f"creation_time={creation_time}", "-y", str(path)],
        timeout=60,
    )  # fmt: skip
    return path


def with_offset(path: Path, when: str, offset: str) -> Path:
    """A JPEG whose EXIF records the capture time and its UTC offset."""
    ex = Image.Exif()
    ex[0x010F] = "Canon"
    sub = ex.get_ifd(0x8769)
    sub[0x9003], sub[0x9011] = when, offset
    loaded = Image.Exif()
    loaded.load(ex.tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), "olive").save(path, "JPEG", exif=loaded)
    return path


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    base = tmp_path_factory.mktemp("exif-memories")
    library = base / "library"
    make_jpeg(library / "2024/nov25.jpg", taken=datetime(2024, 11, 25, 10, 0), make="Apple")
    make_jpeg(library / "2022/nov23.jpg", taken=datetime(2022, 11, 23, 12, 0))
    make_jpeg(library / "2024/nov30.jpg", taken=datetime(2024, 11, 30, 9, 0))  # next week
    with_offset(library / "2021/oslo.jpg", "2021:11:26 23:30:00", "+01:00")
    make_clip(library / "2023/clip.mp4", "2023-11-24T10:00:00Z")
    with harness(base, ["exif", "memories"], library=library) as h:
        h.scan()
        yield h


def memories(h: Harness, **params: Any) -> dict[str, Any]:
    response = h.get("/memories", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_week_dated_by_exif(h: Harness) -> None:
    body = memories(h, date="2026-11-23")
    assert body["dates_from"] == "date_taken_table"
    assert [
        (group["year"], [item["path"] for item in group["items"]]) for group in body["years"]
    ] == [
        (2024, ["2024/nov25.jpg"]),
        (2023, ["2023/clip.mp4"]),
        (2022, ["2022/nov23.jpg"]),
        (2021, ["2021/oslo.jpg"]),
    ]
    items = {item["path"]: item for group in body["years"] for item in group["items"]}
    assert items["2021/oslo.jpg"]["date_taken"] == "2021-11-26T23:30:00+01:00"
    assert items["2023/clip.mp4"]["date_taken"] == "2023-11-24T10:00:00+00:00"
    assert items["2023/clip.mp4"]["media_type"] == "video"
    # exif's extras ride along; its date_taken and memories' agree.
    apple = items["2024/nov25.jpg"]
    assert (apple["date_taken"], apple["exif"]["camera_make"]) == ("2024-11-25T10:00:00", "Apple")
    assert apple["exif"]["date_source"] == "DateTimeOriginal"
    metadata = h.get("/image/metadata", params={"path": "2021/oslo.jpg"}).json()
    assert metadata["date_taken"] == items["2021/oslo.jpg"]["date_taken"]


def test_a_file_exif_has_not_read_is_no_memory_until_it_is(tmp_path: Path, library: Path) -> None:
    make_jpeg(library / "2022/nov23.jpg", taken=datetime(2022, 11, 23, 12, 0))
    with harness(tmp_path, ["exif", "memories"]) as h:
        h.run(h.kernel.scanner.scan_library, h.kernel.libraries.default)  # indexed, not read
        assert memories(h, date="2026-11-23")["years"] == []
        h.scan()  # hashes it, and exif reads it
        (year,) = memories(h, date="2026-11-23")["years"]
        assert [i["path"] for i in year["items"]] == ["2022/nov23.jpg"]
