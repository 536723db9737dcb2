"""Ingest: broken files recorded and left alone until they change, removal and change,
catching up after the plugin was off, a responsive server during a big first ingest,
and ``kill -9`` in the middle of one."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, select

import kernel
from kernel.tables import files, users
from kernel.testing import TEST_DATABASE_ENV, fresh_database_url, harness, make_jpeg
from plugins.thumbnails.layout import STALE_TMP_SECONDS, TMP_PREFIX, Storage
from plugins.thumbnails.store import thumbnails

pytestmark = pytest.mark.db


def storage(h) -> Storage:
    """The plugin's storage folders (``THUMBNAILS``, ``GIFS_DIRECTORY``) in this app's
    configuration, also while the plugin is switched off."""
    return Storage.from_config(h.kernel.config)


def rows(h) -> dict[str, object]:
    with h.kernel.db.read() as conn:
        result = conn.execute(
            select(files.c.rel_path, thumbnails).join(files, files.c.id == thumbnails.c.file_id)
        )
        return {r.rel_path: r for r in result}


def thumb_path(h, rel_path: str, kind: str = "thumb.jpg") -> Path:
    return storage(h).thumbnails / "1" / f"{rel_path}.{kind}"


def colour_of(data: bytes) -> tuple[int, ...]:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    return im.getpixel((im.width // 2, im.height // 2))


def test_broken_files_fail_with_reason_once_and_retry_after_change(
    tmp_path: Path, library: Path, broken_photos: dict[str, bytes]
) -> None:
    for name, data in broken_photos.items():
        (library / name).write_bytes(data)
    make_jpeg(library / "good.jpg", size=(400, 300))
    with harness(tmp_path, ["thumbnails"]) as h:
        h.scan()
        state = rows(h)
        assert state["good.jpg"].status == "done"  # the batch went on past the broken ones
        assert thumb_path(h, "good.jpg").is_file()
        assert "decompression bomb" in state["bomb.png"].error
        assert "cyclic" in state["loop.tif"].error
        assert "truncated" in state["truncated.jpg"].error
        for name in ("truncated.jpg", "bomb.png", "loop.tif", "truncated.png", "junk.gif"):
            assert (state[name].status, state[name].attempts) == ("failed", 1), name
            assert state[name].error and not thumb_path(h, name).exists()
        # The kernel refuses these by their bytes (no hash, no on_hashed); a client
        # asking gets the reason, which is remembered like any other failure.
        response = h.get("/image", params={"path": "text.jpg", "size": "thumb"})
        assert response.status_code == 404 and "not a recognised" in response.json()["detail"]
        response = h.get("/image", params={"path": "empty.jpg", "size": "thumb"})
        assert response.status_code == 404 and "empty file" in response.json()["detail"]
        response = h.get("/image", params={"path": "bomb.png", "size": "thumb"})
        assert response.status_code == 404 and "decompression bomb" in response.json()["detail"]
        state = rows(h)

        h.scan()
        for name in ("text.jpg", "empty.jpg", "bomb.png"):
            assert h.get("/image", params={"path": name, "size": "thumb"}).status_code == 404
        again = rows(h)
        for name in ("truncated.jpg", "bomb.png", "loop.tif", "text.jpg", "empty.jpg"):
            assert again[name].attempts == 1, name  # not re-attempted
            assert again[name].updated_at == state[name].updated_at, name

        make_jpeg(library / "truncated.jpg", size=(400, 300), color=(10, 200, 10))
        h.scan()
        fixed = rows(h)["truncated.jpg"]
        assert (fixed.status, fixed.error) == ("done", None)
        assert colour_of(thumb_path(h, "truncated.jpg").read_bytes())[1] > 150


def test_removal_deletes_renditions_and_change_replaces_them(
    tmp_path: Path, library: Path, videos: dict[str, Path]
) -> None:
    photo = make_jpeg(library / "trip" / "day1" / "a.jpg", size=(400, 300), color=(200, 0, 0))
    clip = library / "trip" / "clip.mp4"
    clip.write_bytes(videos["testsrc"].read_bytes())
    with harness(tmp_path, ["thumbnails"]) as h:
        h.scan()
        first = h.get("/image", params={"path": "trip/day1/a.jpg", "size": "thumb"})
        assert h.get("/image", params={"path": "trip/day1/a.jpg", "size": "preview"}).is_success
        assert colour_of(first.content)[0] > 150
        gif = storage(h).gifs / "1" / "trip" / "clip.mp4.gif"
        assert gif.is_file()

        make_jpeg(photo, size=(400, 300), color=(0, 0, 200))  # same path, new picture
        h.scan()
        second = h.get("/image", params={"path": "trip/day1/a.jpg", "size": "thumb"})
        assert colour_of(second.content)[2] > 150
        assert second.headers["etag"] != first.headers["etag"]
        assert not thumb_path(h, "trip/day1/a.jpg", "preview.jpg").exists()  # invalidated

        photo.unlink()
        clip.unlink()
        h.scan()
        assert not thumb_path(h, "trip/day1/a.jpg").exists()
        assert not gif.exists() and not thumb_path(h, "trip/clip.mp4").exists()
        assert not (storage(h).thumbnails / "1" / "trip").exists()  # no empty folders
        assert rows(h) == {}


def _drop_test_user(h) -> None:
    """The harness creates its user on every start; a second start on one database
    needs the first one gone."""
    with h.kernel.db.write() as conn:
        conn.execute(delete(users))


def test_switched_off_then_on_catches_up_from_the_backlog(tmp_path: Path, library: Path) -> None:
    make_jpeg(library / "old.jpg", size=(300, 200))
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, ["thumbnails"], database_url=url) as h:
            h.scan()
            assert thumb_path(h, "old.jpg").is_file()
            _drop_test_user(h)
        make_jpeg(library / "new.jpg", size=(300, 200))
        with harness(tmp_path, [], database_url=url) as h:  # the plugin is off
            report = h.scan()
            assert report.hashed == 1 and not thumb_path(h, "new.jpg").exists()
            _drop_test_user(h)
        with harness(tmp_path, ["thumbnails"], database_url=url) as h:
            processed = h.run(h.kernel.scanner.drain_backlogs)  # no scan, no new hashes
            assert processed == {"thumbnails": 1}
            assert thumb_path(h, "new.jpg").is_file()
            state = rows(h)
            assert state["new.jpg"].status == "done"
            assert state["old.jpg"].attempts == 1  # not made again
            assert h.run(h.kernel.scanner.drain_backlogs) == {"thumbnails": 0}


def test_changed_thumb_size_is_caught_up(tmp_path: Path, library: Path) -> None:
    make_jpeg(library / "a.jpg", size=(600, 400))
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, ["thumbnails"], database_url=url) as h:
            h.scan()
            assert Image.open(thumb_path(h, "a.jpg")).size == (200, 133)
            _drop_test_user(h)
        toml = "[plugins.thumbnails]\nthumb_size = 120\n"
        with harness(tmp_path, ["thumbnails"], database_url=url, plugins_toml=toml) as h:
            h.scan()
            assert Image.open(thumb_path(h, "a.jpg")).size == (120, 80)
            assert rows(h)["a.jpg"].sizes.split() == ["thumb.jpg@120"]


def test_health_answers_while_thumbnails_render(tmp_path: Path, library: Path) -> None:
    # Full-size PNG decodes (no JPEG draft shortcut) on one render thread: slow on purpose.
    payload = io.BytesIO()
    Image.new("RGB", (4000, 3000), (30, 60, 90)).save(payload, "PNG")
    count = 6
    for n in range(count):
        (library / f"{n:02d}.png").write_bytes(payload.getvalue() + n.to_bytes(4, "big"))
    toml = "[plugins.thumbnails]\nworkers = 1\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        folder = storage(h).thumbnails / "1"

        def made() -> int:
            return len(list(folder.glob("*.thumb.jpg"))) if folder.exists() else 0

        def rendering() -> bool:
            """Every file hashed (handed to on_hashed) and not every thumbnail made."""
            with h.kernel.db.read() as conn:
                hashed = conn.execute(
                    select(files.c.id).where(files.c.content_hash.is_not(None))
                ).all()
            return len(hashed) == count and made() < count

        async def start() -> None:
            h.kernel.spawn_background(h.kernel.scanner.scan(), "test scan")

        h.run(start)
        answered_while_rendering = 0
        for _ in range(100_000):
            before = rendering()
            response = h.client.get("/health")
            assert response.status_code == 200
            if before and rendering():
                answered_while_rendering += 1
            if made() == count:
                break
        h.scan()  # waits for the background scan (one scan at a time)
        assert made() == count
        # A render blocking the event loop would let at most one request in per file.
        assert answered_while_rendering > 2 * count


def _ingest_process(tmp_path: Path, library: Path) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio\n"
        "from kernel.config import load_config\n"
        "from kernel.core import Kernel\n"
        "kernel = Kernel(load_config(), only=['thumbnails'])\n"
        "kernel.migrate()\n"
        "async def main():\n"
        "    await kernel.hooks.on_startup()\n"
        "    await kernel.scanner.scan()\n"
        "    await kernel.hooks.on_shutdown()\n"
        "asyncio.run(main())\n"
    )
    here = str(Path(kernel.__file__).resolve().parents[1])  # the child runs this code
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'imageapi.db'}",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        "IMAGEAPI_CONFIG": str(tmp_path / "plugins.toml"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL
    )


@pytest.mark.skipif(bool(os.environ.get(TEST_DATABASE_ENV)), reason="SQLite file")
def test_kill_9_mid_ingest_leaves_nothing_broken(tmp_path: Path, library: Path) -> None:
    payload = io.BytesIO()
    Image.new("RGB", (2400, 1600), (200, 40, 40)).save(payload, "PNG")
    count = 40
    for n in range(count):
        (library / f"{n:02d}.png").write_bytes(payload.getvalue() + n.to_bytes(4, "big"))
    (tmp_path / "plugins.toml").write_text("[plugins.thumbnails]\nworkers = 1\n")
    folder = tmp_path / "data" / "thumbnails" / "1"
    process = _ingest_process(tmp_path, library)
    interrupted_at = None
    deadline = time.monotonic() + 120  # a safety net, not a performance limit
    while process.poll() is None and time.monotonic() < deadline:
        done = len(list(folder.glob("*.thumb.jpg"))) if folder.exists() else 0
        if done >= 2:
            process.send_signal(signal.SIGKILL)
            interrupted_at = done
            break
        time.sleep(0.005)
    process.wait()
    assert interrupted_at is not None and interrupted_at < count, "finished too soon"
    assert process.returncode == -signal.SIGKILL
    # A temporary file as a kill leaves it, old enough to be a leftover.
    stray = folder / f"{TMP_PREFIX}0123456789ab-07.png.thumb.jpg"
    stray.write_bytes(b"\xff\xd8 half a thumbnail")
    os.utime(stray, (time.time() - 7200, time.time() - 7200))
    toml = "[plugins.thumbnails]\nworkers = 1\n"
    url = f"sqlite:///{tmp_path / 'imageapi.db'}"
    with harness(tmp_path, ["thumbnails"], database_url=url, plugins_toml=toml) as h:
        h.scan()
        for _ in range(1000):  # the start-up sweep runs in the background
            if not stray.exists():
                break
            time.sleep(0.01)
        assert not stray.exists()
        state = rows(h)
        assert len(state) == count and {r.status for r in state.values()} == {"done"}
        # The kill may land between a temporary's write and its rename: that one is
        # fresh, and left alone until it is old enough to be nobody's write in progress.
        made = sorted(p for p in folder.iterdir() if not p.name.startswith(TMP_PREFIX))
        left = [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
        young = time.time() - STALE_TMP_SECONDS
        assert len(left) <= 1 and all(p.stat().st_mtime > young for p in left)
        assert [p.name for p in made] == [f"{n:02d}.png.thumb.jpg" for n in range(count)]
        for path in made:  # every file complete: decodes to the end
            with Image.open(path) as im:
                im.load()
                assert im.size == (200, 133)


def test_a_moved_file_keeps_its_renditions_without_a_render(tmp_path: Path, library: Path) -> None:
    """Renamed along with the file (also into another library), never rendered again."""
    other = tmp_path / "other"
    other.mkdir()
    make_jpeg(library / "a" / "x.jpg", size=(400, 300))
    make_jpeg(library / "y.jpg", size=(300, 400))
    toml = f'[[kernel.libraries]]\nid = 2\nname = "family"\npath = "{other}"\n'
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        h.scan()
        before = {name: thumb_path(h, name).stat() for name in ("a/x.jpg", "y.jpg")}
        attempts = {name: row.attempts for name, row in rows(h).items()}
        (library / "b").mkdir()
        (library / "a" / "x.jpg").rename(library / "b" / "x.jpg")
        (library / "y.jpg").rename(other / "y.jpg")
        report = h.scan()
        assert len(report.moved) == 2
        moved_x = thumb_path(h, "b/x.jpg").stat()
        moved_y = (storage(h).thumbnails / "2" / "y.jpg.thumb.jpg").stat()
        assert moved_x.st_ino == before["a/x.jpg"].st_ino  # the same file, renamed
        assert moved_y.st_ino == before["y.jpg"].st_ino
        assert not (storage(h).thumbnails / "1" / "a").exists()  # empty folder pruned
        assert not thumb_path(h, "y.jpg").exists()
        assert {name: row.attempts for name, row in rows(h).items()} == {
            "b/x.jpg": attempts["a/x.jpg"],
            "y.jpg": attempts["y.jpg"],
        }
        served = h.get("/image", params={"path": "b/x.jpg", "size": "thumb"})
        assert served.status_code == 200
        assert thumb_path(h, "b/x.jpg").stat().st_ino == before["a/x.jpg"].st_ino


def test_ingest_cut_short_by_shutdown_logs_no_error(
    tmp_path: Path, library: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server stopped mid-ingest does not report the renders it never started as
    errors; they are left for the next start, as the backlog shows."""
    make_jpeg(library / "late.jpg", size=(400, 300))
    with harness(tmp_path, ["thumbnails"]) as h:
        thumbnailer = h.kernel.plugin("thumbnails").thumbnailer
        thumbnailer.pool.shutdown()  # what stopping the server does first
        with caplog.at_level("ERROR"):
            h.scan()  # hashes the file and hands it to the closed pool
            h.run(thumbnailer.wait_idle)
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
        assert "late.jpg" not in rows(h)  # nothing recorded: it renders next time
        assert not thumb_path(h, "late.jpg").exists()
