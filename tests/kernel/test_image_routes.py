"""GET /image (originals: caching headers, ranges) and POST /image (uploads)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from kernel.testing import harness, make_jpeg, make_video

pytestmark = pytest.mark.db


def jpeg_bytes(color=(10, 200, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, "JPEG")
    return buffer.getvalue()


def test_original_with_caching_headers(tmp_path, library):
    path = make_jpeg(library / "a.jpg")
    with harness(tmp_path) as h:
        response = h.get("/image", params={"path": "a.jpg"})
        assert response.status_code == 200
        assert response.content == path.read_bytes()
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["last-modified"].endswith("GMT")
        etag = response.headers["etag"]
        again = h.get("/image", params={"path": "a.jpg"}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        stale = h.get("/image", params={"path": "a.jpg"}, headers={"If-None-Match": '"x"'})
        assert stale.status_code == 200


def test_range_requests(tmp_path, library):
    data = make_video(library / "clip.mp4").read_bytes()
    size = len(data)
    with harness(tmp_path) as h:

        def fetch(value):
            return h.get("/image", params={"path": "clip.mp4"}, headers={"Range": value})

        first = fetch("bytes=0-99")
        assert first.status_code == 206
        assert first.headers["content-range"] == f"bytes 0-99/{size}"
        assert first.content == data[:100]
        assert first.headers["content-type"] == "video/mp4"
        tail = fetch("bytes=-50")
        assert tail.status_code == 206 and tail.content == data[-50:]
        rest = fetch(f"bytes={size - 10}-")
        assert rest.content == data[-10:]
        clipped = fetch(f"bytes=10-{size * 2}")
        assert clipped.headers["content-range"] == f"bytes 10-{size - 1}/{size}"
        unsatisfiable = fetch(f"bytes={size}-")
        assert unsatisfiable.status_code == 416
        assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
        assert fetch("bytes=5-2").status_code == 416
        whole = fetch("bytes=0-1,5-6")  # several ranges: the whole file is a valid answer
        assert whole.status_code == 200 and whole.content == data


def test_executable_types_are_never_inline(tmp_path, library):
    (library / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')
    (library / "page.html").write_text("<script>alert(1)</script>")
    with harness(tmp_path) as h:
        for name in ("evil.svg", "page.html"):
            response = h.get("/image", params={"path": name})
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["content-disposition"].startswith("attachment")
            assert response.headers["x-content-type-options"] == "nosniff"


def upload(h, name, content, folder="", **extra):
    return h.post(
        "/image",
        files={"file": (name, content, "application/octet-stream")},
        data={"path": folder, **extra},
    )


def test_upload_is_indexed_and_never_overwrites(tmp_path, library):
    original = make_jpeg(library / "trip" / "photo.jpg").read_bytes()
    with harness(tmp_path) as h:
        first = upload(h, "new.jpg", jpeg_bytes(), "trip")
        assert first.status_code == 201
        assert first.json()["path"] == "trip/new.jpg"
        assert (library / "trip" / "new.jpg").read_bytes() == jpeg_bytes()
        listed = h.get("/photos", params={"path": "trip"}).json()["photos"]
        assert "trip/new.jpg" in listed

        clash = upload(h, "photo.jpg", jpeg_bytes((1, 1, 1)), "trip")
        assert clash.status_code == 201
        assert re.fullmatch(r"trip/photo_\d{10}\.jpg", clash.json()["path"])
        assert (library / "trip" / "photo.jpg").read_bytes() == original
        assert not list((library / "trip").glob(".imageapi-upload-*"))


def test_upload_names_are_reduced_to_a_safe_basename(tmp_path, library):
    with harness(tmp_path) as h:
        response = upload(h, "../../etc/evil name?.jpg", jpeg_bytes())
        assert response.status_code == 201
        assert response.json()["path"] == "evil name_.jpg"
        assert (library / "evil name_.jpg").exists()
        windows = upload(h, "C:\\Users\\me\\holiday.jpg", jpeg_bytes())
        assert windows.json()["path"] == "holiday.jpg"


def test_upload_refusals(tmp_path, library):
    (library / "folder").mkdir()
    toml = "[kernel]\nupload_max_bytes = 2000\n"
    with harness(tmp_path, plugins_toml=toml) as h:
        too_big = upload(h, "big.jpg", jpeg_bytes() + b"\0" * 5000)
        assert too_big.status_code == 413
        assert upload(h, "notes.txt", b"hello").status_code == 415
        assert upload(h, "fake.jpg", b"hello, not a jpeg").status_code == 415
        assert upload(h, "a.jpg", jpeg_bytes(), "../outside").status_code == 400
        assert upload(h, "a.jpg", jpeg_bytes(), "missing-folder").status_code == 404
        assert upload(h, "a.jpg", jpeg_bytes(), "folder").status_code == 201
        assert sorted(p.name for p in library.rglob("*")) == ["a.jpg", "folder"]
