"""``GET /image``: an original, or a derived rendition through the ``render`` hook.

A rendition of a file that is on disk but not indexed yet (just copied in, before the
watcher or a scan saw it) is not a 404: the file is indexed on demand, exactly as an
upload is, then rendered. Concurrent first requests for one file share that work.

An answer to a rendition request is kept per process while the database version holds
(``VersionedCache``): a grid of thumbnails asks for the same ones again and again, and
the path resolution, index row and ``render`` decision behind each would be the same.
A kept answer whose file has gone since is asked for again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from kernel.libraries import PathRefused, ResolvedPath
from kernel.media.mediatypes import content_type_for
from kernel.media.serving import send_file
from kernel.schemas import BAD_REQUEST
from kernel.types import FileRef, RenderResult
from kernel.versioned import VersionedCache

if TYPE_CHECKING:
    from kernel.core import Kernel

ORIGINAL_SIZES = frozenset({"", "full", "original"})
FOLDER = "path is a folder; /photos lists folders"
KNOWN_FILES = 4096  # index rows kept per process for renditions, until the next commit
KNOWN_RENDITIONS = 4096  # render answers kept per process, until the next commit
FILE_BYTES = ResponseSpec(
    data_container=bytes,
    media_type="application/octet-stream",
    description=(
        "The file, sent with its own Content-Type (image/..., video/...); ETag,"
        " Last-Modified and byte ranges (206) are honoured."
    ),
    generate_examples=False,
)


def route(kernel: Kernel) -> HTTPRouteHandler:
    """``GET /image`` of one app; the on-demand indexing in flight is shared per file."""
    pending: dict[tuple[int, str], asyncio.Future[FileRef | None]] = {}
    known: VersionedCache[FileRef] = VersionedCache(KNOWN_FILES)
    made: VersionedCache[RenderResult] = VersionedCache(KNOWN_RENDITIONS)

    async def indexed(resolved: ResolvedPath, version: int | None) -> FileRef | None:
        """The file's index row (``version``: the change counter read before this request
        looked anything up), else the file indexed on demand."""
        key = (resolved.library.id, resolved.rel_path)
        ref = known.get(key, version, kernel.index.unchanged)  # kept: still the same row?
        if ref is None:
            ref = await asyncio.to_thread(kernel.index.get, *key)
        if ref is not None:
            known.put(key, version, ref)
            return ref
        task = pending.get(key)
        if task is None:
            task = pending[key] = asyncio.ensure_future(kernel.ingest.on_demand(resolved))
            task.add_done_callback(lambda _: pending.pop(key, None))
        return await asyncio.shield(task)  # one client giving up does not stop the others'

    @get(
        "/image",
        summary="An original file, or a rendition of it with size=",
        responses={200: FILE_BYTES, **BAD_REQUEST},
    )
    async def get_image(
        request: Request,
        file_path: Annotated[str, QueryParameter(name="path")],
        library: FromQuery[str | None] = None,
        size: FromQuery[str | None] = None,
        format: FromQuery[str | None] = None,
    ) -> Any:
        wanted = (size or "").strip().lower()
        if wanted in ORIGINAL_SIZES:
            resolved = kernel.libraries.resolve(library, file_path)
            content_type = content_type_for(resolved.abs_path.name)
            try:
                return await send_file(request, resolved.abs_path, content_type)
            except IsADirectoryError:
                raise PathRefused(400, FOLDER) from None
        fmt = (format or "jpeg").strip().lower()
        key = (library, file_path, wanted, fmt)
        version = kernel.db.local_version()  # read before the answer it guards
        kept = made.get(key, version)
        if kept is not None:
            try:
                return await send_file(
                    request, kept.path, kept.media_type, cache_seconds=kept.cache_seconds
                )
            except FileNotFoundError:  # removed since (a cleanup): ask the plugins again
                made.discard(key)
        resolved = kernel.libraries.resolve(library, file_path)
        ref = await indexed(resolved, version)
        if ref is None:
            if await asyncio.to_thread(resolved.abs_path.is_dir):
                raise PathRefused(400, FOLDER)
            raise NotFoundException(f"{resolved.rel_path} is not a photo or video of the index")
        result = await kernel.hooks.render(ref, wanted, fmt)
        if result is None:
            raise NotFoundException(f"no enabled plugin renders size={wanted!r} format={fmt!r}")
        made.put(key, version, result)
        return await send_file(
            request, result.path, result.media_type, cache_seconds=result.cache_seconds
        )

    return get_image
