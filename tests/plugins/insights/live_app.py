"""The insights plugin served by uvicorn on 127.0.0.1 in a thread, for tests and
benchmarks that need a real client: one that reads Server-Sent Events as they arrive,
or hangs up."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from conftest import Context
from insights_fakes import INSIGHT, Say

from kernel.app import create_app
from kernel.auth import issue_token, list_users
from kernel.core import Kernel
from kernel.testing import fresh_database_url, harness, make_config

FILE = "trip/lake.jpg"


@dataclass
class Live:
    url: str
    headers: dict[str, str]


@contextlib.contextmanager
def live(tmp_path: Any, env: dict[str, str], *before: Say, fake: Any) -> Iterator[Live]:
    """An agentic insight of the photo made through the harness (migrations, a scan),
    then the same database served by uvicorn on 127.0.0.1 in a thread."""
    with fresh_database_url(tmp_path) as url:
        extra = {"c": Context(tmp_path)}
        with harness(tmp_path, ["insights"], extra_plugins=extra, env=env, database_url=url) as h:
            h.scan()
            fake.script = [*before, Say(INSIGHT)]
            made = h.post("/insights/generate/agentic", json={"file_path": FILE})
            assert made.status_code == 200, made.text
        fake.requests.clear()
        fake.finished = 0
        config = make_config(tmp_path, url, library=tmp_path / "library", env=env)
        kernel = Kernel(config, only=["insights"], extra_plugins={"c": Context(tmp_path)})
        user = next(u for u in list_users(kernel.db) if u.username == "tester")
        token = issue_token(config.secret_key, user.id, version=user.token_version)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        app = create_app(kernel, background=False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            host, port = sock.getsockname()[:2]
            yield Live(f"http://{host}:{port}", {"Authorization": f"Bearer {token}"})
        finally:
            server.should_exit = True
            thread.join()
            sock.close()
