"""LLM tools: read one photo's metadata, and find photos by camera, date and place.

Errors a model can act on (a bad path, a bad date) come back as ``{"error": ...}``
rather than exceptions, so the model can correct itself and call again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import select

from kernel.core import Kernel
from kernel.index import listed_in
from kernel.libraries import PathRefused
from kernel.listing import list_page
from kernel.tables import files
from kernel.types import InvalidParameter, SearchQuery, Tool, ToolContext
from plugins.exif import search, store
from plugins.exif.routes import file_metadata
from plugins.exif.tables import image_exif

MAX_RESULTS = 500


class MetadataParams(msgspec.Struct, forbid_unknown_fields=True):
    """One file, by its path inside a library."""

    path: str
    library: str | int | None = None


class SearchParams(msgspec.Struct, forbid_unknown_fields=True):
    """Every filter is optional; the given ones must all match."""

    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    date_from: str | float | None = None  # ISO date/datetime or Unix seconds
    date_to: str | float | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_radius_km: float | None = None
    path: str = ""
    library: str | int | None = None
    limit: int = 50


def _error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidParameter):
        return {"error": f"{exc.name}: {exc.reason}"}
    if isinstance(exc, PathRefused):
        return {"error": exc.detail}
    return {"error": str(getattr(exc, "detail", exc))}


async def get_photo_metadata(params: MetadataParams, ctx: ToolContext) -> dict[str, Any]:
    try:
        return await file_metadata(ctx.kernel, params.library, params.path, ctx.user_id)
    except (PathRefused, NotFoundException) as exc:
        return _error(exc)


def _search(kernel: Kernel, params: SearchParams) -> dict[str, Any]:
    raw = {
        name: str(getattr(params, name))
        for name in search.PARAMS
        if getattr(params, name) is not None
    }
    folder = kernel.libraries.resolve(params.library, params.path)
    if not folder.abs_path.is_dir():
        raise PathRefused(400, "path must be a folder")
    query = SearchQuery(raw, None, folder.library.id, folder.rel_path, True)
    limit = min(max(params.limit, 1), MAX_RESULTS)
    # The listing machinery of GET /photos, newest first, over successfully read files.
    conditions = [image_exif.c.status == "ok", *search.exif_conditions(query)]
    scope = listed_in(folder.library.id, folder.rel_path, True)
    where = [*scope, search.matching_ids(conditions)]
    probing = [*scope, search.probe(conditions)]
    with kernel.db.read() as conn:
        version = kernel.db.data_version(conn)
        page = list_page(
            conn, where, probing, search.NEWEST_FIRST, query, limit, 0,
            cache=kernel.listing_cache, version=version,
        )  # fmt: skip
        found = {
            row.id: row
            for row in conn.execute(
                select(files.c.id, files.c.rel_path, files.c.library_id, files.c.media_type,
                       *store.COMPACT_COLUMNS)
                .select_from(files.join(image_exif, image_exif.c.file_id == files.c.id))
                .where(files.c.id.in_(page.ids))
            )
        }  # fmt: skip
    rows = [found[file_id] for file_id in page.ids if file_id in found]
    total = page.total
    return {
        "total": total,
        "photos": [
            {
                "path": row.rel_path,
                "library": row.library_id,
                "media_type": row.media_type,
                "date_taken": store.iso_date(row.date_taken, row.utc_offset_minutes),
                "camera": " ".join(p for p in (row.camera_make, row.camera_model) if p) or None,
                "gps": store.gps_json(row),
            }
            for row in rows
        ],
    }


async def search_photos(params: SearchParams, ctx: ToolContext) -> dict[str, Any]:
    try:
        return await asyncio.to_thread(_search, ctx.kernel, params)
    except (InvalidParameter, PathRefused) as exc:
        return _error(exc)


TOOLS = [
    Tool(
        name="get_photo_metadata",
        description=(
            "Read the metadata of one photo or video by its library path: capture date"
            " (with UTC offset when known), camera, lens, exposure, size, GPS position,"
            " and what other features know about it (tags, favourite)."
        ),
        params=MetadataParams,
        call=get_photo_metadata,
    ),
    Tool(
        name="search_photos",
        description=(
            "Find photos and videos by camera make/model or lens (case-insensitive), by"
            " capture date range (ISO dates like 2019-04-12, datetimes, or Unix seconds),"
            " and/or within gps_radius_km of gps_lat/gps_lon. Returns the newest first"
            " (at most `limit`, up to 500) with their dates, plus the total match count."
        ),
        params=SearchParams,
        call=search_photos,
    ),
]
