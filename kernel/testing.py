"""Helpers for tests (ours and plugin authors'): an app with just the plugins you name,
on a fresh database and a temporary library, driven through real HTTP requests.

``IMAGEAPI_TEST_DATABASE_URL`` (a PostgreSQL URL whose user may create databases) makes
every harness use its own new PostgreSQL database instead of an SQLite file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from kernel.app import create_app
from kernel.auth import create_user, issue_token, list_users
from kernel.config import Config, load_config
from kernel.core import Kernel
from kernel.media.samples import make_jpeg, make_video
from kernel.scanner import ScanReport

TEST_DATABASE_ENV = "IMAGEAPI_TEST_DATABASE_URL"
__all__ = [
    "Harness",
    "LocalServer",
    "fresh_database_url",
    "harness",
    "make_config",
    "make_jpeg",
    "make_video",
]


@contextlib.contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a new PostgreSQL database dropped afterwards."""
    admin_url = os.environ.get(TEST_DATABASE_ENV)
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'imageapi.db'}"
        return
    name = f"imageapi_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Any, name: str) -> None:
    """Drop a test database. An autovacuum worker busy in it (after a test inserted many
    rows) belongs to the server's superuser, whom ``WITH (FORCE)`` may not terminate:
    try again while it finishes, and leave the database behind rather than fail a test
    that passed."""
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                logging.getLogger(__name__).warning("test database %s left behind: in use", name)
                return
            time.sleep(0.5)


def make_config(
    tmp_path: Path,
    database_url: str,
    *,
    library: Path,
    plugins_toml: str = "",
    env: Mapping[str, str] | None = None,
) -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_file = tmp_path / "plugins.toml"
    config_file.write_text(plugins_toml)
    environ = {
        "IMAGEAPI_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "BASE_PATH": str(library),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        "IMAGEAPI_CONFIG": str(config_file),
        **(env or {}),
    }
    return load_config(environ, env_file=None)


@dataclass
class Harness:
    """A running app, its kernel, a client and a logged-in user."""

    app: Litestar
    kernel: Kernel
    client: TestClient[Litestar]
    library: Path
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """A request as the logged-in user (headers given are added to the token)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    def run(self, coroutine_function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run kernel async code in the app's event loop."""
        assert self.client.blocking_portal is not None
        return self.client.blocking_portal.call(lambda: coroutine_function(*args, **kwargs))

    def scan(self, *, full: bool = True) -> ScanReport:
        return self.run(self.kernel.scanner.scan, full=full)

    def login_as(self, username: str, password: str = "password-123") -> str:
        user = create_user(self.kernel.db, username, password)
        return issue_token(self.kernel.config.secret_key, user.id, version=user.token_version)


@contextlib.contextmanager
def harness(
    tmp_path: Path,
    plugins: Iterable[str] = (),
    *,
    extra_plugins: Mapping[str, object] | None = None,
    plugins_toml: str = "",
    env: Mapping[str, str] | None = None,
    background: bool = False,
    library: Path | None = None,
    database_url: str | None = None,
) -> Iterator[Harness]:
    """An app with exactly ``plugins`` (plus ``extra_plugins``) enabled.

    ``background=False`` (the default) starts no scan loop or watcher: tests call
    ``h.scan()`` when they want one, so results do not depend on timing.
    """
    library = library or tmp_path / "library"
    library.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = database_url or stack.enter_context(fresh_database_url(tmp_path))
        config = make_config(tmp_path, url, library=library, plugins_toml=plugins_toml, env=env)
        kernel = Kernel(config, only=list(plugins), extra_plugins=extra_plugins)
        app = create_app(kernel, background=background)
        existing = next((u for u in list_users(kernel.db) if u.username == "tester"), None)
        user = existing or create_user(kernel.db, "tester", "password-123")
        token = issue_token(config.secret_key, user.id, version=user.token_version)
        with TestClient(app=app, raise_server_exceptions=False) as client:
            yield Harness(app, kernel, client, library, token)


class LocalServer:
    """A fake of an external HTTP service (Apollo, Ollama, an SMS API) for tests: a
    threaded server on 127.0.0.1 at a free port, a context manager. Its handler reaches
    the fake as ``self.server.fake``; ``release`` is set on exit, so a handler holding a
    request open (a stall) lets go."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
