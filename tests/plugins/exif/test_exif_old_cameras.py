"""Cameras from before EXIF was universal, through a real scan and the HTTP API: a Canon
PowerShot A5 (CIFF), an Olympus D-320L (APP12 picture info) and a Reconyx trail camera
(maker note) used to read as "no metadata" and land on the timeline at their file
date, and camera filters missed them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kernel.testing import harness

pytestmark = pytest.mark.db

FILES = Path(__file__).parent / "corpus" / "files"
OLD = {
    "a5.jpg": ("jpg/exif-org/sony-powershota5.jpg", "2000-10-27T22:56:26", "Canon"),
    "d320l.jpg": ("jpg/exif-org/olympus-d320l.jpg", "1998-10-29T22:06:59",
                  "OLYMPUS OPTICAL CO.,LTD."),
    "trail.jpg": ("jpg/Reconyx_HC500_Hyperfire.jpg", "2020-03-16T10:00:00", "RECONYX"),
}  # fmt: skip
COPIED = 1_700_000_000  # 2023-11-14: the mtime a copied old file has


def test_old_cameras_are_dated_named_and_found_by_camera(tmp_path: Path, library: Path) -> None:
    for name, (source, _when, _make) in OLD.items():
        shutil.copyfile(FILES / source, library / name)
        os.utime(library / name, (COPIED, COPIED))
    # Next to them, a file that is not an image at all and one cut short in its maker
    # note: the first is refused at hashing, the second read as far as it goes (its ISO
    # is lost with the note); the others do not notice.
    (library / "notes.jpg").write_bytes(b"shopping list: eggs, film\n")
    (library / "cut.jpg").write_bytes((FILES / "jpg/exif-org/canon-ixus.jpg").read_bytes()[:600])
    with harness(tmp_path, ["exif"]) as h:
        report = h.scan()
        assert (report.hashed, report.failed) == (4, 1)
        for name, (_source, when, make) in OLD.items():
            body = h.get("/image/metadata", params={"path": name}).json()
            assert body["exif_status"] == "ok", name
            assert body["date_taken"] == when, name
            assert (body["exif"]["camera_make"], body["exif"]["date_source"]) == (
                make,
                "MakerNotes",
            )
        cut = h.get("/image/metadata", params={"path": "cut.jpg"}).json()
        assert (cut["exif_status"], cut["date_taken"]) == ("ok", "2001-06-09T15:17:32")
        assert (cut["exif"]["camera_make"], cut["exif"]["iso"]) == ("Canon", None)
        assert h.get("/image/metadata", params={"path": "notes.jpg"}).json()["exif"] is None

        def names(**params: str) -> list[str]:
            listing = h.get("/photos", params=params).json()["files"]
            return [entry["name"] for entry in listing]

        assert names(camera_make="canon") == ["a5.jpg", "cut.jpg"]
        assert names(camera_model="Canon PowerShot A5") == ["a5.jpg"]
        assert names(camera_make="reconyx") == ["trail.jpg"]
        assert names(camera_make="olympus optical co.,ltd.") == ["d320l.jpg"]
        assert names(date_from="1998-01-01", date_to="2000-12-31", sort="DateTakenAsc") == [
            "d320l.jpg",
            "a5.jpg",
        ]
