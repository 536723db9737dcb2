"""``GET /image``: an original, or a derived rendition through the ``render`` hook.

A rendition of a file that is on disk but not indexed yet (just copied in, before the
watcher or a scan saw it) is not a 404: the file is indexed on demand, exactly as an
upload is, then rendered. Concurrent first requests for one file share that work.
"""

from __future__ import annotations

import asyncio
import os
from stat import S_ISREG
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from kernel.index import Stat
from kernel.libraries import PathRefused, ResolvedPath
from kernel.schemas import BAD_REQUEST
from kernel.types import FileRef
from kernel.versioned import VersionedCache
from kernel.walk import link_allowed, within
from media.mediatypes import content_type_for, media_type_for
from media.serving import send_file

if TYPE_CHECKING:
    from kernel.core import Kernel

ORIGINAL_SIZES = frozenset({"", "full", "original"})
KNOWN_FILES = 4096  # index rows kept per process for renditions, until the next commit
FILE_BYTES = ResponseSpec(
    data_container=bytes,
    media_type="application/octet-stream",
    description=(
        "The file, sent with its own Content-Type (image/..., video/...); ETag,"
        " Last-Modified and byte ranges (206) are honoured."
    ),
    generate_examples=False,
)


def indexable(kernel: Kernel, resolved: ResolvedPath) -> Stat | None:
    """What a full scan would index at this path, or None: a media file by extension,
    not reached through a linked folder, outside every derived folder (a linked file
    only if it points inside the library, like the scanner's walk)."""
    media_type = media_type_for(resolved.rel_path)
    if media_type is None or not resolved.rel_path:
        return None
    root = str(resolved.library.root)
    candidate = os.path.join(root, *resolved.rel_path.split("/"))
    skip = kernel.skip_dirs
    parent = os.path.dirname(candidate)
    if os.path.realpath(parent) != parent or within(candidate, skip):
        return None
    if os.path.islink(candidate) and not link_allowed(candidate, root, skip):
        return None
    try:
        st = os.stat(candidate)
    except OSError:
        return None
    if not S_ISREG(st.st_mode):
        return None
    return Stat(resolved.rel_path, st.st_size, st.st_mtime_ns, media_type)


def route(kernel: Kernel) -> HTTPRouteHandler:
    """``GET /image`` of one app; the on-demand indexing in flight is shared per file."""
    pending: dict[tuple[int, str], asyncio.Future[FileRef | None]] = {}
    known: VersionedCache[FileRef] = VersionedCache(KNOWN_FILES)

    async def index_on_demand(resolved: ResolvedPath) -> FileRef | None:
        stat = await asyncio.to_thread(indexable, kernel, resolved)
        if stat is None:
            return None
        ref = await kernel.ingest.add(resolved.library, stat)
        kernel.spawn_background(kernel.scanner.hash_backlog(), "hash on demand")
        return ref

    async def indexed(resolved: ResolvedPath) -> FileRef | None:
        key = (resolved.library.id, resolved.rel_path)
        version = kernel.db.local_version()
        ref = known.get(key, version)
        if ref is None:
            ref = await asyncio.to_thread(kernel.index.get, *key)
        if ref is not None:
            known.put(key, version, ref)
            return ref
        task = pending.get(key)
        if task is None:
            task = pending[key] = asyncio.ensure_future(index_on_demand(resolved))
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
        resolved = kernel.libraries.resolve(library, file_path)
        folder = PathRefused(400, "path is a folder; /photos lists folders")
        wanted = (size or "").strip().lower()
        if wanted in ORIGINAL_SIZES:
            content_type = content_type_for(resolved.abs_path.name)
            try:
                return await send_file(request, resolved.abs_path, content_type)
            except IsADirectoryError:
                raise folder from None
        ref = await indexed(resolved)
        if ref is None:
            if await asyncio.to_thread(resolved.abs_path.is_dir):
                raise folder
            raise NotFoundException(f"{resolved.rel_path} is not a photo or video of the index")
        fmt = (format or "jpeg").strip().lower()
        result = await kernel.hooks.render(ref, wanted, fmt)
        if result is None:
            raise NotFoundException(f"no enabled plugin renders size={wanted!r} format={fmt!r}")
        return await send_file(
            request, result.path, result.media_type, cache_seconds=result.cache_seconds
        )

    return get_image
