"""Moves and renames keep the file's row (its id), by scan, by watcher batch, across
libraries and across a restart; copies and edited moves are new files."""

from __future__ import annotations

import shutil
import time

import pytest
from watchfiles import Change

from kernel import hookimpl
from kernel.testing import fresh_database_url, harness, make_jpeg

pytestmark = pytest.mark.db


class Moves:
    """Records ``on_files_moved`` and ``on_file_removed``."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, int, int]]] = []
        self.removed: list[str] = []

    @hookimpl
    def on_files_moved(self, moves):
        self.batches.append(
            [(a.rel_path, b.rel_path, a.library_id, b.library_id) for a, b in moves]
        )
        assert all(a.id == b.id and a.content_hash == b.content_hash for a, b in moves)

    @hookimpl
    def on_file_removed(self, file):
        self.removed.append(file.rel_path)


def rows(h):
    with h.kernel.db.read() as conn:
        result = conn.exec_driver_sql(
            "SELECT id, library_id, rel_path, status, content_hash FROM files ORDER BY id"
        )
        return {(r.library_id, r.rel_path): r for r in result}


def ids(h):
    return {key: r.id for key, r in rows(h).items() if r.status == "present"}


def test_hook_on_files_moved(tmp_path, library):
    """A rename and a move into another folder, seen by a full scan: one call, same ids."""
    make_jpeg(library / "a" / "x.jpg")
    make_jpeg(library / "a" / "y.jpg", color=(1, 2, 3))
    rec = Moves()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        before = ids(h)
        (library / "b").mkdir()
        (library / "a" / "x.jpg").rename(library / "b" / "x.jpg")
        (library / "a" / "y.jpg").rename(library / "a" / "renamed.jpg")
        report = h.scan()
        assert rec.batches == [[("a/x.jpg", "b/x.jpg", 1, 1), ("a/y.jpg", "a/renamed.jpg", 1, 1)]]
        assert (len(report.moved), report.new, report.missing) == (2, [], [])
        assert rec.removed == []
        after = ids(h)
        assert after == {
            (1, "b/x.jpg"): before[(1, "a/x.jpg")],
            (1, "a/renamed.jpg"): before[(1, "a/y.jpg")],
        }
        assert len(rows(h)) == 2  # no stale row left behind
        assert h.get("/photos", params={"path": "b"}).json()["photos"] == ["b/x.jpg"]


def test_move_across_libraries_keeps_the_row(tmp_path, library):
    other = tmp_path / "other"
    other.mkdir()
    make_jpeg(library / "x.jpg")
    toml = f'[[kernel.libraries]]\nid = 2\nname = "family"\npath = "{other}"\n'
    with harness(tmp_path, plugins_toml=toml) as h:
        h.scan()
        (old_id,) = ids(h).values()
        shutil.move(library / "x.jpg", other / "x.jpg")
        report = h.scan()
        assert len(report.moved) == 1
        assert ids(h) == {(2, "x.jpg"): old_id}
        listed = h.get("/photos", params={"library": "family"}).json()
        assert listed["photos"] == ["x.jpg"]


def test_move_while_the_server_is_down_is_found_by_the_startup_scan(tmp_path, library):
    make_jpeg(library / "2023" / "x.jpg")
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, database_url=url) as h:
            h.scan()
            (old_id,) = ids(h).values()
        (library / "2023").rename(library / "archive-2023")  # nobody is watching
        again = tmp_path / "again"
        with harness(again, database_url=url, library=library, background=True) as h:
            # the start-up scan runs in the background
            assert _wait_for(lambda: ids(h) == {(1, "archive-2023/x.jpg"): old_id})
            assert len(rows(h)) == 1


def test_a_copy_is_a_new_file_and_the_original_keeps_its_row(tmp_path, library):
    make_jpeg(library / "x.jpg")
    with harness(tmp_path) as h:
        h.scan()
        (old_id,) = ids(h).values()
        shutil.copy2(library / "x.jpg", library / "copy.jpg")
        report = h.scan()
        assert report.moved == [] and len(report.new) == 1
        now = ids(h)
        assert now[(1, "x.jpg")] == old_id and now[(1, "copy.jpg")] != old_id


def test_a_move_with_an_edit_is_a_new_file_and_the_old_one_missing(tmp_path, library):
    make_jpeg(library / "x.jpg")
    with harness(tmp_path) as h:
        h.scan()
        (old_id,) = ids(h).values()
        (library / "x.jpg").rename(library / "y.jpg")
        make_jpeg(library / "y.jpg", size=(80, 60))  # edited after the move
        report = h.scan()
        assert report.moved == [] and len(report.new) == 1
        state = rows(h)
        assert state[(1, "x.jpg")].status == "missing" and state[(1, "x.jpg")].id == old_id
        assert state[(1, "y.jpg")].id != old_id


def test_copies_of_a_moved_file_the_same_name_wins_else_the_first_path(tmp_path, library):
    make_jpeg(library / "x.jpg")
    make_jpeg(library / "y.jpg", color=(9, 9, 9))
    with harness(tmp_path) as h:
        h.scan()
        before = ids(h)
        for target in ("b/x.jpg", "a/other-name.jpg"):
            (library / target).parent.mkdir(exist_ok=True)
            shutil.copy(library / "x.jpg", library / target)  # new mtimes: hashed
        (library / "x.jpg").unlink()
        for target in ("d/second.jpg", "c/first.jpg"):
            (library / target).parent.mkdir(exist_ok=True)
            shutil.copy(library / "y.jpg", library / target)
        (library / "y.jpg").unlink()
        report = h.scan()
        assert sorted((a.rel_path, b.rel_path) for a, b in report.moved) == [
            ("x.jpg", "b/x.jpg"),
            ("y.jpg", "c/first.jpg"),
        ]
        now = ids(h)
        assert now[(1, "b/x.jpg")] == before[(1, "x.jpg")]
        assert now[(1, "c/first.jpg")] == before[(1, "y.jpg")]
        assert len(now) == 4


def test_watcher_batch_recognises_a_folder_rename_as_one_batch(tmp_path, library):
    for n in range(50):
        make_jpeg(library / "trip" / f"{n}.jpg", color=(n, 0, 0))
    rec = Moves()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        before = ids(h)
        (library / "trip").rename(library / "Trip 2024")
        h.run(
            h.kernel.watcher.handle,
            {(Change.deleted, str(library / "trip")), (Change.added, str(library / "Trip 2024"))},
        )
        assert len(rec.batches) == 1 and len(rec.batches[0]) == 50
        assert rec.removed == []
        assert ids(h) == {
            (1, f"Trip 2024/{n}.jpg"): before[(1, f"trip/{n}.jpg")] for n in range(50)
        }


def test_watcher_move_whose_halves_arrive_in_two_batches(tmp_path, library):
    """The deletion seen first (the file is marked missing), the new path later: the
    missing row is the candidate and comes back at its new place."""
    make_jpeg(library / "x.jpg")
    with harness(tmp_path) as h:
        h.scan()
        (old_id,) = ids(h).values()
        (library / "sub").mkdir()
        (library / "x.jpg").rename(library / "sub" / "x.jpg")
        h.run(h.kernel.watcher.handle, {(Change.deleted, str(library / "x.jpg"))})
        assert rows(h)[(1, "x.jpg")].status == "missing"
        h.run(h.kernel.watcher.handle, {(Change.added, str(library / "sub" / "x.jpg"))})
        assert ids(h) == {(1, "sub/x.jpg"): old_id}


async def _start_watcher(kernel):
    kernel.spawn_background(kernel.watcher.run(), "watcher under test")


def _wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_live_watcher_rename_move_and_cross_library_move(tmp_path, library):
    """Real moves under the running watcher (inotify), not hand-made events."""
    other = tmp_path / "other"
    other.mkdir()
    make_jpeg(library / "a" / "x.jpg")
    make_jpeg(library / "a" / "y.jpg", color=(1, 2, 3))
    make_jpeg(library / "a" / "z.jpg", color=(3, 2, 1))
    toml = f'[[kernel.libraries]]\nid = 2\nname = "family"\npath = "{other}"\n'
    rec = Moves()
    with harness(tmp_path, plugins_toml=toml, extra_plugins={"rec": rec}) as h:
        h.scan()
        before = ids(h)
        h.run(_start_watcher, h.kernel)
        time.sleep(0.5)
        (library / "a" / "x.jpg").rename(library / "a" / "renamed.jpg")
        (library / "b").mkdir()
        (library / "a" / "y.jpg").rename(library / "b" / "y.jpg")
        shutil.move(library / "a" / "z.jpg", other / "z.jpg")
        expected = {
            (1, "a/renamed.jpg"): before[(1, "a/x.jpg")],
            (1, "b/y.jpg"): before[(1, "a/y.jpg")],
            (2, "z.jpg"): before[(1, "a/z.jpg")],
        }
        assert _wait_for(lambda: ids(h) == expected), ids(h)
        assert len(rows(h)) == 3
        assert rec.removed == []


def test_hook_file_user_data(tmp_path, library):
    """Counts from every plugin merged per file; files nobody counts are left out."""
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "b.jpg", color=(1, 2, 3))

    class Stars:
        @hookimpl
        def file_user_data(self, files):
            return {f.id: {"stars": 3} for f in files if f.rel_path == "a.jpg"}

    class Notes:
        @hookimpl
        async def file_user_data(self, files, kernel):
            return {f.id: {"notes": 1} for f in files}

    with harness(tmp_path, extra_plugins={"stars": Stars(), "notes": Notes()}) as h:
        h.scan()
        refs = h.kernel.index.get_many(list(ids(h).values()))
        found = h.run(h.kernel.hooks.file_user_data, refs)
        by_path = {ref.rel_path: found.get(ref.id) for ref in refs}
        assert by_path == {"a.jpg": {"stars": 3, "notes": 1}, "b.jpg": {"notes": 1}}
