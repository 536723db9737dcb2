"""HLS's own credentials obey the kernel's: a stranger's made-up playlist token indexes
nothing, and a password change ends the bearer token and every playlist and segment URL
made before it."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from kernel.auth import set_password
from kernel.testing import harness

pytestmark = pytest.mark.db

TOML = "[plugins.hls]\npregenerate = false\n"


def indexed(h) -> list[str]:
    with h.kernel.db.read() as conn:
        return [r.rel_path for r in conn.exec_driver_sql("SELECT rel_path FROM files")]


def test_a_made_up_playlist_token_indexes_nothing(tmp_path, library, clips):
    with harness(tmp_path, ["hls"], plugins_toml=TOML) as h:
        h.scan()
        shutil.copy(clips["one_second.mp4"], library / "new.mp4")  # not indexed yet
        for token in ("1.1.AAAA", "9999999999.1.AAAAAAAAAAAAAAAAAAAAAA", "garbage"):
            response = h.client.get("/video/stream", params={"path": "new.mp4", "token": token})
            assert response.status_code == 401
        assert indexed(h) == []
        # A logged-in user still gets a just-copied clip indexed on demand.
        assert h.get("/video/status", params={"path": "new.mp4"}).status_code == 200
        assert indexed(h) == ["new.mp4"]


def test_a_password_change_ends_bearer_and_url_tokens(tmp_path, library, clips, player):
    shutil.copy(clips["one_second.mp4"], library / "clip.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=TOML) as h:
        h.scan()
        h.post("/video/generate", json={"path": "clip.mp4"})
        state = player.wait(h, "clip.mp4")
        assert state["status"] == "done", state
        playlist_url = state["playlist_url"]
        playlist = h.client.get(playlist_url)
        assert playlist.status_code == 200
        segment = player.uris(playlist.text)[1]
        assert player.fetch(h, segment).status_code == 200
        bearer = h.get("/video/stream", params={"path": "clip.mp4"})
        assert bearer.status_code == 200

        set_password(h.kernel.db, "tester", "a-new-password")
        assert h.get("/video/stream", params={"path": "clip.mp4"}).status_code == 401
        assert h.client.get(playlist_url).status_code == 401
        assert player.fetch(h, segment).status_code == 401

        login = h.client.post("/login", json={"username": "tester", "password": "a-new-password"})
        fresh = {"Authorization": f"Bearer {login.json()['token']}"}
        again = h.client.get("/video/status", params={"path": "clip.mp4"}, headers=fresh).json()
        token = parse_qs(urlsplit(again["playlist_url"]).query)["token"][0]
        assert token != parse_qs(urlsplit(playlist_url).query)["token"][0]
        assert h.client.get(again["playlist_url"]).status_code == 200
