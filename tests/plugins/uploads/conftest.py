"""Helpers for the upload tests: multipart bodies written by hand (so a test can send
what a browser or a broken client sends, in any order) and a live ``imageapi serve``
whose memory is read from ``/proc``.

(Test modules are imported with ``--import-mode=importlib``, so they reach these
helpers through the ``form`` and ``live_server`` fixtures; ``measure_rss.py`` imports
this module by path.)
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

BOUNDARY = "imageapi-test-boundary-7d3f"
REPO = Path(__file__).resolve().parents[3]
Part = tuple[str, bytes | str, str | bytes | None]  # (field, value, filename or None)


class Form:
    """Multipart bodies and the requests that carry them."""

    BOUNDARY = BOUNDARY

    @staticmethod
    def jpeg(color: tuple[int, int, int] = (10, 200, 10), size: int = 32) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (size, size), color).save(buffer, "JPEG")
        return buffer.getvalue()

    @staticmethod
    def head(name: str, filename: str | bytes | None = None) -> bytes:
        """A part's boundary line and headers, up to where its bytes begin."""
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            raw = filename.encode() if isinstance(filename, str) else filename
            disposition += b'; filename="' + raw + b'"'
        headers = b"Content-Disposition: " + disposition + b"\r\n"
        if filename is not None:
            headers += b"Content-Type: application/octet-stream\r\n"
        return b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n"

    @classmethod
    def part(cls, name: str, value: bytes | str, filename: str | bytes | None = None) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        return cls.head(name, filename) + data + b"\r\n"

    @classmethod
    def body(cls, *parts: Part, end: bool = True) -> bytes:
        body = b"".join(cls.part(*p) for p in parts)
        return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if end else b"")

    @staticmethod
    def headers() -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

    @classmethod
    def send(cls, h: Any, body: bytes) -> httpx.Response:
        return h.post("/image", content=body, headers=cls.headers())

    @staticmethod
    def upload(h: Any, name: str, content: bytes, folder: str = "", **extra: str) -> Any:
        """As clients do it (httpx writes the text fields first, then the file)."""
        return h.post(
            "/image",
            files={"file": (name, content, "application/octet-stream")},
            data={"path": folder, **extra},
        )


@pytest.fixture
def form() -> type[Form]:
    return Form


# --- a live server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak) of a process, in KiB, from /proc."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


#: one process: the tests kill it with -9 and look at what that one process left
SERVE = ("serve", "--no-scan", "--workers", "1")


class LiveServer:
    """``imageapi serve --no-scan`` in its own process, on a free port, with the code of
    ``checkout`` (this worktree by default) and its own data folder and library."""

    def __init__(
        self, home: Path, plugins_toml: str, checkout: Path = REPO, library: Path | None = None
    ) -> None:
        self.home = home
        self.library = library or home / "library"
        self.library.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (home / "plugins.toml").write_text(plugins_toml)
        pythonpath = [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "IMAGEAPI_TEST_DATABASE_URL"},
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "BIND_URL": f"127.0.0.1:{self.port}",
            "BASE_PATH": str(self.library),
            "IMAGEAPI_DATA_DIR": str(home / "data"),
            "DATABASE_URL": str(home / "imageapi.db"),
            "IMAGEAPI_CONFIG": str(home / "plugins.toml"),
            "SECRET_KEY": "live-server-secret-key-long-enough-for-hs256",
            "LOG_LEVEL": "warning",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self) -> LiveServer:
        log = self.home / "serve.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from kernel.cli import main; main()", *SERVE],
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(600):
            try:
                if httpx.get(f"{self.base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        found = re.findall(r"password:\s+(\S+)", log.read_text())
        if found:
            self.password = found[0]
        login = {"username": "admin", "password": self.password}
        self.token = httpx.post(f"{self.base}/login", json=login).json()["token"]
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def upload(
        self, size: int, name: str = "big.jpg", folder: str = "", *, text_field: bool = False
    ) -> httpx.Response:
        """POST /image with a file of ``size`` bytes (a JPEG head, then zeros), streamed
        from a generator with its Content-Length, as a browser sends a file; or, with
        ``text_field``, a small file after a text field of ``size`` bytes."""
        head = Form.part("path", folder) + Form.head("file", name)
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        picture = Form.jpeg()
        if text_field:
            head, tail = Form.head("caption"), b"\r\n" + Form.body(("file", picture, name))
            picture = b""

        def body() -> Iterator[bytes]:
            yield head + picture
            left = size - len(picture)
            zeros = bytes(1 << 20)
            while left > 0:
                yield zeros[: min(left, len(zeros))]
                left -= len(zeros)
            yield tail

        headers = {
            **self.headers,
            **Form.headers(),
            "Content-Length": str(len(head) + size + len(tail)),
        }
        return httpx.post(f"{self.base}/image", content=body(), headers=headers, timeout=600)

    def post_raw(self, path: str, size: int, *, chunked: bool = False) -> int:
        """POST ``size`` bytes of JSON-ish junk with no token, over a raw socket, stopping
        as soon as the server answers; returns the status it answered."""
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        piece = b"[" + b"0," * ((1 << 19) - 1)
        if chunked:
            piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=120) as sock:
            sock.sendall(f"{head}{framing}\r\n\r\n".encode())
            sent = 0
            try:
                while sent < size and not select.select([sock], [], [], 0)[0]:
                    sock.sendall(piece)
                    sent += len(piece)
                if chunked and sent >= size:
                    sock.sendall(b"0\r\n\r\n")
            except OSError:  # the server answered and closed while we were sending
                pass
            answer = b""
            try:
                while b"\r\n" not in answer:
                    data = sock.recv(4096)
                    if not data:
                        break
                    answer += data
            except OSError:
                pass
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is cleaned up."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def live_server() -> Iterator[Any]:
    """A factory ``live_server(home, plugins_toml)``; every server started is stopped."""
    servers: list[LiveServer] = []

    def start(home: Path, plugins_toml: str = "", **kwargs: Any) -> LiveServer:
        server = LiveServer(home, plugins_toml, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
