"""``POST /image``: an upload, streamed to a staging file and linked into place.

The body is read as it arrives and parsed part by part (``form``); the file's bytes go
to a locked staging file (``staging``) in ~1 MiB batches written from a worker thread,
so memory stays flat whatever the size. What can be refused early is: the folder (when
``path`` comes before the file), the file name (its type, NAME_MAX and PATH_MAX) when the
file part begins, the magic bytes once the first 256 have arrived, the size as soon as
it passes the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from kernel.deps import KernelDep
from kernel.index import Stat
from kernel.libraries import PathRefused, ResolvedPath
from kernel.media.mediatypes import media_type_for, sniff
from kernel.schemas import BAD_REQUEST, Problem

from . import Plugin
from .form import FormHandler, MultipartReader, boundary_of
from .names import check_name, check_target, fs_limits, safe_basename
from .staging import StagedFile

if TYPE_CHECKING:
    from pathlib import Path

    from kernel.libraries import Library

#: The plugin instance whose Router serves the request (see ``Plugin.routes``).
PluginDep = NamedDependency[Plugin]
FEED_BYTES = 1 << 20
SNIFF_BYTES = 256


class Uploaded(msgspec.Struct):
    """Where an upload landed (its name may carry a suffix to avoid a clash)."""

    path: str
    library: int
    id: int | None  # the index row, or None if the file could not be indexed


@contextlib.contextmanager
def disk_errors() -> Iterator[None]:
    """A folder that cannot be written, or a full disk, told as such instead of a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PathRefused(403, "the folder cannot be written to") from None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PathRefused(507, "no space left for the upload") from None
        raise


@dataclass
class Placed:
    library: Library
    rel_path: str
    abs_path: Path
    media_type: str


class Receiver(FormHandler):
    """One upload being received; its methods run in worker threads, one at a time."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.libraries = plugin.kernel.libraries
        self.fields: dict[str, str] = {}
        self.name = ""
        self.media_type = ""
        self.staged: StagedFile | None = None
        self.sniffed = False

    def target(self) -> ResolvedPath:
        """The folder the fields name (``path``, or ``directory``; ``library``)."""
        folder = self.fields.get("path") or self.fields.get("directory") or ""
        resolved = self.libraries.resolve(self.fields.get("library"), folder)
        if not resolved.abs_path.is_dir():
            raise PathRefused(400, "path must be an existing folder")
        return resolved

    def field(self, name: str, value: str) -> None:
        self.fields[name] = value

    def file_start(self, filename: str) -> None:
        self.name = safe_basename(filename)
        media_type = media_type_for(self.name)
        if media_type is None:
            raise PathRefused(415, f"{self.name}: only photo and video files can be uploaded")
        self.media_type = media_type
        if {"path", "directory"} & self.fields.keys():
            target = self.target()
            check_target(target.abs_path, self.name)  # before any byte is stored
            library = target.library
        else:  # the folder comes later: the name must fit at least the library root
            library = self.libraries.get(self.fields.get("library"))
            check_name(self.name, fs_limits(library.root)[1])
        with disk_errors():
            self.staged = StagedFile(self.plugin.staging[library.id])

    def file_data(self, data: memoryview) -> None:
        assert self.staged is not None
        with disk_errors():
            self.staged.write(data)
        if not self.sniffed and len(self.staged.head) >= SNIFF_BYTES:
            self._sniff()

    def file_end(self) -> None:
        if not self.sniffed:
            self._sniff()

    def _sniff(self) -> None:
        assert self.staged is not None
        if sniff(self.staged.head) is None:
            raise PathRefused(415, "only photos and videos can be uploaded")
        self.sniffed = True

    def place(self) -> Placed:
        """Link the complete file into its folder (the form is complete)."""
        assert self.staged is not None
        resolved = self.target()
        check_target(resolved.abs_path, self.name)
        with disk_errors():
            final = self.staged.place(resolved.abs_path, self.name)
        rel_path = "/".join(p for p in (resolved.rel_path, final.name) if p)
        return Placed(resolved.library, rel_path, final, self.media_type)

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.discard()


def feed(reader: MultipartReader, chunks: list[bytes]) -> None:
    for chunk in chunks:
        reader.feed(chunk)


@dataclass
class UploadOperation(Operation):
    """The form the handler parses itself, described for the OpenAPI document."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        form = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "file": Schema(type=OpenAPIType.STRING, format="binary"),  # type: ignore[arg-type]
                "path": Schema(type=OpenAPIType.STRING, description="The target folder."),
                "directory": Schema(type=OpenAPIType.STRING, description="Same as path."),
                "library": text,
            },
            required=["file"],
        )
        content = {"multipart/form-data": OpenAPIMediaType(schema=form)}
        self.request_body = RequestBody(content=content, required=True)


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, generate_examples=False)


async def upload_image(request: Request, plugin: PluginDep, kernel: KernelDep) -> Uploaded:
    """The handler; ``route`` mounts it with the plugin's limit."""
    receiver = Receiver(plugin)
    reader = MultipartReader(
        boundary_of(request.headers.get("content-type")),
        receiver,
        max_file_bytes=plugin.max_bytes,
        max_field_bytes=plugin.settings.max_field_bytes,
    )
    try:
        batch: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            batch.append(chunk)
            size += len(chunk)
            if size >= FEED_BYTES:
                await asyncio.to_thread(feed, reader, batch)
                batch, size = [], 0
        await asyncio.to_thread(feed, reader, batch)
        reader.finish()
        placed = await asyncio.to_thread(receiver.place)
    finally:
        receiver.discard()
    st = placed.abs_path.stat()
    ref = await kernel.ingest.add(
        placed.library, Stat(placed.rel_path, st.st_size, st.st_mtime_ns, placed.media_type)
    )
    kernel.spawn_background(kernel.scanner.hash_backlog(), "hash upload")
    return Uploaded(placed.rel_path, placed.library.id, ref.id if ref else None)


def route(plugin: Plugin, max_body: int) -> HTTPRouteHandler:
    """``POST /image`` for one plugin instance, with its own body limit (the app's is
    small). A bare handler, not a Router: Litestar merges it with the kernel's ``GET
    /image`` into one path (two Routers on one path would each bring an OPTIONS handler).
    """

    def provide_plugin(user: NamedDependency[Any]) -> Plugin:
        return plugin  # ``user`` orders the dependencies, as ``kernel.plugin`` explains

    return post(
        "/image",
        summary="Upload a photo or video into a library folder",
        status_code=201,
        operation_class=UploadOperation,
        responses={
            **BAD_REQUEST,
            413: _problem("The file is larger than the uploads plugin's max_bytes"),
            415: _problem("Not a photo or video (by extension and magic bytes)"),
        },
        dependencies={"plugin": Provide(provide_plugin, sync_to_thread=False)},
        request_max_body_size=max_body,
    )(upload_image)
