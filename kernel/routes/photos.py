"""``GET /photos``: a folder's files and subfolders, filtered and sorted by plugins.

The kernel owns the path, media type, paging and the ``NameAsc`` / ``NameDesc`` /
``Shuffle`` sorts; every other filter comes from ``search_filters`` and every other sort
from ``search_sorts``. ``kernel.listing`` runs them as SQL: a COUNT and a page of ids
(one query per sort part the page touches), then one query for the page's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

from litestar import Request, get
from sqlalchemy import select

from kernel.core import Kernel
from kernel.deps import CurrentUser, KernelDep
from kernel.index import FILE_COLUMNS, listed_in
from kernel.libraries import PathRefused
from kernel.listing import kernel_sorts, list_page
from kernel.tables import files
from kernel.types import InvalidParameter, SearchQuery, parse_count

KERNEL_PARAMS = frozenset(
    {"path", "library", "recursive", "sort", "media_type", "limit", "offset", "seed"}
)
MEDIA_TYPES = {
    "photo": "photo",
    "photos": "photo",
    "image": "photo",
    "video": "video",
    "videos": "video",
    "all": None,
}
MAX_LIMIT = 100_000


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


@get("/photos", summary="List, filter, sort and page the files of a folder")
async def list_photos(request: Request, kernel: KernelDep, user: CurrentUser) -> dict[str, Any]:
    params = {key: value for key, value in request.query_params.items()}
    resolved = kernel.libraries.resolve(params.get("library"), params.get("path", ""))
    if not resolved.abs_path.is_dir():
        raise PathRefused(400, "path must be a folder")
    recursive = SearchQuery(params, None, 0, "", False).get_bool("recursive") or False
    query = SearchQuery(params, user.id, resolved.library.id, resolved.rel_path, recursive)
    media_raw = (params.get("media_type") or "all").lower()
    if media_raw not in MEDIA_TYPES:
        raise InvalidParameter(
            "media_type", f"unknown media type {params['media_type']!r} (Photo, Video or All)"
        )
    limit = parse_count("limit", params.get("limit"), maximum=MAX_LIMIT)
    offset = parse_count("offset", params.get("offset")) or 0
    seed = parse_count("seed", params.get("seed"))
    if seed is None:
        seed = secrets.randbelow(2**31)

    contributions = kernel.dispatch.collect("search_filters", query=query)
    consumed = set(KERNEL_PARAMS)
    where = listed_in(resolved.library.id, resolved.rel_path, recursive)
    if MEDIA_TYPES[media_raw]:
        where.append(files.c.media_type == MEDIA_TYPES[media_raw])
    probing = list(where)
    for contribution in contributions:
        consumed |= contribution.params
        where.extend(contribution.where)
        probing.extend(contribution.where if contribution.probe is None else contribution.probe)
    unknown = sorted(k for k in params if k not in consumed and not k.startswith("_"))
    if unknown:
        raise InvalidParameter(
            unknown[0], "unknown parameter (is the plugin that provides it enabled?)"
        )
    sort = params.get("sort") or "NameAsc"
    sorts = {**kernel_sorts(seed), **kernel.sorts}
    if sort not in sorts:
        known = ", ".join(["NameAsc", "NameDesc", "Shuffle", *sorted(kernel.sorts)])
        raise InvalidParameter("sort", f"unknown sort {sort!r} (known: {known})")

    def run() -> tuple[list[Any], int]:
        # Order and page over ids alone (a narrow sort, even at offset 50,000), then read
        # the page's rows.
        with kernel.db.read() as conn:
            version = kernel.db.data_version(conn)  # before this transaction reads anything
            page = list_page(
                conn,
                where,
                probing,
                sorts[sort],
                query,
                limit,
                offset,
                cache=kernel.listing_cache,
                version=version,
            )
            ids = page.ids
            found = (
                {
                    row.id: row
                    for row in conn.execute(
                        select(*FILE_COLUMNS, files.c.name).where(files.c.id.in_(ids))
                    )
                }
                if ids
                else {}
            )
        return [found[i] for i in ids if i in found], page.total

    rows, total = await asyncio.to_thread(run)
    refs = kernel.index.refs(rows)
    entries = [
        {
            "id": r.id,
            "path": r.rel_path,
            "library": r.library_id,
            "name": r.name,
            "size": r.size,
            "mtime": r.mtime_ns / 1e9,
            "media_type": r.media_type,
            "content_hash": r.content_hash,
        }
        for r in refs
    ]
    await merge_extras(kernel, refs, entries, user.id)
    dirs = (
        []
        if recursive
        else await asyncio.to_thread(list_subfolders, str(resolved.abs_path), resolved.rel_path)
    )
    return {
        "photos": [e["path"] for e in entries],
        "dirs": dirs,
        "files": entries,
        "total": total,
        "offset": offset,
        "limit": limit,
        "sort": sort,
        "seed": seed if sort == "Shuffle" else None,
        "library": resolved.library.to_json(),
    }


async def merge_extras(
    kernel: Kernel, refs: list[Any], entries: list[dict[str, Any]], user_id: int | None
) -> None:
    """Fold every plugin's ``file_extras`` into the entries (one hook call per page)."""
    if not refs or not kernel.dispatch.has_implementations("file_extras"):
        return
    by_id = {entry["id"]: entry for entry in entries}
    for _plugin, extras in await kernel.dispatch.acollect(
        "file_extras", files=refs, user_id=user_id
    ):
        for file_id, fields in extras.items():
            if file_id in by_id:
                by_id[file_id].update(fields)
