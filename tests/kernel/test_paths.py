"""The one resolver: hostile client paths are refused (400) or not found (404), never served."""

from __future__ import annotations

import os

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


@pytest.fixture
def served(tmp_path):
    """A library at srv/media beside srv/media-private, with links pointing out of it."""
    srv = tmp_path / "srv"
    media = srv / "media"
    private = srv / "media-private"
    make_jpeg(media / "ok.jpg")
    make_jpeg(media / "sub" / "inner.jpg")
    make_jpeg(private / "secret.jpg", color=(1, 2, 3))
    os.symlink(private / "secret.jpg", media / "escape.jpg")
    os.symlink(private, media / "private-link")
    os.symlink("/etc", media / "etc-link")
    os.symlink(media / "ok.jpg", media / "inside-link.jpg")
    with harness(tmp_path, library=media) as h:
        yield h, media, private


HOSTILE = [
    ("../media-private/secret.jpg", 400),
    ("sub/../../media-private/secret.jpg", 400),
    ("./../media-private/secret.jpg", 400),
    ("ok.jpg/../../media-private/secret.jpg", 400),
    ("..%2fmedia-private%2fsecret.jpg", 400),
    ("%2e%2e/media-private/secret.jpg", 400),
    ("%2E%2E%2Fmedia-private%2Fsecret.jpg", 400),
    ("%252e%252e/media-private/secret.jpg", 400),
    ("..\\media-private\\secret.jpg", 400),
    ("sub\\..\\..\\media-private\\secret.jpg", 400),
    ("..%5cmedia-private%5csecret.jpg", 400),
    ("/etc/passwd", 400),
    ("C:\\Windows\\win.ini", 400),
    ("ok.jpg\x00.png", 400),
    ("escape.jpg", 400),
    ("private-link/secret.jpg", 400),
    ("etc-link/passwd", 400),
    ("....//....//etc/passwd", 404),
    ("%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", 404),
    ("\uff0e\uff0e/media-private/secret.jpg", 404),
    ("~/secret.jpg", 404),
    ("missing.jpg", 404),
]


@pytest.mark.parametrize(("client_path", "status"), HOSTILE)
def test_hostile_paths_are_refused(served, client_path, status):
    h, _, _ = served
    response = h.get("/image", params={"path": client_path})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")


def test_absolute_paths_outside_the_root_are_refused(served):
    h, media, private = served
    for absolute in (private / "secret.jpg", f"{media}-private/secret.jpg", f"{media}/../x"):
        response = h.get("/image", params={"path": str(absolute)})
        assert response.status_code == 400, absolute


def test_absolute_path_inside_the_library_is_served(served):
    """The original server accepted an absolute path lying inside the library."""
    h, media, _ = served
    assert h.get("/image", params={"path": str(media / "ok.jpg")}).status_code == 200


def test_ordinary_paths_work(served):
    h, _, _ = served
    assert h.get("/image", params={"path": "ok.jpg"}).status_code == 200
    assert h.get("/image", params={"path": "sub/inner.jpg"}).status_code == 200
    assert h.get("/image", params={"path": "./sub//inner.jpg"}).status_code == 200
    assert h.get("/image", params={"path": "inside-link.jpg"}).status_code == 200


def test_unknown_library_is_404(served):
    h, _, _ = served
    for library in ("2", "../x", "nope"):
        response = h.get("/image", params={"path": "ok.jpg", "library": library})
        assert response.status_code == 404


def test_listing_refuses_the_same_paths(served):
    h, _, _ = served
    assert h.get("/photos", params={"path": "../media-private"}).status_code == 400
    assert h.get("/photos", params={"path": "private-link"}).status_code == 400
    assert h.get("/photos", params={"path": "sub"}).status_code == 200
