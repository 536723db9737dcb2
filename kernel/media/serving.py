"""Serving files from disk: ETag / If-None-Match, Last-Modified, and byte ranges.

Video players seek with ``Range`` requests, so originals and derived files both go
through here. Anything a browser could execute (SVG, HTML, ...) is sent as an attachment
and never sniffed.

``send_file`` is the way in from async code. It opens the file on the event loop (one
path lookup, as cheap as the stat it replaced) and keeps that open file: a file up to
``SMALL_FILE`` (a thumbnail, a playlist, a segment) is read whole, in a worker thread
unless it is tiny, and sent as one body; a larger one streams from the same open file
in ``CHUNK`` reads into reused buffers (``ChunkBuffers``). A chunk the page cache holds
is read on the event loop (``RWF_NOWAIT`` says whether it does) and only one that needs
the disk in a worker thread: a 4.7 MB original took nine thread hops (stat, open, seek,
five reads, close), each a context switch, which were a fifth of the server's CPU time
when it served originals.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from io import FileIO
from pathlib import Path
from stat import S_ISDIR
from typing import Any

from anyio import create_task_group
from litestar import Request, Response
from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse

CHUNK = 1024 * 1024
NOWAIT = getattr(os, "RWF_NOWAIT", 0)
KEPT_BUFFERS = 16  # 16 MB a serving process keeps for streaming files
SMALL_FILE = 1024 * 1024
INLINE_READ = 64 * 1024
INLINE_SAFE_PREFIXES = ("image/", "video/", "audio/")
INLINE_UNSAFE = frozenset({"image/svg+xml"})


class ChunkBuffers:
    """The buffers a streamed file is read into, kept for the next chunk and the next file.

    Reading each chunk into a new ``bytes`` made the allocator hand a megabyte back to the
    system and fault the next one in again: about 600 page faults for a 4.7 MB original
    under load, which cost the server more CPU than sending the file. A buffer is
    reused only once no view of it is left: the transport keeps a view of what it has
    not written yet. At most ``keep`` free buffers stay between files; a stream that
    needs more makes them, and they go back to the allocator when the transport is
    done with them."""

    def __init__(self, size: int, keep: int) -> None:
        self.size = size
        self.keep = keep
        self.free: list[bytearray] = []

    def for_stream(self, held: list[bytearray]) -> bytearray:
        """A buffer for the next chunk of the stream that holds ``held``: one of its own
        the transport has finished with, else a kept one, else a new one."""
        for buffer in held:
            if _unviewed(buffer):
                return buffer
        buffer = self.free.pop() if self.free else bytearray(self.size)
        held.append(buffer)
        return buffer

    def release(self, held: list[bytearray]) -> None:
        """The stream is over: its buffers nobody else holds are kept, up to ``keep``."""
        while held:
            buffer = held.pop()
            if len(self.free) < self.keep and _unviewed(buffer):
                self.free.append(buffer)


def _unviewed(buffer: bytearray) -> bool:
    """Whether no view of ``buffer`` is left: a bytearray cannot change size while one
    is (the size is given back at once)."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    del buffer[-1]
    return True


BUFFERS = ChunkBuffers(CHUNK, keep=KEPT_BUFFERS)


class FileChunks(ASGIStreamingResponse):
    """Litestar's streaming response, sending each chunk as it comes: a view of a
    reused buffer rather than ``bytes`` (which the transport takes as well)."""

    __slots__ = ()

    async def send_body(self, send: Any, receive: Any) -> None:
        async with create_task_group() as task_group:

            async def stream() -> None:
                async for chunk in self.iterator:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    del chunk  # its buffer is free for the next chunk once the transport is
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                task_group.cancel_scope.cancel()  # all sent: stop listening

            task_group.start_soon(stream)
            while (await receive())["type"] != "http.disconnect":
                pass
            task_group.cancel_scope.cancel()  # the client has gone: stop reading the file


class FileStream(Stream):
    """A Stream of a file's chunks whose own media type wins over the handler's default
    (JSON)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["media_type"] = self.media_type
        response = super().to_asgi_response(*args, **kwargs)
        # Litestar builds its own streaming response with no way to choose the class;
        # FileChunks adds no field, only its ``send_body``.
        response.__class__ = FileChunks
        return response


class WholeBody(Response[bytes]):
    """A file read whole, sent as one body by the response itself.

    Litestar turns a returned ``Response`` into an ``ASGIResponse``: the layers' headers
    merged in, the content rendered for its media type, the header list built again.
    For the most frequent answer of a photo server (an already-made thumbnail, a few kB)
    that was a fifth of the request's time. This one is its own ASGI app when no layer
    adds headers, cookies or a background task (none does for the file routes), and
    takes Litestar's general path when one does.
    """

    __slots__ = ()

    def to_asgi_response(  # type: ignore[override]
        self, app: Any, request: Request, **layers: Any
    ) -> Any:
        if layers.get("headers") or layers.get("cookies") or layers.get("background"):
            layers["media_type"] = self.media_type
            return super().to_asgi_response(app, request, **layers)
        return self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", str(self.media_type).encode("latin-1"))]
        headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        body = b"" if scope.get("method") == "HEAD" else self.content
        await send({"type": "http.response.body", "body": body, "more_body": False})


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def etag_for(st: os.stat_result, extra: str = "") -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}{extra}"'


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive), None to send the whole file, or "unsatisfiable"."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown unit or several ranges: the whole file is a valid answer
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or start < 0 or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _read_cached(fd: int, window: memoryview, offset: int) -> int | None:
    """What of ``window`` the page cache holds, read right here; None when none of it is
    cached (reading would wait for the disk) or the system cannot tell."""
    if not NOWAIT:
        return None
    try:
        return os.preadv(fd, [window], offset, NOWAIT)
    except OSError:  # EAGAIN: on disk only; EOPNOTSUPP: the file system cannot tell
        return None


async def _read(
    path: Path, start: int, length: int, handle: FileIO | None = None
) -> AsyncIterator[memoryview]:
    """``length`` bytes from ``start`` in views of ``BUFFERS`` buffers, each read where
    ``_read_cached`` can or else in a worker thread, from ``handle`` (opened in a worker
    thread when None); closed at the end. A stream never started (a HEAD request, a
    client gone) drops ``handle``, which closes it."""
    loop = asyncio.get_running_loop()
    held: list[bytearray] = []
    try:
        if handle is None:
            handle = await loop.run_in_executor(None, FileIO, path)
        offset, end = start, start + length
        while offset < end:
            buffer = BUFFERS.for_stream(held)
            window = memoryview(buffer)[: min(len(buffer), end - offset)]
            count = _read_cached(handle.fileno(), window, offset)
            if count is None:
                count = await loop.run_in_executor(
                    None, os.preadv, handle.fileno(), [window], offset
                )
            else:
                await asyncio.sleep(0)  # the other requests' turn, as a thread hop gave them
            if not count:
                break
            offset += count
            yield window[:count]
            del window
    finally:
        if handle is not None:
            handle.close()
        BUFFERS.release(held)


def serve_file(
    request: Request,
    path: Path,
    content_type: str,
    *,
    cache_seconds: int = 0,
    etag: str | None = None,
    download_name: str | None = None,
    stat: os.stat_result | None = None,
    body: bytes | None = None,
    handle: FileIO | None = None,
) -> Response[bytes] | Stream:
    """The response for a file: ``stat`` and ``body`` (all of it) when already read;
    ``handle``, the file already open, is what a stream reads from."""
    st = stat if stat is not None else path.stat()
    tag = etag or etag_for(st)
    headers = {
        "ETag": tag,
        "Last-Modified": _http_date(int(st.st_mtime)),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": f"private, max-age={cache_seconds}" if cache_seconds else "no-cache",
    }
    inline = content_type.startswith(INLINE_SAFE_PREFIXES) and content_type not in INLINE_UNSAFE
    if not inline:
        content_type = "application/octet-stream"
        name = (download_name or path.name).replace('"', "")
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if _not_modified(request, tag, st.st_mtime):
        return Response(content=b"", status_code=304, headers=headers)
    size = st.st_size
    wanted = (
        parse_range(request.headers.get("range", ""), size) if "range" in request.headers else None
    )
    if wanted == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{size}"
        return Response(content=b"", status_code=416, headers=headers)
    if isinstance(wanted, tuple) and request.headers.get("if-range") not in (None, tag):
        wanted = None
    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    status = 200
    if isinstance(wanted, tuple):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if body is not None and len(body) == size:
        return WholeBody(
            content=body[start : end + 1], status_code=status, headers=headers,
            media_type=content_type,
        )  # fmt: skip
    return FileStream(
        content=_read(path, start, length, handle),
        status_code=status,
        headers=headers,
        media_type=content_type,
    )


def _not_modified(request: Request, tag: str, mtime: float) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return tag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return int(mtime) <= int(parsedate_to_datetime(since).timestamp())
        except (TypeError, ValueError, OverflowError):
            return False
    return False


async def send_file(
    request: Request, path: Path, content_type: str, **options: Any
) -> Response[bytes] | Stream:
    """``serve_file`` from the file opened here, on the event loop (like the stat it
    replaces, it blocks only when the disk is cold). Its stat and bytes come from that
    one open file: a rendition replaced (renamed over) meanwhile is sent old and whole,
    never a mix. A file up to ``INLINE_READ`` bytes is read right here (14 kB from the
    page cache costs less than handing it to a thread and back), one up to
    ``SMALL_FILE`` in one worker-thread hop; a larger one streams from the open file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    handle: FileIO | None = None
    try:
        st = os.fstat(fd)  # one stat (a FileIO made here would take its own as well)
        if S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))  # the caller's 400
        body: bytes | None = None
        # pread, never read: a client gone mid-hop closes the file while the thread may
        # still read, and a read by number must not move another file's position
        if st.st_size <= INLINE_READ:
            body = os.pread(fd, st.st_size, 0)
        elif st.st_size <= SMALL_FILE:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(None, os.pread, fd, st.st_size, 0)
        if body is not None and len(body) != st.st_size:
            body = None  # cut short while read: streamed as far as it goes
        if body is None:
            handle = FileIO(fd, closefd=True)  # the stream's, and it closes ``fd``
        response = serve_file(request, path, content_type, stat=st, body=body, handle=handle,
                              **options)  # fmt: skip
    except BaseException:
        _close(fd, handle)
        raise
    if not isinstance(response, FileStream):
        _close(fd, handle)  # answered from ``body``, or without the bytes (304, 416)
    return response


def _close(fd: int, handle: FileIO | None) -> None:
    if handle is not None:
        handle.close()
    else:
        os.close(fd)
