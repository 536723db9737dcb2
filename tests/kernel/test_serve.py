"""``imageapi serve`` on a machine with nothing configured: a live uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(bool(os.environ.get("IMAGEAPI_TEST_DATABASE_URL")), reason="SQLite default")
def test_first_serve_sets_everything_up(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BASE_PATH", "DATABASE_URL", "SECRET_KEY", "IMAGEAPI_CONFIG")
    }
    env.update({"BIND_URL": f"127.0.0.1:{port}", "CORS_ALLOWED_ORIGINS": "http://app.example"})
    (tmp_path / "plugins.toml").write_text("")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", "from kernel.cli import main; main()", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        output = log.read_text()
        password = re.search(r"password:\s+(\S+)", output).group(1)
        assert "curl" in output and "/login" in output
        assert (tmp_path / "data" / "secret_key").exists()
        token = httpx.post(f"{base}/login", json={"username": "admin", "password": password})
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        for _ in range(300):  # the initial scan runs in the background
            listing = httpx.get(f"{base}/photos", params={"recursive": "true"}, headers=headers)
            if listing.json()["total"] >= 12:
                break
            time.sleep(0.1)
        assert listing.json()["total"] >= 12
        preflight = httpx.options(
            f"{base}/photos",
            headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        assert httpx.get(f"{base}/schema/openapi.json").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    # A second start finds the user, the secret and the demo library already there.
    assert (
        "Created the first user"
        not in subprocess.run(
            [sys.executable, "-c", "from kernel.cli import main; main()", "user", "list"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        ).stdout
    )
