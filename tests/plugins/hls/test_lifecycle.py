"""The job's life: asked for twice, pre-generated, pre-empted by a user, invalidated by a
changed source, deleted with its video, and picked up again after a server crash."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import insert, select

from kernel.app import create_app
from kernel.auth import issue_token
from kernel.core import Kernel
from kernel.media.ffmpeg import ffmpeg_path
from kernel.tables import users
from kernel.testing import Harness, fresh_database_url, harness, make_config
from plugins.hls import jobs, layout

pytestmark = pytest.mark.db

ON_DEMAND = "[plugins.hls]\npregenerate = false\n"


@contextlib.contextmanager
def server(
    tmp_path: Path, url: str, library: Path, toml: str, plugins: tuple[str, ...] = ("hls",)
) -> Iterator[Harness]:
    """Start imageapi again on an existing database and VIDEO_PATH (a restart)."""
    config = make_config(tmp_path, url, library=library, plugins_toml=toml)
    kernel = Kernel(config, only=list(plugins))
    app = create_app(kernel, background=False)
    with kernel.db.read() as conn:
        user_id = conn.execute(select(users.c.id)).scalars().first()
    token = issue_token(config.secret_key, user_id)
    with TestClient(app=app, raise_server_exceptions=False) as client:
        yield Harness(app, kernel, client, library, token)


def job_rows(h: Harness) -> list[jobs.Job]:
    with h.kernel.db.read() as conn:
        return [jobs._job(r) for r in conn.execute(select(jobs.hls_jobs))]


def file_id(h: Harness, rel_path: str) -> int:
    ref = h.kernel.index.get(1, rel_path)
    assert ref is not None
    return ref.id


def test_a_second_request_is_a_no_op_that_reports_the_state(tmp_path, library, clips, player):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        first = h.post("/video/generate", json={"path": "a.mp4"})
        second = h.post("/video/generate", json={"path": "a.mp4", "library": "1"})
        assert (first.status_code, first.json()["queued_now"]) == (202, True)
        assert (second.status_code, second.json()["queued_now"]) == (200, False)
        assert second.json()["status"] in ("queued", "running", "done")
        player.wait(h, "a.mp4")
        third = h.post("/video/generate", json={"path": "a.mp4"}).json()
        assert third["status"] == "done" and third["attempts"] == 1
        assert len(job_rows(h)) == 1


def test_restart_after_a_crash_requeues_and_discards_partial_output(
    tmp_path, library, clips, player
):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND, database_url=url) as h:
            h.scan()
            video = file_id(h, "a.mp4")
            root = layout.video_root(h.kernel.config)
        # What `kill -9` mid-transcode leaves: a 'running' row owned by a dead process,
        # a playlist naming a segment that was never finished, and a live ffmpeg.
        dead = subprocess.Popen(["true"])
        dead.wait()
        key = "0123456789abcdef"
        partial = layout.run_dir(root, video, key)
        partial.mkdir(parents=True)
        (partial / "init.mp4").write_bytes(b"\0" * 100)
        (partial / "seg_00000.m4s.tmp").write_bytes(b"\0" * 100)
        (partial / "index.m3u8").write_text(
            '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\nseg_00000.m4s\n'
        )
        orphan = subprocess.Popen(
            [ffmpeg_path(), "-nostdin", "-loglevel", "quiet", "-re", "-f", "lavfi",
             "-i", "testsrc=rate=5", "-f", "null", "-"],
            cwd=partial,
        )  # fmt: skip
        now = time.time()
        with h.kernel.db.write() as conn:
            conn.execute(
                insert(jobs.hls_jobs).values(
                    file_id=video, status="running", priority=1, source_size=1,
                    source_mtime_ns=1, mode="remux", out_key=key, processed=2.0,
                    attempts=1, owner=f"{socket.gethostname()}:{dead.pid}:1:dead",
                    pid=orphan.pid, queued_at=now, started_at=now, updated_at=now,
                )
            )  # fmt: skip
        h.kernel.db.dispose()
        try:
            with server(tmp_path, url, library, ON_DEMAND) as again:
                state = player.wait(again, "a.mp4")
                assert state["status"] == "done" and state["attempts"] == 2
                assert orphan.wait(timeout=30) == -9  # the dead server's ffmpeg is gone
                assert not partial.exists()
                playlist = again.get("/video/stream", params={"path": "a.mp4"}).text
                assert key not in playlist
                assert player.play(again, playlist).seconds == pytest.approx(6.0, abs=0.5)
        finally:
            if orphan.poll() is None:
                orphan.kill()
                orphan.wait()


def test_a_changed_source_invalidates_its_rendition(tmp_path, library, clips, player):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        h.post("/video/generate", json={"path": "a.mp4"})
        player.wait(h, "a.mp4")
        (old,) = job_rows(h)
        old_dir = layout.run_dir(layout.video_root(h.kernel.config), old.file_id, old.out_key)
        assert old_dir.is_dir()
        shutil.copy(clips["one_second.mp4"], library / "a.mp4")
        h.scan()  # the scanner notices: on_file_changed
        assert not old_dir.exists()
        assert h.get("/video/status", params={"path": "a.mp4"}).json()["status"] == "none"
        playlist = h.get("/video/stream", params={"path": "a.mp4"}).text
        player.wait(h, "a.mp4")
        playlist = h.get("/video/stream", params={"path": "a.mp4"}).text
        assert player.play(h, playlist).seconds == pytest.approx(1.0, abs=0.2)


def test_a_source_changed_before_the_scanner_noticed_is_not_served_stale(
    tmp_path, library, clips, player
):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        h.post("/video/generate", json={"path": "a.mp4"})
        player.wait(h, "a.mp4")
        shutil.copy(clips["one_second.mp4"], library / "a.mp4")
        os.utime(library / "a.mp4", ns=(time.time_ns(), time.time_ns() + 10**9))
        assert h.post("/video/generate", json={"path": "a.mp4"}).status_code == 202
        player.wait(h, "a.mp4")
        playlist = h.get("/video/stream", params={"path": "a.mp4"}).text
        assert player.play(h, playlist).seconds == pytest.approx(1.0, abs=0.2)


def test_a_removed_video_loses_its_rendition(tmp_path, library, clips, player):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        h.post("/video/generate", json={"path": "a.mp4"})
        player.wait(h, "a.mp4")
        root = layout.video_root(h.kernel.config)
        assert any(root.rglob("*.m4s"))
        (library / "a.mp4").unlink()
        h.scan()  # on_file_removed
        assert not any(root.iterdir())
        assert job_rows(h) == []
        assert h.get("/video/stream", params={"path": "a.mp4"}).status_code == 404


def test_a_moved_video_keeps_its_rendition(tmp_path, library, clips, player):
    """The job and its segments are keyed by the file's id, which a move keeps: the new
    path plays the same rendition at once, no second ffmpeg run."""
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        h.post("/video/generate", json={"path": "a.mp4"})
        player.wait(h, "a.mp4")
        (before,) = job_rows(h)
        (library / "trip").mkdir()
        (library / "a.mp4").rename(library / "trip" / "renamed.mp4")
        assert len(h.scan().moved) == 1
        (after,) = job_rows(h)
        assert (after.file_id, after.out_key, after.attempts) == (
            before.file_id, before.out_key, before.attempts,
        )  # fmt: skip
        status = h.get("/video/status", params={"path": "trip/renamed.mp4"}).json()
        assert status["status"] == "done"
        playlist = h.get("/video/stream", params={"path": "trip/renamed.mp4"}).text
        assert player.play(h, playlist).seconds == pytest.approx(6.0, abs=0.5)


def test_changes_made_while_the_plugin_was_off_are_caught_up(tmp_path, library, clips, player):
    shutil.copy(clips["h264_aac.mp4"], library / "gone.mp4")
    shutil.copy(clips["h264_aac.mp4"], library / "edited.mp4")
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND, database_url=url) as h:
            for name in ("gone.mp4", "edited.mp4"):
                h.post("/video/generate", json={"path": name})
                player.wait(h, name)
            root = layout.video_root(h.kernel.config)
        with server(tmp_path, url, library, "", plugins=()) as off:
            (library / "gone.mp4").unlink()
            shutil.copy(clips["one_second.mp4"], library / "edited.mp4")
            off.scan()
        with server(tmp_path, url, library, ON_DEMAND) as h:
            h.scan()  # drain_backlog: both renditions are out of date
            assert job_rows(h) == [] and not any(root.rglob("*.m4s"))
            playlist = h.get("/video/stream", params={"path": "edited.mp4"}).text
            player.wait(h, "edited.mp4")
            playlist = h.get("/video/stream", params={"path": "edited.mp4"}).text
            assert player.play(h, playlist).seconds == pytest.approx(1.0, abs=0.2)


def test_videos_are_pregenerated_one_at_a_time_and_caught_up_at_start_up(tmp_path, library, clips):
    for name in ("h264_aac.mp4", "vp9_opus.webm", "one_second.mp4"):
        shutil.copy(clips[name], library / name)
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, [], database_url=url) as h:
            h.scan()  # indexed and hashed while the plugin was off
        with server(tmp_path, url, library, "[plugins.hls]\nmax_concurrent = 1\n") as h:
            most_at_once = 0
            for _ in range(1200):
                rows = job_rows(h)
                most_at_once = max(most_at_once, sum(r.status == "running" for r in rows))
                if len(rows) == 3 and all(r.status == "done" for r in rows):
                    break
                time.sleep(0.02)
            assert [r.status for r in job_rows(h)] == ["done"] * 3
            assert most_at_once <= 1
            shutil.copy(clips["one_second.mp4"], library / "new.mp4")
            h.scan()  # hashed → queued at once
            assert any(r.file_id == file_id(h, "new.mp4") for r in job_rows(h))


def test_without_pregeneration_nothing_runs_until_asked(tmp_path, library, clips):
    shutil.copy(clips["h264_aac.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        assert job_rows(h) == []


def test_a_requested_video_suspends_pregeneration_instead_of_waiting(
    tmp_path, library, clips, player
):
    shutil.copy(clips["long.avi"], library / "long.avi")
    toml = '[plugins.hls]\nmax_concurrent = 1\npreset = "veryslow"\n'
    with harness(tmp_path, ["hls"], plugins_toml=toml) as h:
        h.scan()
        player.wait(h, "long.avi", until=lambda s: s["progress"]["processed_seconds"] > 0)
        shutil.copy(clips["one_second.mp4"], library / "clip.mp4")
        h.scan()  # pre-generation queues the clip behind long.avi
        asked = h.post("/video/generate", json={"path": "clip.mp4"})
        assert (asked.status_code, asked.json()["queued_now"]) == (202, True)
        assert h.post("/video/generate", json={"path": "clip.mp4"}).status_code == 200
        assert player.wait(h, "clip.mp4")["status"] == "done"
        background = h.get("/video/status", params={"path": "long.avi"}).json()
        assert background["status"] == "running"  # one slot, yet the clip did not wait
        later = player.wait(
            h,
            "long.avi",
            until=lambda s: (
                s["progress"]["processed_seconds"] > background["progress"]["processed_seconds"]
            ),
        )
        assert later["paused"] is False  # and pre-generation carries on afterwards


def test_playlists_never_name_segments_that_are_not_on_disk(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "init.mp4").write_bytes(b"x")
    (run / "seg_00000.m4s").write_bytes(b"x")
    (run / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
        '#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\nseg_00000.m4s\n#EXTINF:4.0,\n'
        "seg_00001.m4s\n#EXT-X-ENDLIST\n"
    )
    text = layout.render(run, "p/", "token=t", 8)
    assert text is not None
    assert "p/seg_00000.m4s?token=t" in text and "seg_00001" not in text
    assert "#EXT-X-ENDLIST" not in text and "#EXT-X-TARGETDURATION:8" in text
    (run / "init.mp4").unlink()
    assert layout.render(run, "p/", "token=t", 8) is None


def test_an_ffmpeg_that_runs_too_long_is_killed_and_the_job_failed(
    tmp_path, library, clips, player
):
    shutil.copy(clips["long.avi"], library / "long.avi")
    toml = (
        '[plugins.hls]\npregenerate = false\npreset = "veryslow"\n'
        "timeout_min_seconds = 0.5\ntimeout_ratio = 0.001\n"
    )
    with harness(tmp_path, ["hls"], plugins_toml=toml) as h:
        h.post("/video/generate", json={"path": "long.avi"})
        state = player.wait(h, "long.avi")
        assert state["status"] == "failed"
        assert state["error"].startswith("ffmpeg timed out after 0.5 s")
        assert not any(layout.video_root(h.kernel.config).rglob("*.m4s"))
