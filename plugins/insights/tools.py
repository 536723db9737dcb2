"""The LLM tools this plugin offers every agent: ``get_insight`` (read a file's stored
insight) and ``reverse_geocode`` (a place name for coordinates, through the kernel's
``resolve_location`` hook, so a personal-places plugin answers before the geocoder)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from kernel.libraries import PathRefused
from kernel.types import Tool, ToolContext

from . import store
from .schemas import insight_of


class InsightParams(msgspec.Struct, forbid_unknown_fields=True):
    """One file, by its path inside a library."""

    path: str
    library: str | int | None = None


class GeocodeParams(msgspec.Struct, forbid_unknown_fields=True):
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90, description="Degrees north.")]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180, description="Degrees east.")]


async def get_insight(params: InsightParams, ctx: ToolContext) -> dict[str, Any]:
    kernel = ctx.kernel
    try:
        resolved = kernel.libraries.resolve(params.library, params.path)
    except PathRefused as exc:
        return {"error": exc.detail}
    row = await asyncio.to_thread(store.current, kernel.db, resolved.library.id, resolved.rel_path)
    if row is None:
        return {"error": f"no insight has been written for {resolved.rel_path}"}
    found = insight_of(row)
    return {k: found[k] for k in ("file_path", "title", "summary", "model", "created_at")}


async def reverse_geocode(params: GeocodeParams, ctx: ToolContext) -> dict[str, Any]:
    place = await ctx.kernel.hooks.resolve_location(params.latitude, params.longitude)
    if place is None:
        return {"location": None, "note": "no place name known for these coordinates"}
    return {"location": place}


INSIGHT_TOOL = Tool(
    name="get_insight",
    description=(
        "Read the stored insight (title and summary written earlier) of one photo or"
        " video by its library path."
    ),
    params=InsightParams,
    call=get_insight,
)
GEOCODE_TOOL = Tool(
    name="reverse_geocode",
    description=(
        "Name the place at a latitude and longitude (a personal place such as 'Home' when"
        " one is known, else the town, region and country)."
    ),
    params=GeocodeParams,
    call=reverse_geocode,
)
