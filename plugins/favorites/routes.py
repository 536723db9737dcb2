"""HTTP routes of the favorites plugin: ``GET``, ``POST`` and ``DELETE /favorites``.

Every route acts for the caller only; the path goes through ``kernel.libraries.resolve``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import delete, get, post
from litestar.params import FromQuery, JSONBody

from kernel.deps import CurrentUser, KernelDep
from kernel.types import parse_count

from . import store

MAX_LIMIT = 10_000


class FavoriteBody(msgspec.Struct):
    path: str | None = None
    library: str | int | None = None


@get("/favorites", summary="The caller's favourite files, newest first")
async def list_favorites(
    kernel: KernelDep,
    user: CurrentUser,
    library: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    offset: FromQuery[str | None] = None,
) -> dict[str, Any]:
    library_id = kernel.libraries.get(library).id if library else None
    page_size = parse_count("limit", limit, maximum=MAX_LIMIT)
    skip = parse_count("offset", offset) or 0
    entries, total = await asyncio.to_thread(
        store.listing, kernel, user.id, library_id, page_size, skip
    )
    return {
        "photos": [entry["path"] for entry in entries],
        "files": entries,
        "total": total,
        "limit": page_size,
        "offset": skip,
    }


@post("/favorites", summary="Make a file one of the caller's favourites", status_code=200)
async def add_favorite(
    kernel: KernelDep, user: CurrentUser, data: JSONBody[FavoriteBody]
) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        ref = store.indexed_file(kernel, data.library, data.path)
        added = store.add(kernel, user.id, ref.id)
        return {"path": ref.rel_path, "library": ref.library_id, "favorite": True, "added": added}

    return await asyncio.to_thread(run)


@delete("/favorites", summary="Stop a file being one of the caller's favourites", status_code=200)
async def remove_favorite(
    kernel: KernelDep, user: CurrentUser, data: JSONBody[FavoriteBody]
) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        ref = store.indexed_file(kernel, data.library, data.path, present=False)
        removed = store.remove(kernel, user.id, ref.id)
        return {
            "path": ref.rel_path,
            "library": ref.library_id,
            "favorite": False,
            "removed": removed,
        }

    return await asyncio.to_thread(run)


ROUTES = [list_favorites, add_favorite, remove_favorite]
