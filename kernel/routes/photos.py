"""``GET /photos``: a folder's files and subfolders, filtered and sorted by plugins.

Parse, search, shape: the catalog (``kernel.catalog``) checks the parameters, runs every
plugin's filters and the sort, and gives each file its JSON.
"""

from __future__ import annotations

import asyncio
import os

import msgspec
from litestar import Request, get
from litestar.handlers import HTTPRouteHandler

from kernel.catalog import MAX_LIMIT, Catalog
from kernel.deps import CurrentUser, KernelDep
from kernel.schemas import BAD_REQUEST, FileEntry, LibraryInfo, listing_operation
from kernel.types import parse_count


class PhotoListing(msgspec.Struct):
    """One page of a folder's files (``files``, with every plugin's fields) and, unless
    the listing is recursive, the folder's subfolders (``dirs``)."""

    photos: list[str]  # the paths of ``files``, for clients of the Rust server
    dirs: list[str]
    files: list[FileEntry]
    total: int
    offset: int
    limit: int | None
    sort: str
    seed: int | None  # only for sort=Shuffle: send it back to page through the same order
    library: LibraryInfo


def list_subfolders(abs_dir: str, rel_dir: str) -> list[str]:
    try:
        entries = sorted(
            e.name
            for e in os.scandir(abs_dir)
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
        )
    except OSError:
        return []
    return [f"{rel_dir}/{name}" if rel_dir else name for name in entries]


async def list_photos(request: Request, kernel: KernelDep, user: CurrentUser) -> PhotoListing:
    params = dict(request.query_params.items())
    catalog = kernel.catalog
    query = catalog.query(params, user.id)
    limit = parse_count("limit", params.get("limit"), maximum=MAX_LIMIT)
    offset = parse_count("offset", params.get("offset")) or 0
    sort, seed = catalog.sort(params.get("sort"), parse_count("seed", params.get("seed")))
    listing, entries = await catalog.page(query, sort, limit, offset, user.id)
    library = kernel.libraries.by_id(query.library_id)
    dirs = (
        []
        if query.recursive
        else await asyncio.to_thread(
            list_subfolders, str(library.root.joinpath(*query.path.split("/"))), query.path
        )
    )
    return PhotoListing(
        photos=[e["path"] for e in entries],
        dirs=dirs,
        files=entries,  # type: ignore[arg-type]  # FileEntry is these dicts' documented shape
        total=listing.total,
        offset=offset,
        limit=limit,
        sort=sort.name,
        seed=seed if sort.name == "Shuffle" else None,
        library=LibraryInfo(library.id, library.name),
    )


def route(catalog: Catalog) -> HTTPRouteHandler:
    """``GET /photos`` for one app: the query parameters plugins declare are read from
    the request, and the document lists them (``kernel.schemas.listing_operation``)."""
    return get(
        "/photos",
        summary="List, filter, sort and page the files of a folder",
        operation_class=listing_operation(catalog),
        responses=BAD_REQUEST,
    )(list_photos)
