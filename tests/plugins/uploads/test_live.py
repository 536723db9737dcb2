"""Against a real ``imageapi serve`` process: memory stays flat for big bodies (read
from the server's /proc), and kill -9 in the middle of an upload leaves nothing once the
server is back.

Memory is the server's peak resident set (VmHWM) before and after one request; the
bounds are generous (the request itself is 256 MiB, and the old code grew by 0.5 to
1.3 GiB on these requests).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kernel.manager import builtin_plugin_names

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.skipif(bool(os.environ.get("IMAGEAPI_TEST_DATABASE_URL")), reason="SQLite"),
]
MIB = 1 << 20
ONLY_UPLOADS = "".join(
    f"[plugins.{name}]\nenabled = {'true' if name == 'uploads' else 'false'}\n"
    for name in builtin_plugin_names()
)


def peak_growth_mib(server, request) -> tuple[object, float]:
    before = server.memory()["VmHWM"]
    answer = request()
    return answer, (server.memory()["VmHWM"] - before) / 1024


def test_a_256_mib_upload_is_streamed_to_disk(tmp_path, live_server):
    server = live_server(tmp_path, ONLY_UPLOADS)
    response, grew = peak_growth_mib(server, lambda: server.upload(256 * MIB))
    assert response.status_code == 201, response.text
    assert (server.library / "big.jpg").stat().st_size == 256 * MIB
    assert grew < 16, f"the server's peak memory grew by {grew:.1f} MiB"
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    listed = httpx.get(f"{server.base}/photos", headers=server.headers).json()
    assert listed["photos"] == ["big.jpg"]


def test_a_256_mib_text_field_is_refused_at_its_cap(tmp_path, live_server):
    server = live_server(tmp_path, ONLY_UPLOADS)
    response, grew = peak_growth_mib(server, lambda: server.upload(256 * MIB, text_field=True))
    assert response.status_code == 400 and response.json()["parameter"] == "caption"
    assert grew < 16, f"the server's peak memory grew by {grew:.1f} MiB"


def test_an_anonymous_256_mib_login_is_refused_without_buffering(tmp_path, live_server):
    server = live_server(tmp_path, ONLY_UPLOADS)
    for chunked in (False, True):
        status, grew = peak_growth_mib(
            server, lambda c=chunked: server.post_raw("/login", 256 * MIB, chunked=c)
        )
        assert status == 413, chunked
        assert grew < 8, f"the server's peak memory grew by {grew:.1f} MiB"
    assert httpx.get(f"{server.base}/health").status_code == 200
    login = {"username": "admin", "password": server.password}
    assert httpx.post(f"{server.base}/login", json=login).status_code == 200


def staged(home: Path) -> list[Path]:
    return sorted((home / "data" / "uploads").glob("upload-*.part"))


def test_kill_9_mid_upload_leaves_nothing_once_restarted(tmp_path, live_server, form):
    server = live_server(tmp_path, ONLY_UPLOADS)
    album = server.library / "album"
    album.mkdir()
    legacy = album / ".imageapi-upload-0123456789abcdef.part"  # from an older version
    legacy.write_bytes(b"half a photo")
    old = time.time() - 7200
    os.utime(legacy, (old, old))
    release = threading.Event()
    head = form.part("path", "album") + form.head("file", "slow.jpg")

    def slow_body():
        yield head + form.jpeg()
        yield bytes(2 * MIB)
        release.wait(120)  # the rest never comes: the server is killed meanwhile
        yield bytes(MIB)

    def send() -> None:
        headers = {**server.headers, **form.headers(), "Content-Length": str(64 * MIB)}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{server.base}/image", content=slow_body(), headers=headers, timeout=120)

    client = threading.Thread(target=send)
    client.start()
    for _ in range(600):
        if staged(tmp_path) and staged(tmp_path)[0].stat().st_size >= MIB:
            break
        time.sleep(0.05)
    assert staged(tmp_path), "the upload never reached its staging file"
    server.kill()
    release.set()
    client.join(60)
    assert staged(tmp_path)  # what kill -9 leaves behind...
    assert sorted(p.name for p in album.iterdir()) == [legacy.name]  # ...never in the album

    server.start()
    assert staged(tmp_path) == []  # swept before the first request is served
    for _ in range(600):  # the photo folders are walked in the background
        if not legacy.exists():
            break
        time.sleep(0.05)
    assert list(album.iterdir()) == []
    again = httpx.post(
        f"{server.base}/image",
        headers=server.headers,
        files={"file": ("slow.jpg", form.jpeg(), "image/jpeg")},
        data={"path": "album"},
    )
    assert again.status_code == 201 and again.json()["path"] == "album/slow.jpg"
