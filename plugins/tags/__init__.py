"""tags: user labels on files — routes under ``/image/tags``, tag filters and sorts for
``/photos``, each file's tags in listings, and LLM tools to read and add tags.

Tags are shared by every user (as in the Rust server) and keyed to the kernel's file row,
so a file that goes missing keeps its tags and finds them again when it comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from kernel import SearchFilter, SearchQuery, SearchSort, Tool, hookimpl
from kernel.core import Kernel
from kernel.libraries import PathRefused
from kernel.types import FileRef, InvalidParameter, SearchParam, ToolContext

from . import search, store
from .routes import ROUTES


class FileParams(msgspec.Struct):
    path: str
    library: str | int | None = None


class AddTagParams(msgspec.Struct):
    path: str
    name: str
    library: str | int | None = None


def _file_tag_names(kernel: Kernel, params: FileParams | AddTagParams) -> dict[str, Any]:
    ref = store.indexed_file(kernel, params.library, params.path)
    if isinstance(params, AddTagParams):
        store.add_to_file(kernel, ref.id, None, params.name)
    names = [tag["name"] for tag in store.tags_of_file(kernel, ref.id)]
    return {"path": ref.rel_path, "library": ref.library_id, "tags": names}


async def _run_tool(params: FileParams | AddTagParams, ctx: ToolContext) -> dict[str, Any]:
    """Errors a model can act on (bad path, empty name) come back as ``{"error": ...}``."""
    try:
        return await asyncio.to_thread(_file_tag_names, ctx.kernel, params)
    except PathRefused as exc:
        return {"error": exc.detail}
    except InvalidParameter as exc:
        return {"error": f"{exc.name}: {exc.reason}"}


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def routes() -> list[object]:
    return list(ROUTES)


@hookimpl
def search_params() -> list[SearchParam]:
    return list(search.PARAMS_DECLARED)


@hookimpl
def search_filters(query: SearchQuery) -> list[SearchFilter]:
    return search.search_filter(query)


@hookimpl
def search_sorts() -> list[SearchSort]:
    return list(search.SORTS)


@hookimpl
def file_extras(files: Sequence[FileRef], kernel: Kernel) -> dict[int, dict[str, Any]]:
    return search.file_tag_extras(kernel, files)


@hookimpl
def tools() -> list[Tool]:
    return [
        Tool(
            name="get_tags",
            description=(
                "List the tags (user labels such as 'beach' or 'grandma') of one photo or"
                " video, given its library path."
            ),
            params=FileParams,
            call=_run_tool,
        ),
        Tool(
            name="add_tag",
            description=(
                "Add a tag to one photo or video by name; an existing tag with the same"
                " name in any case is reused. Returns the file's tags afterwards."
            ),
            params=AddTagParams,
            call=_run_tool,
        ),
    ]


@hookimpl
def file_user_data(files: Sequence[FileRef], kernel: Kernel) -> dict[int, dict[str, int]]:
    """How many tags each file carries (for ``imageapi cleanup``'s report)."""
    return {file_id: {"tags": n} for file_id, n in store.counts_of(kernel, [f.id for f in files])}
