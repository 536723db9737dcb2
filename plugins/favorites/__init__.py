"""favorites: each user's favourite files — ``/favorites`` routes, a ``favorites=true|false``
filter for ``/photos``, a ``favorite`` flag on every listed file, and an LLM tool.

Favourites are per user: the filter, the flag and the tool only ever see the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import msgspec
from sqlalchemy import false

from kernel import SearchFilter, SearchQuery, Tool, hookimpl
from kernel.core import Kernel
from kernel.types import FileRef, SearchParam, ToolContext

from . import store
from .routes import ROUTES


class ListFavoritesParams(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20


async def _list_favorites_tool(params: ListFavoritesParams, ctx: ToolContext) -> dict[str, Any]:
    if ctx.user_id is None:
        return {"error": "favourites belong to a user, and no user is asking"}
    page = await asyncio.to_thread(store.listing, ctx.kernel, ctx.user_id, None, params.limit, 0)
    return {
        "favorites": [{"path": ref.rel_path, "library": ref.library_id} for ref in page.files],
        "total": page.total,
    }


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def routes() -> list[object]:
    return list(ROUTES)


@hookimpl
def search_params() -> list[SearchParam]:
    return [SearchParam("favorites", bool, "true: only the caller's favourites; false: the rest.")]


@hookimpl
def search_filters(query: SearchQuery) -> SearchFilter | None:
    wanted = query.get_bool("favorites")
    if wanted is None:
        return None
    if query.user_id is None:
        return SearchFilter.of(false()) if wanted else None
    mine = store.favorites.c.user_id == query.user_id
    # Counted from the user's favourites (an index range), probed per file on a walk.
    return SearchFilter.on(store.favorites, mine, negate=not wanted)


@hookimpl
def file_extras(
    files: Sequence[FileRef], user_id: int | None, kernel: Kernel
) -> dict[int, dict[str, Any]]:
    return store.flags(kernel, user_id, files)


@hookimpl
def file_user_data(files: Sequence[FileRef], kernel: Kernel) -> dict[int, dict[str, int]]:
    """How many users made each file a favourite (for ``imageapi cleanup``'s report)."""
    return {file_id: {"favorites": n} for file_id, n in store.counts_of(kernel, files)}


@hookimpl
def tools() -> list[Tool]:
    return [
        Tool(
            name="list_favorites",
            description=(
                "List the photos and videos the current user marked as favourites, newest"
                " first (library paths), with how many there are in all."
            ),
            params=ListFavoritesParams,
            call=_list_favorites_tool,
        )
    ]
