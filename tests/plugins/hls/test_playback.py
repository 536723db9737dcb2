"""Every kind of library video becomes HLS a phone plays: the playlist parses, every
segment decodes, the whole lasts as long as the source, phone-ready sources are remuxed
and the rest transcoded to H.264/AAC, and a portrait clip stays portrait."""

from __future__ import annotations

import shutil

import pytest

from kernel.media.ffmpeg import probe_video
from kernel.testing import harness

pytestmark = pytest.mark.db

SEGMENT = 4.0
TOML = "[plugins.hls]\npregenerate = false\n"


@pytest.fixture
def h(tmp_path, library, clips):
    for name in ("h264_aac.mp4", "h264_aac.mts", "hevc.mp4", "vp9_opus.webm", "mjpeg.avi",
                 "rotated.mov", "rotated444.mov", "one_second.mp4", "corrupt.mp4"):  # fmt: skip
        shutil.copy(clips[name], library / name)
    with harness(tmp_path, ["hls"], plugins_toml=TOML) as harness_:
        harness_.scan()
        yield harness_


@pytest.mark.parametrize(
    ("name", "mode", "audio_in", "audio_out"),
    [
        ("h264_aac.mp4", "remux", "aac", "aac"),
        ("h264_aac.mts", "remux", "aac", "aac"),
        ("hevc.mp4", "remux", None, None),
        ("vp9_opus.webm", "transcode", "opus", "aac"),
        ("mjpeg.avi", "transcode", "pcm_s16le", "aac"),
    ],
)
def test_every_segment_decodes_and_the_whole_lasts_as_long_as_the_source(
    h, player, clips, name, mode, audio_in, audio_out
):
    source = probe_video(clips[name])
    assert source.audio_codec == audio_in
    queued = h.post("/video/generate", json={"path": name})
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    state = player.wait(h, name)
    assert state["status"] == "done", state
    assert state["mode"] == mode
    assert state["progress"]["fraction"] == 1.0
    assert state["progress"]["duration_seconds"] == pytest.approx(source.duration, abs=0.2)

    response = h.get("/video/stream", params={"path": name})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    playlist = response.text
    assert playlist.startswith("#EXTM3U")
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    decoded = player.play(h, playlist)
    assert decoded.segments >= 1
    assert abs(decoded.seconds - source.duration) <= SEGMENT
    assert abs(decoded.extinf - source.duration) <= SEGMENT
    assert decoded.frames >= int(source.duration * 10) - 2  # 10 fps sources
    expected_video = source.video_codec if mode == "remux" else "h264"
    assert decoded.video_codec == expected_video
    assert decoded.audio_codec == audio_out
    assert (decoded.width, decoded.height) == (160, 120)


def test_segments_are_cut_on_keyframes_every_few_seconds(h, player):
    h.post("/video/generate", json={"path": "h264_aac.mp4"})
    player.wait(h, "h264_aac.mp4")
    playlist = h.get("/video/stream", params={"path": "h264_aac.mp4"}).text
    durations = [float(x.split(":")[1].rstrip(",")) for x in playlist.splitlines()
                 if x.startswith("#EXTINF:")]  # fmt: skip
    assert durations[0] == pytest.approx(SEGMENT, abs=0.01)  # 6 s source: 4 s + 2 s
    assert sum(durations) == pytest.approx(6.0, abs=0.2)
    assert "#EXT-X-START:TIME-OFFSET=0" in playlist  # a growing playlist plays from 0


@pytest.mark.parametrize(
    ("name", "mode", "shape"),
    [
        # Stream copy: the pixels stay as stored, the display matrix says "turn 90°".
        ("rotated.mov", "remux", (160, 120, 90)),
        # Transcode: the picture itself is turned upright.
        ("rotated444.mov", "transcode", (120, 160, 0)),
    ],
)
def test_a_portrait_phone_clip_stays_portrait(h, player, clips, name, mode, shape):
    assert probe_video(clips[name]).rotation == 90
    h.post("/video/generate", json={"path": name})
    state = player.wait(h, name)
    assert state["mode"] == mode
    decoded = player.play(h, h.get("/video/stream", params={"path": name}).text)
    assert (decoded.width, decoded.height, decoded.rotation) == shape


def test_a_one_second_clip_is_one_short_segment(h, player):
    h.post("/video/generate", json={"path": "one_second.mp4"})
    assert player.wait(h, "one_second.mp4")["status"] == "done"
    decoded = player.play(h, h.get("/video/stream", params={"path": "one_second.mp4"}).text)
    assert decoded.segments == 1
    assert decoded.seconds == pytest.approx(1.0, abs=0.15)


def test_the_stream_waits_for_the_first_segment_of_a_new_job(h, player):
    """No generate call first and no polling: the player's first request gets a playlist."""
    response = h.get("/video/stream", params={"path": "vp9_opus.webm"})
    assert response.status_code == 200, response.text
    assert player.uris(response.text)[1:], "at least one segment"
    assert player.wait(h, "vp9_opus.webm")["status"] == "done"


def test_a_corrupt_file_fails_with_the_reason_and_is_not_retried(h, player):
    first = h.post("/video/generate", json={"path": "corrupt.mp4"})
    assert first.status_code == 202
    state = player.wait(h, "corrupt.mp4")
    assert state["status"] == "failed"
    assert "unreadable" in state["error"] or "ffmpeg" in state["error"]
    assert state["playlist_url"] is None
    again = h.post("/video/generate", json={"path": "corrupt.mp4"})
    assert again.status_code == 200
    assert again.json()["status"] == "failed" and again.json()["attempts"] == 1
    stream = h.get("/video/stream", params={"path": "corrupt.mp4"})
    assert stream.status_code == 422
    assert "cannot be streamed" in stream.json()["detail"]
    retried = h.post("/video/generate", json={"path": "corrupt.mp4", "retry": True})
    assert retried.status_code == 202 and retried.json()["status"] in ("queued", "running")
    player.wait(h, "corrupt.mp4", lambda s: s["attempts"] == 2 and s["status"] == "failed")


def test_status_of_a_video_never_asked_for_and_of_things_that_are_not_videos(h, library):
    state = h.get("/video/status", params={"path": "h264_aac.mp4"}).json()
    assert state == {"path": "h264_aac.mp4", "library": 1, "status": "none"}
    (library / "notes.txt").write_text("hello")
    bad = h.post("/video/generate", json={"path": "notes.txt"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "path"
    assert h.post("/video/generate", json={"path": "../etc/passwd.mp4"}).status_code == 400
    assert h.post("/video/generate", json={"path": "nope.mp4"}).status_code == 404
