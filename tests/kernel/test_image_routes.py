"""GET /image: originals, with caching headers and ranges (uploads: tests/plugins/uploads)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kernel.testing import harness, make_jpeg, make_video

pytestmark = pytest.mark.db


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


def open_descriptors_of(path: Path) -> int:
    """How many of this process's file descriptors point at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def test_a_large_original_streams_whole_and_in_ranges(tmp_path, library):
    """A photo of several MiB is sent in more than one read: every byte arrives, ranges
    across read boundaries are exact, and no answer leaves the file open."""
    noise = np.random.default_rng(7).integers(0, 256, (1600, 2400, 3), dtype=np.uint8)
    path = library / "panorama.jpg"
    Image.fromarray(noise).save(path, quality=95)
    data = path.read_bytes()
    size = len(data)
    assert size > 3 * 1024 * 1024  # more than three of the server's reads
    with harness(tmp_path) as h:
        whole = h.get("/image", params={"path": "panorama.jpg"})
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-length"] == str(size)
        for first, last in ((1048570, 1048580), (0, 2097152), (size - 5, size - 1)):
            part = h.get("/image", params={"path": "panorama.jpg"},
                         headers={"Range": f"bytes={first}-{last}"})  # fmt: skip
            assert part.status_code == 206
            assert part.content == data[first : last + 1]
        etag = whole.headers["etag"]
        cached = h.get("/image", params={"path": "panorama.jpg"},
                       headers={"If-None-Match": etag})  # fmt: skip
        assert cached.status_code == 304
        assert h.get("/image", params={"path": "panorama.jpg"},
                     headers={"Range": f"bytes={size}-"}).status_code == 416  # fmt: skip
        assert open_descriptors_of(path) == 0


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
