"""The index lists only what the resolver would serve, whether a full scan or the watcher
found it: no file behind a link that leaves the library, nothing through a linked folder,
nothing in a plugin's derived folders."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from watchfiles import Change

from kernel import hookimpl
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


def indexed(h) -> list[str]:
    with h.kernel.db.read() as conn:
        result = conn.exec_driver_sql("SELECT rel_path FROM files ORDER BY rel_path")
        return [row.rel_path for row in result]


def listed(h) -> list[str]:
    response = h.get("/photos?recursive=true")
    assert response.status_code == 200
    return sorted(response.json()["photos"])


class Derived:
    """A plugin that writes derived files into ``library/derived`` (a common layout)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def storage_folders(self) -> list[Path]:
        return [self.folder]


def test_a_file_link_leaving_the_library_is_not_indexed(tmp_path, library):
    outside = make_jpeg(tmp_path / "outside" / "secret.jpg", taken=datetime(2001, 1, 1))
    make_jpeg(library / "real.jpg")
    os.symlink(outside, library / "leak.jpg")
    os.symlink(library / "real.jpg", library / "alias.jpg")  # inside: served, so listed
    with harness(tmp_path) as h:
        h.scan()
        assert indexed(h) == ["alias.jpg", "real.jpg"]
        assert listed(h) == ["alias.jpg", "real.jpg"]
        assert h.get("/image?path=leak.jpg").status_code in (400, 403, 404)
        # The watcher obeys the same rule for a link made while the server runs.
        os.symlink(outside, library / "later.jpg")
        h.run(h.kernel.watcher.handle, {(Change.added, str(library / "later.jpg"))})
        assert "later.jpg" not in indexed(h)


def test_the_watcher_does_not_follow_folder_links(tmp_path, library):
    make_jpeg(library / "a.jpg")
    outside = tmp_path / "elsewhere"
    make_jpeg(outside / "b.jpg")
    os.symlink(library, library / "loop")  # a link back into the library
    os.symlink(outside, library / "linked")  # a folder linked in from outside
    with harness(tmp_path) as h:
        h.scan()
        assert indexed(h) == ["a.jpg"]
        events = {
            (Change.added, str(library / "loop" / "a.jpg")),
            (Change.modified, str(library / "loop" / "loop" / "a.jpg")),
            (Change.added, str(library / "linked")),
            (Change.added, str(library / "linked" / "b.jpg")),
        }
        h.run(h.kernel.watcher.handle, events)
        assert indexed(h) == ["a.jpg"]


def test_derived_folders_inside_a_library_are_never_indexed(tmp_path, library):
    derived = library / "derived"
    make_jpeg(library / "a.jpg")
    make_jpeg(derived / "1" / "a.jpg.thumb.jpg")
    with harness(tmp_path, extra_plugins={"derived": Derived(derived)}) as h:
        h.scan()
        assert indexed(h) == ["a.jpg"]
        # A thumbnail written while the server runs, and a new folder holding one.
        make_jpeg(derived / "1" / "b.jpg.thumb.jpg")
        make_jpeg(library / "trip" / "c.jpg")
        os.symlink(derived / "1" / "b.jpg.thumb.jpg", library / "trip" / "to-derived.jpg")
        events = {
            (Change.added, str(derived / "1" / "b.jpg.thumb.jpg")),
            (Change.added, str(library / "trip")),
        }
        h.run(h.kernel.watcher.handle, events)
        assert indexed(h) == ["a.jpg", "trip/c.jpg"]
        h.scan()
        assert indexed(h) == ["a.jpg", "trip/c.jpg"]
