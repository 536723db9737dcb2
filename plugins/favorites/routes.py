"""HTTP routes of the favorites plugin: ``GET``, ``POST`` and ``DELETE /favorites``.

Every route acts for the caller only; the path goes through ``kernel.libraries.resolve``.
"""

from __future__ import annotations

import asyncio

import msgspec
from litestar import delete, get, post
from litestar.params import FromQuery, JSONBody

from kernel.deps import CurrentUser, KernelDep
from kernel.schemas import BAD_REQUEST, FileEntry
from kernel.types import parse_count

from . import store

MAX_LIMIT = 10_000


class FavoriteBody(msgspec.Struct):
    path: str | None = None
    library: str | int | None = None


class FavoriteListing(msgspec.Struct):
    """A page of the caller's favourites, newest first: each file in the one listing
    shape (every plugin's fields) plus ``favorited_at`` (Unix seconds)."""

    photos: list[str]
    files: list[FileEntry]
    total: int
    limit: int | None
    offset: int


class FavoriteAdded(msgspec.Struct):
    path: str
    library: int
    favorite: bool  # always true
    added: bool  # false when it already was one


class FavoriteRemoved(msgspec.Struct):
    path: str
    library: int
    favorite: bool  # always false
    removed: bool  # false when it was not one


@get(
    "/favorites",
    summary="The caller's favourite files, newest first",
    responses=BAD_REQUEST,
)
async def list_favorites(
    kernel: KernelDep,
    user: CurrentUser,
    library: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    offset: FromQuery[str | None] = None,
) -> FavoriteListing:
    library_id = kernel.libraries.get(library).id if library else None
    page_size = parse_count("limit", limit, maximum=MAX_LIMIT)
    skip = parse_count("offset", offset) or 0
    page, entries = await kernel.catalog.read_entries(
        lambda: store.listing(kernel, user.id, library_id, page_size, skip),
        lambda found: found.files,
        user.id,
    )  # one worker-thread hop for the page and every plugin's extras
    for entry in entries:
        entry["favorited_at"] = page.favorited_at[entry["id"]]
    return FavoriteListing(
        photos=[entry["path"] for entry in entries],
        files=entries,  # type: ignore[arg-type]  # FileEntry is these dicts' documented shape
        total=page.total,
        limit=page_size,
        offset=skip,
    )


@post(
    "/favorites",
    summary="Make a file one of the caller's favourites",
    status_code=200,
    responses=BAD_REQUEST,
)
async def add_favorite(
    kernel: KernelDep, user: CurrentUser, data: JSONBody[FavoriteBody]
) -> FavoriteAdded:
    def run() -> FavoriteAdded:
        ref = store.indexed_file(kernel, data.library, data.path)
        added = store.add(kernel, user.id, ref.id)
        return FavoriteAdded(ref.rel_path, ref.library_id, favorite=True, added=added)

    return await asyncio.to_thread(run)


@delete(
    "/favorites",
    summary="Stop a file being one of the caller's favourites",
    status_code=200,
    responses=BAD_REQUEST,
)
async def remove_favorite(
    kernel: KernelDep, user: CurrentUser, data: JSONBody[FavoriteBody]
) -> FavoriteRemoved:
    def run() -> FavoriteRemoved:
        ref = store.indexed_file(kernel, data.library, data.path, present=False)
        removed = store.remove(kernel, user.id, ref.id)
        return FavoriteRemoved(ref.rel_path, ref.library_id, favorite=False, removed=removed)

    return await asyncio.to_thread(run)


ROUTES = [list_favorites, add_favorite, remove_favorite]
