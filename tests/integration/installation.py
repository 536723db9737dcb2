"""Real ``imageapi`` processes of one installation over one PostgreSQL, for the scale-out
tests: each process has a data directory of its own (as on separate machines) and shares
the library, the plugins.toml and the database; its output goes to ``NAME.log``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from kernel.testing import TEST_DATABASE_ENV

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from kernel.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Installation:
    """Processes started by name; subclasses add their settings through ``env``."""

    def __init__(self, tmp: Path, url: str, toml: str) -> None:
        self.tmp, self.url = tmp, url
        self.library = tmp / "library"
        (tmp / "plugins.toml").write_text(toml)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.engine = create_engine(url)

    def env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != TEST_DATABASE_ENV}
        env.update(
            DATABASE_URL=self.url,
            BASE_PATH=str(self.library),
            SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
            IMAGEAPI_CONFIG=str(self.tmp / "plugins.toml"),
            IMAGEAPI_DATA_DIR=str(self.tmp / f"data-{name}"),
            LOG_LEVEL="DEBUG",
            PYTHONPATH=str(ROOT),
        )
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [*CLI, *args], env=env or self.env("cli"), capture_output=True, text=True, check=True
        )
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """``imageapi ARGS`` in the background; ``serve`` gets a free port (``ports``)."""
        env = env or self.env(name)
        if args[0] == "serve":
            self.ports[name] = free_port()
            env["BIND_URL"] = f"127.0.0.1:{self.ports[name]}"
        with open(self.tmp / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def sql(self, query: str, **params: object) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.engine.dispose()
