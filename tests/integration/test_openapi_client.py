"""A client generated from the document works: ``openapi-python-client`` turns the
running server's ``/schema/openapi.json`` into a Python package, which then logs in,
lists photos by camera in date order and tags a file on a live uvicorn."""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from kernel.app import create_app
from kernel.core import Kernel
from kernel.testing import fresh_database_url, harness, make_config, make_jpeg

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("exif", "tags")]

PLUGINS = ["exif", "tags"]
PACKAGE = "imageapi_generated_client"


@contextlib.contextmanager
def live_server(kernel: Kernel) -> Iterator[str]:
    """The app on 127.0.0.1 in a thread; its base URL. The socket listens before uvicorn
    starts, so a request made meanwhile waits in the backlog instead of failing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    app = create_app(kernel, background=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def generate_client(base_url: str, into: Path) -> ModuleType:
    """Generate a client package from the server's document (in ``into``, which is on
    ``sys.path``) and import it."""
    document = httpx.get(f"{base_url}/schema/openapi.json")
    assert document.status_code == 200
    (into / "openapi.json").write_bytes(document.content)
    (into / "config.yaml").write_text("post_hooks: []\n")  # no formatter needed to import it
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate",
         "--path", str(into / "openapi.json"), "--config", str(into / "config.yaml"),
         "--meta", "none", "--output-path", str(into / PACKAGE)],
        capture_output=True, text=True, cwd=into,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


@pytest.fixture
def client_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for the generated package, forgotten afterwards."""
    folder = tmp_path / "generated"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_generated_client_logs_in_lists_by_camera_and_date_and_tags(
    tmp_path: Path, library: Path, client_dir: Path
) -> None:
    make_jpeg(library / "2019" / "canon-old.jpg", make="Canon", taken=datetime(2019, 4, 12, 9))
    make_jpeg(library / "2023" / "canon-new.jpg", make="Canon", taken=datetime(2023, 8, 1, 18))
    make_jpeg(library / "2021" / "iphone.jpg", make="Apple", taken=datetime(2021, 6, 2, 12))
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path, PLUGINS, database_url=url) as h:  # migrate, the user, a scan
            h.scan()
        config = make_config(tmp_path, url, library=library)
        kernel = Kernel(config, only=PLUGINS)
        with live_server(kernel) as base_url:
            api = generate_client(base_url, client_dir)
            run(api, base_url)


def run(api: ModuleType, base_url: str) -> None:
    models = importlib.import_module(f"{api.__name__}.models")

    def endpoint(name: str) -> ModuleType:
        return importlib.import_module(f"{api.__name__}.api.default.{name}")

    with api.Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        login = endpoint("login_login")
        token = login.sync(
            client=anonymous,
            body=models.LoginRequest(username="tester", password="password-123"),
        )
        assert isinstance(token, models.TokenResponse) and token.token
        refused = login.sync(
            client=anonymous, body=models.LoginRequest(username="tester", password="wrong")
        )
        assert isinstance(refused, models.Problem) and refused.status_code == 401

    with api.AuthenticatedClient(
        base_url=base_url, token=token.token, raise_on_unexpected_status=True
    ) as client:
        list_and_tag(client, models, endpoint)


def list_and_tag(client: Any, models: ModuleType, endpoint: Any) -> None:
    list_photos = endpoint("photos_list_photos")
    listing = list_photos.sync(
        client=client,
        recursive=True,
        camera_make="canon",
        sort=models.PhotosListPhotosSort.DATETAKENDESC,
    )
    assert isinstance(listing, models.PhotoListing)
    assert listing.photos == ["2023/canon-new.jpg", "2019/canon-old.jpg"]
    assert listing.total == 2 and listing.sort == "DateTakenDesc"
    assert isinstance(listing.library, models.LibraryInfo) and listing.library.id == 1
    newest = listing.files[0]
    assert isinstance(newest, models.FileEntry)
    assert newest.path == "2023/canon-new.jpg" and newest.media_type == "photo"
    assert len(newest.content_hash) == 64
    # What plugins add arrives beside the kernel's fields.
    assert newest.additional_properties["date_taken"].startswith("2023-08-01T18:00:00")
    assert newest.additional_properties["tags"] == []

    added = endpoint("image_tags_add_tag").sync(
        client=client, body=models.FileTagBody(path="2023/canon-new.jpg", tag_name="Beach")
    )
    assert isinstance(added, models.TagAdded)
    assert added.name == "Beach" and added.added is True
    tags = endpoint("image_tags_file_tags").sync(client=client, path="2023/canon-new.jpg")
    assert [(t.id, t.name) for t in tags] == [(added.id, "Beach")]
    tagged = list_photos.sync(client=client, recursive=True, tag_ids=str(added.id))
    assert tagged.photos == ["2023/canon-new.jpg"]
    assert tagged.files[0].additional_properties["tags"] == [{"id": added.id, "name": "Beach"}]
    bad = list_photos.sync(client=client, limit=-1)
    assert isinstance(bad, models.Problem) and bad.parameter == "limit"
