"""``imageapi serve`` on a machine with nothing configured: a live uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    except Exception:
        server.terminate()
        server.wait(timeout=30)
        print(log.read_text())  # shown with the failure: what every process logged
        raise
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


def _health_by_process(base: str, want: int, tries: int = 400) -> dict[int, bool]:
    """``{pid: background}`` from fresh connections until ``want`` processes answered."""
    seen: dict[int, bool] = {}
    for _ in range(tries):
        try:
            body = httpx.get(f"{base}/health", headers={"Connection": "close"}).json()
            seen[body["pid"]] = body["background"]
        except httpx.TransportError:
            time.sleep(0.1)
        if len(seen) >= want:
            break
    return seen


@pytest.mark.skipif(bool(os.environ.get("IMAGEAPI_TEST_DATABASE_URL")), reason="SQLite default")
def test_several_serving_processes_and_one_does_the_background_work(tmp_path):
    from kernel.testing import make_jpeg

    library = tmp_path / "library"
    library.mkdir()
    for n in range(3):
        make_jpeg(library / f"p{n}.jpg")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SECRET_KEY", "IMAGEAPI_CONFIG")
    }
    env.update({"BIND_URL": f"127.0.0.1:{port}", "BASE_PATH": str(library)})
    (tmp_path / "plugins.toml").write_text("")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from kernel.cli import main; main()",
                "serve",
                "--workers",
                "2",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        processes = _health_by_process(base, want=2)
        assert len(processes) == 2, log.read_text()
        # The supervisor is a fresh interpreter, not the process that loaded the application.
        assert b"kernel.supervisor" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert sorted(processes.values()) == [False, True]  # exactly one in the background
        password = re.search(r"password:\s+(\S+)", log.read_text()).group(1)
        token = httpx.post(f"{base}/login", json={"username": "admin", "password": password})
        headers = {"Authorization": f"Bearer {token.json()['token']}", "Connection": "close"}

        def total() -> int:
            return httpx.get(f"{base}/photos", headers=headers).json()["total"]

        for _ in range(300):  # the background process scans; any process lists
            if total() == 3:
                break
            time.sleep(0.1)
        assert total() == 3

        (dead,) = [pid for pid, background in processes.items() if background]
        os.kill(dead, 9)
        heir = None
        for _ in range(600):  # another process takes the background work over
            heirs = [p for p, bg in _health_by_process(base, want=2, tries=20).items() if bg]
            if heirs and heirs[0] != dead:
                heir = heirs[0]
                break
            time.sleep(0.1)
        assert heir is not None, log.read_text()
        make_jpeg(library / "after.jpg")
        for _ in range(600):  # and finds files again
            if total() == 4:
                break
            time.sleep(0.1)
        assert total() == 4

        # The supervisor killed with -9: its serving processes stop too and free the port.
        children = set(_health_by_process(base, want=2)) | {heir}
        server.kill()
        server.wait(timeout=60)
        for _ in range(600):
            if not any(Path(f"/proc/{pid}").exists() for pid in children):
                break
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)
        with socket.socket() as sock:  # nobody listens there any more
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_without_scans_one_serving_process_still_does_the_plugins_background_work(tmp_path):
    """``serve --no-scan --workers N``: nobody scans, and exactly one process runs the
    plugins' own background work (HLS pre-generation), the one holding the lock."""
    import asyncio

    from kernel.background import BackgroundLock
    from kernel.core import Kernel
    from kernel.testing import make_config

    library = tmp_path / "library"
    library.mkdir()
    kernels = []
    for n in range(2):
        config = make_config(tmp_path / f"k{n}", f"sqlite:///{tmp_path / 'shared.db'}",
                             library=library)  # fmt: skip
        kernel = Kernel(config, only=[])
        kernel.background_lock = BackgroundLock(tmp_path / "background.lock")
        kernels.append(kernel)
    kernels[0].migrate()

    async def start_both() -> list[bool]:
        for kernel in kernels:
            await kernel.start(background=False)
        roles = [kernel.serve_only for kernel in kernels]
        for kernel in kernels:
            await kernel.stop()
        return roles

    assert asyncio.run(start_both()) == [False, True]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pid_over(sock: socket.socket) -> int:
    """``GET /health`` on an open keep-alive connection: the pid of the process serving it."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return int(re.search(rb'"pid":\s*(\d+)', body).group(1))


@pytest.mark.skipif(bool(os.environ.get("IMAGEAPI_TEST_DATABASE_URL")), reason="SQLite default")
def test_connections_opened_at_once_are_spread_over_the_serving_processes(tmp_path):
    """Each serving process listens on a socket of its own: 32 connections opened at once
    (an app's pool, a benchmark) land on both processes, not all on whichever accepted
    first, and when a process dies its replacement listens again."""
    library = tmp_path / "library"
    library.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "IMAGEAPI_CONFIG")}
    env.update({"BIND_URL": f"127.0.0.1:{port}", "BASE_PATH": str(library)})
    (tmp_path / "plugins.toml").write_text("")
    log = tmp_path / "serve.log"
    command = [sys.executable, "-c", "from kernel.cli import main; main()", "serve"]
    with open(log, "wb") as out:
        # Started with SIGINT ignored, as a script's background job is: Ctrl-C must stop
        # the supervisor all the same, or it restarts the processes that did stop.
        server = subprocess.Popen([*command, "--workers", "2", "--no-scan"], cwd=tmp_path,
                                  env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=_ignore_sigint)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert len(_health_by_process(base, want=2)) == 2, log.read_text()
        for _round in range(2):
            connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
            try:
                served_by = [_pid_over(sock) for sock in connections]
            finally:
                for sock in connections:
                    sock.close()
            shares = sorted(served_by.count(pid) for pid in set(served_by))
            assert len(shares) == 2 and shares[0] >= 6, shares
            # A process that dies is replaced, and the new one gets connections too.
            os.kill(served_by[0], 9)
            for _ in range(600):
                seen = _health_by_process(base, want=2, tries=40)
                if len(seen) == 2 and served_by[0] not in seen:
                    break
                time.sleep(0.1)
        # Sockets that share the port do not let a second server share it too.
        second = subprocess.run([*command, "--workers", "2"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}: something is listening" in second.stderr
        # Ctrl-C in a terminal reaches every process of the group: a clean stop.
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(timeout=60) == 0
    finally:
        server.terminate()
        server.wait(timeout=60)
    text = log.read_text()
    assert "starting another" in text and "Traceback" not in text, text[-3000:]
