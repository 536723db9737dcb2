"""Who may fetch what: segments only with the playlist's signed token for that video,
playlists with a bearer token or that signed token, and hostile "videos" (an HLS
playlist or an ffconcat script saved as a video) refused without reading other files."""

from __future__ import annotations

import errno
import os
import shutil
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from kernel.testing import harness
from plugins.hls import layout, tokens

pytestmark = pytest.mark.db

TOML = "[plugins.hls]\npregenerate = false\n"


@pytest.fixture
def h(tmp_path, library, clips):
    for name in ("h264_aac.mp4", "one_second.mp4"):
        shutil.copy(clips[name], library / name)
    with harness(tmp_path, ["hls"], plugins_toml=TOML) as harness_:
        harness_.scan()
        yield harness_


def ready(h, player, path):
    h.post("/video/generate", json={"path": path})
    state = player.wait(h, path)
    assert state["status"] == "done", state
    return state


def with_token(uri, token):
    return uri.split("?", 1)[0] + (f"?token={token}" if token is not None else "")


def test_segments_need_the_token_of_their_own_video(h, player):
    ready(h, player, "h264_aac.mp4")
    ready(h, player, "one_second.mp4")
    playlist = h.get("/video/stream", params={"path": "h264_aac.mp4"}).text
    other = h.get("/video/stream", params={"path": "one_second.mp4"}).text
    init, first, *_ = player.uris(playlist)
    good = first.split("token=", 1)[1]
    other_token = player.uris(other)[1].split("token=", 1)[1]
    secret = h.kernel.config.secret_key
    file_id = int(first.split("/")[1])
    expired = tokens.sign(secret, file_id, 1, 0, 60, now=time.time() - 3600)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")

    assert player.fetch(h, first).status_code == 200
    assert player.fetch(h, init).headers["content-type"] == "video/mp4"
    for token in (None, "", "garbage", tampered, other_token, expired):
        response = player.fetch(h, with_token(first, token))
        assert response.status_code == 401, (token, response.status_code)
    # A login JWT is not a URL token, and a header does not replace the token either.
    assert player.fetch(h, with_token(first, h.token)).status_code == 401
    assert h.get("/video/" + with_token(first, None)).status_code == 401


def test_segments_serve_byte_ranges_and_nothing_but_segments(h, player):
    ready(h, player, "h264_aac.mp4")
    first = player.uris(h.get("/video/stream", params={"path": "h264_aac.mp4"}).text)[1]
    whole = player.fetch(h, first)
    part = h.client.get("/video/" + first, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    token = first.split("token=", 1)[1]
    _, file_id, key, _ = first.split("?")[0].split("/")
    for name in ("index.m3u8", "seg_00000.m4s.tmp", "..", "%2e%2e%2fsecret"):
        uri = f"segment/{file_id}/{key}/{name}?token={token}"
        assert player.fetch(h, uri).status_code in (401, 404), name
    bad_key = f"segment/{file_id}/not-a-key/seg_00000.m4s?token={token}"
    assert player.fetch(h, bad_key).status_code == 404


def test_the_playlist_url_works_without_a_header_and_only_for_its_video(h, player):
    state = ready(h, player, "h264_aac.mp4")
    url = state["playlist_url"]
    assert h.client.get(url).status_code == 200  # a <video src> sends no header
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert h.client.get("/video/stream", params={"path": "h264_aac.mp4"}).status_code == 401
    for params in (
        {"path": "one_second.mp4", "token": token},  # another video's playlist
        {"path": "h264_aac.mp4", "token": token[:-1] + "x"},
        {"path": "does-not-exist.mp4", "token": token},  # no hint that it does not exist
        {"path": "../../etc/passwd", "token": token},
    ):
        assert h.client.get("/video/stream", params=params).status_code == 401, params
    bad_bearer = {"Authorization": "Bearer not-a-jwt"}
    response = h.client.get("/video/stream", params={"path": "h264_aac.mp4"}, headers=bad_bearer)
    assert response.status_code == 401
    assert h.client.post("/video/generate", json={"path": "h264_aac.mp4"}).status_code == 401
    assert h.client.get("/video/status", params={"path": "h264_aac.mp4"}).status_code == 401


def test_playlists_and_concat_scripts_posing_as_videos_read_no_other_file(
    tmp_path, h, player, clips
):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = shutil.copy(clips["one_second.mp4"], outside / "secret.mp4")
    fifo = outside / "secret.fifo"
    os.mkfifo(fifo)  # opening it to read would block: a reader shows up below
    hostile = {
        "playlist.mp4": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n"
        f"file://{fifo}\n#EXTINF:10.0,\n{secret}\n#EXT-X-ENDLIST\n",
        "concat.avi": f"ffconcat version 1.0\nfile '{fifo}'\nfile '{secret}'\n",
        "concat.mkv": f"ffconcat version 1.0\nfile 'file:{secret}'\n",
    }
    for name, text in hostile.items():
        (h.library / name).write_text(text)
    try:
        for name in hostile:
            assert h.post("/video/generate", json={"path": name}).status_code == 202
            state = player.wait(h, name)
            assert state["status"] == "failed", state
            assert "unreadable" in state["error"] or "not allowed" in state["error"]
            assert h.get("/video/stream", params={"path": name}).status_code == 422
    finally:
        try:  # succeeds only if something opened the FIFO for reading
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            leaked = True
        except OSError as exc:
            assert exc.errno == errno.ENXIO
            leaked = False
    assert not leaked, "a hostile file made imageapi open another file"
    assert not any(layout.video_root(h.kernel.config).rglob("*.m4s"))


def test_a_video_reached_through_a_linked_folder_is_not_indexed_twice(h, library, tmp_path):
    """The scanner does not follow folder links, and neither does asking HLS for a path
    through one: the clip keeps its one row and the linked path is answered as ``/image``
    answers it (404); a link out of the library is refused by the path resolver (400)."""
    (library / "trips").mkdir()
    shutil.copy(library / "one_second.mp4", library / "trips" / "clip.mp4")
    os.symlink(library / "trips", library / "alias")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(library / "one_second.mp4", outside / "secret.mp4")
    os.symlink(outside, library / "linked")
    assert h.get("/video/status", params={"path": "trips/clip.mp4"}).status_code == 200

    for path, status in (("alias/clip.mp4", 404), ("linked/secret.mp4", 400)):
        answers = [
            h.get("/video/status", params={"path": path}),
            h.post("/video/generate", json={"path": path}),
            h.get("/video/stream", params={"path": path}),
            h.get("/image", params={"path": path, "size": "thumb"}),
        ]
        assert [a.status_code for a in answers] == [status] * 4, path
    with h.kernel.db.read() as conn:
        rows = conn.exec_driver_sql("SELECT rel_path FROM files ORDER BY rel_path").all()
    assert [r[0] for r in rows] == ["h264_aac.mp4", "one_second.mp4", "trips/clip.mp4"]
