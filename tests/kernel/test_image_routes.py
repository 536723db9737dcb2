"""GET /image: originals, with caching headers and ranges (uploads: tests/plugins/uploads)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kernel import RenderResult, hookimpl
from kernel.media.serving import ChunkBuffers
from kernel.media.serving import _read_cached as read_cached
from kernel.testing import TEST_DATABASE_ENV, harness, make_jpeg, make_video

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


def noise_photo(path: Path) -> bytes:
    """A JPEG of pure noise, more than three of the server's reads long; its bytes."""
    noise = np.random.default_rng(7).integers(0, 256, (1600, 2400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=95)
    return path.read_bytes()


def test_a_large_original_streams_whole_and_in_ranges(tmp_path, library):
    """A photo of several MiB is sent in more than one read: every byte arrives, ranges
    across read boundaries are exact, and no answer leaves the file open."""
    path = library / "panorama.jpg"
    data = noise_photo(path)
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


def test_a_chunk_the_transport_still_holds_is_never_overwritten(tmp_path, library):
    """uvicorn's transport (uvloop) keeps a view of every chunk it has not written yet,
    and streamed files are read into reused buffers: a client that reads slowly must
    still get every byte as it is on disk. Here the ASGI send keeps every chunk it is
    given, as such a transport does, and joins them only at the end."""
    data = noise_photo(library / "panorama.jpg")
    with harness(tmp_path) as h:
        for headers, expected in (([], data), ([(b"range", b"bytes=1000-3500000")],
                                               data[1000:3500001])):  # fmt: skip
            chunks = h.client.blocking_portal.call(asgi_get, h, "panorama.jpg", headers)
            assert len(chunks) > 3
            assert b"".join(chunks) == expected


def test_a_client_that_leaves_mid_file_stops_the_reading(tmp_path, library):
    """A video player that seeks drops the connection it was reading: the server stops
    reading the file there and closes it."""
    path = library / "panorama.jpg"
    data = noise_photo(path)
    with harness(tmp_path) as h:
        chunks = h.client.blocking_portal.call(asgi_get, h, "panorama.jpg", [], 1)
        assert 1 <= len(chunks) < 3 and data.startswith(b"".join(chunks))
        assert open_descriptors_of(path) == 0


async def asgi_get(h, path: str, headers: list, leave_after: int = 0) -> list:
    """GET /image?path=... straight through the ASGI app; the body chunks as sent. With
    ``leave_after``, the client disconnects once it has that many chunks."""
    finished = asyncio.Event()
    chunks: list = []
    requested = False

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # as uvicorn: the client "leaves" once the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            if message.get("body"):
                chunks.append(message["body"])  # kept, not copied
            if not message.get("more_body") or len(chunks) == leave_after:
                finished.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/image", "raw_path": b"/image", "root_path": "",
        "query_string": f"path={path}".encode(),
        "headers": [(b"host", b"testserver"),
                    (b"authorization", f"Bearer {h.token}".encode()), *headers],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    await h.app(scope, receive, send)
    return chunks


def test_stream_buffers_are_reused_only_when_nothing_else_holds_them():
    """What keeps streaming an original from faulting in fresh memory for every chunk,
    without ever handing out a buffer a transport is still writing from."""
    buffers = ChunkBuffers(16, keep=2)
    held: list = []
    first = buffers.for_stream(held)
    assert buffers.for_stream(held) is first  # written already: read into it again
    in_flight = memoryview(first)[:8]  # the transport has not written it yet
    second = buffers.for_stream(held)
    assert second is not first and held == [first, second]
    del in_flight
    assert buffers.for_stream(held) is first
    view = memoryview(second)
    buffers.release(held)
    assert buffers.free == [first] and held == []  # still being written: not kept
    del view
    other: list = []
    assert buffers.for_stream(other) is first  # the next stream reuses it
    buffers.release([bytearray(16), bytearray(16), bytearray(16)])
    assert len(buffers.free) == 2  # no more than ``keep``


def evict(path: Path, tries: int = 20) -> bool:
    """Ask the kernel to drop ``path``'s pages from the page cache; whether it did. A page
    still in flight (written back, in a CPU's batch) is kept by one request: ask again."""
    with open(path, "rb") as handle:
        for _ in range(tries):
            os.fsync(handle.fileno())  # clean pages: the kernel may drop them
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            if read_cached(handle.fileno(), memoryview(bytearray(4096)), 0) is None:
                return True
            time.sleep(0.05)
    return False


def cached_read_size(path: Path) -> int | None:
    with open(path, "rb") as handle:
        return read_cached(handle.fileno(), memoryview(bytearray(4096)), 0)


def library_with_a_cold_photo(candidates: list[Path], stack: contextlib.ExitStack):
    """A fresh library holding a noise photo, on the first file system of ``candidates``
    where a cached page is read without waiting and an evicted one is not; None if no
    file system here does both (tmpfs has no disk to wait for and refuses RWF_NOWAIT;
    some overlay file systems keep pages when asked to drop them)."""
    for parent in candidates:
        if not parent.is_dir():
            continue
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=parent)))
        data = noise_photo(folder / "cold.jpg")
        if cached_read_size(folder / "cold.jpg") == 4096 and evict(folder / "cold.jpg"):
            return folder, data
    return None


def test_an_original_not_in_the_page_cache_is_read_in_a_worker_thread(tmp_path):
    """A chunk the page cache holds is read on the event loop; one that needs the disk
    is not (reading it there would stall every other request): it is read in a worker
    thread, and the client gets the same bytes."""
    with contextlib.ExitStack() as stack:
        found = library_with_a_cold_photo(
            [tmp_path, Path("/var/tmp"), Path(__file__).resolve().parents[2]], stack
        )
        if found is None:
            pytest.skip(
                "no file system here both reads cached pages without waiting and drops them"
            )
        library, data = found
        with harness(tmp_path, library=library) as h:
            path = library / "cold.jpg"
            assert evict(path)  # the app's start-up may have read it
            response = h.get("/image", params={"path": "cold.jpg"})
            assert response.status_code == 200 and response.content == data
            assert cached_read_size(path) == 4096  # read once, now cached: read right here


class Stamps:
    """Renders ``size=stamp``: a copy of the original in the test's folder; counts asks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.asked = 0

    @hookimpl
    def render(self, file, size, format):
        if size != "stamp":
            return None
        self.asked += 1
        made = self.folder / f"{file.id}.jpg"
        made.write_bytes(b"stamp of " + file.rel_path.encode())
        return RenderResult(made, "image/jpeg")


@pytest.mark.skipif(
    bool(os.environ.get(TEST_DATABASE_ENV)), reason="SQLite: PostgreSQL has no cheap change counter"
)
def test_a_rendition_answer_is_kept_until_the_database_changes(tmp_path, library):
    """The same rendition asked again (a grid of thumbnails scrolled back and forth) is
    answered without resolving the path, finding its row or asking the plugins again;
    after any commit they are asked again, and so when the answer's file has gone."""
    make_jpeg(library / "a.jpg")
    stamps = Stamps(tmp_path)
    with harness(tmp_path, extra_plugins={"stamps": stamps}) as h:
        h.scan()
        for _ in range(5):
            answer = h.get("/image", params={"path": "a.jpg", "size": "stamp"})
            assert answer.status_code == 200 and answer.content == b"stamp of a.jpg"
        assert stamps.asked == 1
        same = h.get("/image", params={"path": "a.jpg", "size": " STAMP ", "format": "jpeg"})
        assert same.status_code == 200 and stamps.asked == 1  # the same question

        make_jpeg(library / "b.jpg")
        h.scan()  # a commit: asked again
        assert h.get("/image", params={"path": "a.jpg", "size": "stamp"}).status_code == 200
        assert stamps.asked == 2

        (tmp_path / "1.jpg").unlink()  # the answer's file has gone: asked again
        again = h.get("/image", params={"path": "a.jpg", "size": "stamp"})
        assert again.status_code == 200 and again.content == b"stamp of a.jpg"
        assert stamps.asked == 3

        refused = h.get("/image", params={"path": "../a.jpg", "size": "stamp"})
        assert refused.status_code == 400 and stamps.asked == 3
        (library / "a.jpg").unlink()
        h.scan()  # the original is gone from the index: no rendition kept from before
        gone = h.get("/image", params={"path": "a.jpg", "size": "stamp"})
        assert gone.status_code == 404 and stamps.asked == 3
