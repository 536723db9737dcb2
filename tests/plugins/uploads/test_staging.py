"""Staging files and temporaries a killed server left are swept; a live upload's never.

A staging file is locked by the process writing it; the sweep deletes only what it can
lock, so it needs no age for staging files (a server killed a second ago left one
that goes at the next start) and never races an upload under way. Temporaries in
photo folders (the EXDEV copy, and what versions before the uploads plugin left) must
also be an hour old.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db
HOUR = 3600


def age(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_start_up_sweeps_abandoned_staging_files_but_not_live_ones(tmp_path, library, form):
    staging = tmp_path / "data" / "uploads"
    staging.mkdir(parents=True)
    dead = staging / "upload-0123456789abcdef.part"
    dead.write_bytes(b"half an upload")
    live = staging / "upload-fedcba9876543210.part"
    live.write_bytes(b"an upload under way in another process")
    other = staging / "notes.txt"  # not ours: left alone
    other.write_text("x")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with harness(tmp_path, ["uploads"]) as h:
            assert not dead.exists()
            assert live.exists() and other.exists()
            assert form.upload(h, "a.jpg", form.jpeg()).status_code == 201
            assert sorted(p.name for p in staging.iterdir()) == [other.name, live.name]
    with harness(tmp_path, ["uploads"]) as h:  # its writer has gone: swept now
        assert sorted(p.name for p in staging.iterdir()) == [other.name]


def test_temporaries_in_photo_folders_are_swept_once_an_hour_old(tmp_path, library, caplog):
    trip = library / "trip"
    trip.mkdir()
    old = trip / ".imageapi-upload-0123456789abcdef.part"
    old.write_bytes(b"left by a version before the uploads plugin")
    age(old, 2 * HOUR)
    young = trip / ".imageapi-upload-aaaaaaaaaaaaaaaa.part"
    young.write_bytes(b"maybe still being copied")
    held_old = trip / ".imageapi-upload-bbbbbbbbbbbbbbbb.part"
    held_old.write_bytes(b"copied by a live upload, slowly")
    age(held_old, 2 * HOUR)
    photo = make_jpeg(trip / "photo.jpg")
    age(photo, 2 * HOUR)
    lookalike = trip / "imageapi-upload-x.part.jpg"
    make_jpeg(lookalike)
    age(lookalike, 2 * HOUR)
    with open(held_old, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        caplog.set_level("INFO", logger="plugins.uploads")
        with harness(tmp_path, ["uploads"]) as h:
            plugin = h.kernel.plugin("uploads")
            for _ in range(600):  # the start-up walk runs in the background: until it
                if "1 abandoned uploads" in caplog.text:  # is over, not just past ``old``
                    break
                time.sleep(0.05)
            assert not old.exists()
            assert young.exists() and held_old.exists() and photo.exists() and lookalike.exists()
            age(young, 2 * HOUR)
            assert plugin.sweep() == (0, 1)
            assert not young.exists() and held_old.exists()
    assert sorted(p.name for p in trip.iterdir()) == sorted(
        [held_old.name, photo.name, lookalike.name]
    )


def test_a_staging_folder_in_a_library_is_never_indexed(tmp_path):
    """With the data folder on another filesystem, a library stages at its root."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        library = Path(other)
        if library.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the test's filesystem here")
        make_jpeg(library / ".imageapi-uploads" / "stray.jpg")
        make_jpeg(library / "kept.jpg")
        with harness(tmp_path, ["uploads"], library=library) as h:
            staging = h.kernel.plugin("uploads").staging[1]
            assert staging == library / ".imageapi-uploads"
            assert staging in h.kernel.storage_folders
            h.scan()
            listed = h.get("/photos", params={"recursive": "true"}).json()["photos"]
            assert listed == ["kept.jpg"]
