"""The scanner: reconcile with the index, hash, confirm by magic bytes, survive kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from watchfiles import Change

from kernel import hookimpl
from kernel.tables import files
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


def rows(h):
    with h.kernel.db.read() as conn:
        result = conn.exec_driver_sql(
            "SELECT rel_path, status, content_hash, error, media_type FROM files ORDER BY rel_path"
        )
        return {r.rel_path: r for r in result}


def test_full_scan_reconciles_new_changed_missing_and_returned(tmp_path, library):
    a = make_jpeg(library / "a.jpg")
    b = make_jpeg(library / "deep" / "er" / "b.JPG")
    make_jpeg(library / "notes.txt")  # not media by name: ignored
    with harness(tmp_path) as h:
        first = h.scan()
        assert (len(first.new), first.hashed) == (2, 2)
        assert rows(h)["deep/er/b.JPG"].media_type == "photo"
        assert "notes.txt" not in rows(h)
        kept, kept_stat = b.read_bytes(), b.stat()
        b.unlink()
        make_jpeg(a, size=(99, 99))
        second = h.scan()
        assert [f.rel_path for f in second.missing] == ["deep/er/b.JPG"]
        assert len(second.changed) == 1 and second.hashed == 1
        assert rows(h)["deep/er/b.JPG"].status == "missing"
        b.write_bytes(kept)  # the drive came back: same bytes, same mtime
        os.utime(b, ns=(kept_stat.st_atime_ns, kept_stat.st_mtime_ns))
        third = h.scan()
        assert len(third.returned) == 1 and third.new == []
        assert rows(h)["deep/er/b.JPG"].status == "present"
        assert len(rows(h)) == 2


def test_magic_bytes_must_agree_with_the_extension(tmp_path, library):
    (library / "text.jpg").write_text("this is text")
    (library / "empty.png").write_bytes(b"")
    make_jpeg(library / "photo.mp4")  # an image named like a video
    make_jpeg(library / "fine.jpeg")
    with harness(tmp_path) as h:
        report = h.scan()
        assert (report.hashed, report.failed) == (1, 3)
        errors = {path: row.error for path, row in rows(h).items()}
        assert errors["fine.jpeg"] is None
        assert "not a recognised" in errors["text.jpg"]
        assert errors["empty.png"] == "empty file"
        assert "contains an image" in errors["photo.mp4"]
        assert h.get("/photos").json()["photos"] == ["fine.jpeg"]
        h.scan()  # failed files are not retried until they change
        assert rows(h)["text.jpg"].content_hash is None


def test_quick_scan_only_looks_at_recent_files(tmp_path, library):
    old = make_jpeg(library / "old.jpg")
    with harness(tmp_path) as h:
        h.scan()
        past = time.time() - 3600
        os.utime(old, (past, past))  # changed, but looks old to a quick scan (ctime moved)
        make_jpeg(library / "new.jpg")
        report = h.scan(full=False)
        assert report.seen >= 1
        assert "new.jpg" in rows(h)


@pytest.mark.requires_plugins("thumbnails")
def test_derived_folders_inside_a_library_are_not_scanned(tmp_path, library):
    """A plugin's storage folder (here THUMBNAILS) put inside a library is never indexed,
    neither what was there before nor the thumbnails made during the scan."""
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "thumbs" / "old.jpg")
    env = {"THUMBNAILS": str(library / "thumbs")}
    with harness(tmp_path, ["thumbnails"], env=env) as h:
        h.scan()
        assert (library / "thumbs" / "1" / "a.jpg.thumb.jpg").is_file()
        h.scan()
        assert list(rows(h)) == ["a.jpg"]


def test_watcher_events_index_new_files_and_mark_removed_ones(tmp_path, library):
    gone = make_jpeg(library / "gone.jpg")
    with harness(tmp_path) as h:
        h.scan()
        fresh = make_jpeg(library / "fresh.jpg", color=(1, 2, 3))  # not gone.jpg moved
        gone.unlink()
        h.run(h.kernel.watcher.handle, {(Change.added, str(fresh)), (Change.deleted, str(gone))})
        state = rows(h)
        assert state["fresh.jpg"].content_hash is not None
        assert state["gone.jpg"].status == "missing"


def test_live_watcher_picks_up_a_new_file(tmp_path, library):
    with harness(tmp_path) as h:
        h.scan()
        h.run(_start_watcher, h.kernel)
        time.sleep(0.5)
        make_jpeg(library / "live" / "new.jpg")
        for _ in range(100):
            if "live/new.jpg" in rows(h):
                break
            time.sleep(0.1)
        assert "live/new.jpg" in rows(h)


async def _start_watcher(kernel):
    kernel.spawn_background(kernel.watcher.run(), "watcher under test")


def _scan_process(tmp_path: Path, library: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "x" * 40,
        "IMAGEAPI_CONFIG": str(tmp_path / "plugins.toml"),
    }
    env.pop("DATABASE_URL", None)
    code = "from kernel.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "scan"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.skipif(bool(os.environ.get("IMAGEAPI_TEST_DATABASE_URL")), reason="SQLite file")
def test_kill_9_mid_scan_then_restart_loses_nothing(tmp_path, library):
    payload = (make_jpeg(tmp_path / "seed.jpg", size=(640, 480))).read_bytes()
    payload += b"\0" * 300_000  # bigger files: hashing takes long enough to interrupt
    count = 3000
    for n in range(count):
        folder = library / f"d{n % 30}"
        folder.mkdir(exist_ok=True)
        (folder / f"{n}.jpg").write_bytes(payload[:-4] + n.to_bytes(4, "big"))
    (tmp_path / "plugins.toml").write_text("")
    db_file = tmp_path / "data" / "imageapi.db"
    process = _scan_process(tmp_path, library)
    interrupted_at = None
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if db_file.exists():
            try:
                with sqlite3.connect(db_file, timeout=1) as conn:
                    total, hashed = conn.execute(
                        "SELECT count(*), count(content_hash) FROM files"
                    ).fetchone()
            except sqlite3.Error:
                total = hashed = 0
            if total > 0 and hashed < count:
                interrupted_at = (total, hashed)
                process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    process.wait()
    assert interrupted_at is not None, "the scan finished before it could be interrupted"
    assert process.returncode == -signal.SIGKILL
    restarted = _scan_process(tmp_path, library)
    assert restarted.wait(timeout=300) == 0
    with sqlite3.connect(db_file) as conn:
        total, distinct, hashed = conn.execute(
            "SELECT count(*), count(DISTINCT rel_path), count(content_hash) FROM files"
        ).fetchone()
    assert (total, distinct, hashed) == (count, count, count)


def test_watcher_handles_folders_moved_in_and_out(tmp_path, library):
    outside = tmp_path / "outside"
    make_jpeg(outside / "trip" / "a.jpg")
    make_jpeg(outside / "trip" / "day2" / "b.jpg", color=(1, 2, 3))
    make_jpeg(library / "old" / "c.jpg", color=(3, 2, 1))  # other content: not a move
    with harness(tmp_path) as h:
        h.scan()
        (outside / "trip").rename(library / "trip")
        old = library / "old"
        (old / "c.jpg").unlink()
        old.rmdir()
        h.run(
            h.kernel.watcher.handle,
            {(Change.added, str(library / "trip")), (Change.deleted, str(old))},
        )
        state = rows(h)
        assert state["trip/a.jpg"].content_hash and state["trip/day2/b.jpg"].content_hash
        assert state["old/c.jpg"].status == "missing"


def test_missing_library_folder_stops_only_the_watcher(tmp_path, caplog):
    library = tmp_path / "vanishing"
    library.mkdir()
    with harness(tmp_path, library=library) as h:
        library.rmdir()  # an unmounted drive
        h.run(h.kernel.watcher.run)
        assert "not watching" in caplog.text
        assert h.get("/health").status_code == 200
        assert h.get("/photos").status_code == 404


class _HoldsTheFirstBatch:
    """A plugin whose ``on_hashed`` waits until released: a slow EXIF or thumbnailer."""

    def __init__(self) -> None:
        self.release = threading.Event()

    @hookimpl
    async def on_hashed(self, file) -> None:
        await asyncio.to_thread(self.release.wait, 60)


def test_hashing_goes_on_while_plugins_process_the_previous_batch(tmp_path, library):
    for n in range(48):  # three batches of 16 with one hash worker
        make_jpeg(library / f"p{n:02d}.jpg", color=(n * 5 % 256, 80, 120))
    slow = _HoldsTheFirstBatch()
    toml = "[kernel]\nhash_workers = 1\nscan_on_startup = false\n"
    with harness(tmp_path, extra_plugins={"slow": slow}, plugins_toml=toml) as h:

        def hashed() -> int:
            with h.kernel.db.read() as conn:
                query = select(func.count()).where(files.c.content_hash.is_not(None))
                return int(conn.execute(query).scalar_one())

        scan = threading.Thread(target=h.scan)
        scan.start()
        try:
            deadline = time.monotonic() + 60
            while hashed() < 32 and time.monotonic() < deadline:
                time.sleep(0.05)
            # The first batch's hooks are still waiting, and the second batch is hashed.
            assert not slow.release.is_set() and hashed() >= 32
        finally:
            slow.release.set()
            scan.join(120)
        assert hashed() == 48


class _CountsDrains:
    """A plugin with an empty backlog that counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def drain_backlog(self, limit: int) -> int:
        self.calls += 1
        return 0


def test_an_idle_backlog_is_not_asked_again_until_the_database_changes(tmp_path, library):
    make_jpeg(library / "a.jpg")
    counter = _CountsDrains()
    toml = "[kernel]\nscan_on_startup = false\n"
    with harness(tmp_path, extra_plugins={"counter": counter}, plugins_toml=toml) as h:
        h.scan()
        asked = counter.calls
        assert asked >= 1
        h.scan()  # nothing changed: its anti-join over every file is not run again
        h.scan()
        if h.kernel.db.is_sqlite:
            assert counter.calls == asked
        make_jpeg(library / "b.jpg")
        h.scan()  # a commit: asked again
        assert counter.calls > asked
