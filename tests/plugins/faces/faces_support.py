"""Helpers of the faces tests (also used by the cross-plugin tests and the benchmark):
apps with the faces plugin pointed at a fake Apollo, photos whose faces the fake finds
deterministically."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from PIL import Image

from kernel.testing import harness

NO_RETRY_WAIT = "[plugins.faces]\nretry_base_seconds = 0\n"


def photo(path: Path, colour: tuple[int, int, int], size=(96, 64), orientation=None) -> Path:
    """A solid-colour JPEG: one face for the fake (two when twice as wide as high)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.new("RGB", size, colour).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def faces_app(tmp_path: Path, url: str | None, *, plugins_toml: str = NO_RETRY_WAIT,
              env: dict | None = None, extra_plugins=None, plugins=("faces",), **kw):  # fmt: skip
    environ = {"APOLLO_FACE_API_BASE_URL": url} if url else {}
    environ.update(env or {})
    with harness(
        tmp_path, list(plugins), env=environ, plugins_toml=plugins_toml,
        extra_plugins=extra_plugins, **kw,
    ) as h:  # fmt: skip
        yield h


def drain(h, limit: int = 500) -> int:
    return h.run(h.kernel.hooks.drain_backlog, limit)["faces"]


def faces_of(h, path: str, **params) -> dict:
    response = h.get("/image/faces", params={"path": path, **params})
    assert response.status_code == 200, response.text
    return response.json()
