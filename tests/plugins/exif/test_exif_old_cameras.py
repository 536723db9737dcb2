"""Cameras from before EXIF was universal, through a real scan and the HTTP API: a Canon
PowerShot A5 (CIFF), an Olympus D-320L (APP12 picture info) and a Reconyx trail camera
(maker note) used to read as "no metadata" and land on the timeline at their file
date, and camera filters missed them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kernel import migrate
from kernel.tables import files
from kernel.testing import harness
from plugins.exif.tables import image_exif

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


def test_the_upgrade_reads_again_the_photos_the_old_reader_left_undated(
    tmp_path: Path, library: Path
) -> None:
    for name in ("a5.jpg", "trail.jpg"):
        shutil.copyfile(FILES / OLD[name][0], library / name)
        os.utime(library / name, (COPIED, COPIED))
    shutil.copyfile(FILES / "jpg/exif-org/canon-ixus.jpg", library / "ixus.jpg")
    shutil.copyfile(FILES / "jpg/Canon_40D.jpg", library / "eos.jpg")
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        with h.kernel.db.write() as conn:  # what the old reader left
            conn.execute(
                image_exif.update()
                .where(image_exif.c.file_id.in_(ids(h, "a5.jpg", "trail.jpg")))
                .values(camera_make=None, camera_model=None, date_source="mtime")
            )
            conn.execute(
                image_exif.update()
                .where(image_exif.c.file_id.in_(ids(h, "ixus.jpg")))
                .values(iso=None)
            )
        before = rows(h)
        (branch,) = [b for b in h.kernel.migration_branches() if b.name == "exif"]
        migrate.downgrade(h.kernel.db, branch, "exif_0003")
        migrate.upgrade(h.kernel.db, branch)
        h.scan()
        after = rows(h)
    for name in ("a5.jpg", "trail.jpg", "ixus.jpg"):
        assert after[name].extracted_at > before[name].extracted_at, name
    assert (after["a5.jpg"].camera_make, after["a5.jpg"].date_source) == ("Canon", "MakerNotes")
    assert after["trail.jpg"].camera_make == "RECONYX"
    assert after["ixus.jpg"].iso == 65
    # Dated by DateTimeOriginal, with its ISO: nothing to gain, not read again.
    assert after["eos.jpg"].extracted_at == before["eos.jpg"].extracted_at


def ids(h: Any, *names: str) -> list[int]:
    with h.kernel.db.read() as conn:
        found = conn.execute(select(files.c.id).where(files.c.rel_path.in_(names))).scalars()
        return list(found)


def rows(h: Any) -> dict[str, Any]:
    with h.kernel.db.read() as conn:
        found = conn.execute(
            select(files.c.rel_path, image_exif).join(
                image_exif, image_exif.c.file_id == files.c.id
            )
        ).all()
    return {row.rel_path: row for row in found}
