"""HTTP routes of the tags plugin: ``/image/tags`` and friends, as the Rust server named them.

Every path a client sends goes through ``kernel.libraries.resolve`` and must be a file in
the index; the database work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from kernel.deps import KernelDep
from kernel.libraries import PathRefused
from kernel.schemas import BAD_REQUEST
from kernel.types import InvalidParameter

from . import store

T = TypeVar("T")


class Tag(msgspec.Struct):
    """A tag; ``created_at`` / ``updated_at`` are Unix seconds."""

    id: int
    name: str
    created_at: float
    updated_at: float


class TagWithCount(msgspec.Struct):
    id: int
    name: str
    created_at: float
    updated_at: float
    count: int  # present files carrying the tag (within the folder asked about)


class TagAdded(msgspec.Struct):
    id: int
    name: str
    created_at: float
    updated_at: float
    added: bool  # false when the file already had the tag


class TagRemoved(msgspec.Struct):
    tag_id: int
    removed: bool  # false when the file did not have the tag


class BatchResult(msgspec.Struct):
    files: int
    added: int  # (tag, file) pairs that are new
    removed: int
    tags_added: list[Tag]
    tags_removed: list[int]


class TagDeleted(msgspec.Struct):
    deleted: int  # the tag's id
    files: int  # files it was taken off


def typed(value: Any, kind: type[T]) -> T:
    """The store's JSON-ready answer as the route's declared response type."""
    return msgspec.convert(value, kind)


class FileTagBody(msgspec.Struct):
    """Body of ``POST`` / ``DELETE /image/tags``. ``file_name`` is the Rust server's name
    for ``path`` and is accepted so its clients keep working."""

    path: str | None = None
    file_name: str | None = None
    library: str | int | None = None
    tag_id: int | None = None
    tag_name: str | None = None

    @property
    def file_path(self) -> str | None:
        return self.path if self.path is not None else self.file_name


class BatchBody(msgspec.Struct):
    """Body of ``POST /image/tags/batch``: tag ids (numbers) or names (strings) to add,
    tag ids to remove, on every one of ``paths``."""

    paths: list[str] = []
    library: str | int | None = None
    add: list[int | str] = []
    remove: list[int] = []


class RenameBody(msgspec.Struct):
    name: str


@get(
    "/image/tags/all",
    summary="Every tag, with how many present files carry it",
    responses=BAD_REQUEST,
)
async def list_all_tags(
    kernel: KernelDep,
    folder: Annotated[str | None, QueryParameter(name="path")] = None,
    library: FromQuery[str | None] = None,
    recursive: FromQuery[bool] = False,
) -> list[TagWithCount]:
    library_id: int | None = None
    rel_dir: str | None = None
    if folder is not None:
        resolved = kernel.libraries.resolve(library, folder)
        if not resolved.abs_path.is_dir():
            raise PathRefused(400, "path must be a folder")
        library_id, rel_dir = resolved.library.id, resolved.rel_path
    elif library:
        library_id = kernel.libraries.get(library).id
    found = await asyncio.to_thread(store.all_tags, kernel, library_id, rel_dir, recursive)
    return typed(found, list[TagWithCount])


@get("/image/tags", summary="The tags of one file", responses=BAD_REQUEST)
async def file_tags(
    kernel: KernelDep,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
) -> list[Tag]:
    def run() -> list[dict[str, Any]]:
        ref = store.indexed_file(kernel, library, file_path)
        return store.tags_of_file(kernel, ref.id)

    return typed(await asyncio.to_thread(run), list[Tag])


@post(
    "/image/tags",
    summary="Tag a file by tag_id, or by tag_name (created if new)",
    status_code=200,
    responses=BAD_REQUEST,
)
async def add_tag(kernel: KernelDep, data: JSONBody[FileTagBody]) -> TagAdded:
    def run() -> dict[str, Any]:
        ref = store.indexed_file(kernel, data.library, data.file_path)
        return store.add_to_file(kernel, ref.id, data.tag_id, data.tag_name)

    return typed(await asyncio.to_thread(run), TagAdded)


@delete("/image/tags", summary="Take a tag off a file", status_code=200, responses=BAD_REQUEST)
async def remove_tag(kernel: KernelDep, data: JSONBody[FileTagBody]) -> TagRemoved:
    if data.tag_id is None:
        raise InvalidParameter("tag_id", "the id of the tag to remove is required")
    tag_id = data.tag_id

    def run() -> dict[str, Any]:
        ref = store.indexed_file(kernel, data.library, data.file_path)
        return store.remove_from_file(kernel, ref.id, tag_id)

    return typed(await asyncio.to_thread(run), TagRemoved)


@post(
    "/image/tags/batch",
    summary="Add and remove many tags on many files in one transaction",
    status_code=200,
    responses=BAD_REQUEST,
    # the app's 64 KiB is ~1,000 short paths; room for MAX_BATCH_PATHS long ones
    request_max_body_size=store.MAX_BATCH_PATHS * 800,
)
async def batch_tags(kernel: KernelDep, data: JSONBody[BatchBody]) -> BatchResult:
    done = await asyncio.to_thread(
        store.batch, kernel, data.library, data.paths, data.add, data.remove
    )
    return typed(done, BatchResult)


@patch(
    "/image/tags/{tag_id:int}",
    summary="Rename a tag (409 if the name is taken)",
    responses=BAD_REQUEST,
)
async def rename_tag(kernel: KernelDep, tag_id: FromPath[int], data: JSONBody[RenameBody]) -> Tag:
    return typed(await asyncio.to_thread(store.rename, kernel, tag_id, data.name), Tag)


@delete(
    "/image/tags/{tag_id:int}",
    summary="Delete a tag everywhere",
    status_code=200,
    responses=BAD_REQUEST,
)
async def delete_tag(kernel: KernelDep, tag_id: FromPath[int]) -> TagDeleted:
    return typed(await asyncio.to_thread(store.delete_tag, kernel, tag_id), TagDeleted)


ROUTES = [list_all_tags, file_tags, add_tag, remove_tag, batch_tags, rename_tag, delete_tag]
