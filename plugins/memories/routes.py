"""``GET /memories``: parse the client's day and window, select the files (``query``),
shape each one as the kernel's file entry, group them by anniversary year.

The handler receives its plugin instance as the ``plugin`` dependency, which the
plugin's Router provides (and names, for the annotation, in its signature namespace).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from kernel.deps import CurrentUser
from kernel.libraries import PathRefused
from kernel.types import InvalidParameter, iso_datetime

from . import (
    Plugin,  # loaded lazily by Plugin.routes(), once the package is complete
    query,
)
from .settings import MemoriesSettings, zone
from .window import SPANS, Window

#: The plugin instance whose Router serves the request (a class, not a name: a string
#: forward reference is one cached object shared by every module that writes it).
PluginDep = NamedDependency[Plugin]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class WindowDays(msgspec.Struct):
    """This year's window: its first and last day (inclusive), ``YYYY-MM-DD``."""

    start: str
    end: str


class MemoryYear(msgspec.Struct):
    """The files of one earlier year's window, in capture order."""

    year: int
    years_ago: int
    items: list[dict[str, Any]]  # the kernel's file entries, with memories' date_taken


class Memories(msgspec.Struct):
    """The files taken in today's day, week or month of earlier years, newest year first."""

    span: str
    today: str
    tz: str
    window: WindowDays
    dates_from: str  # "date_taken_table" (a plugin's capture dates) or "mtime"
    total: int
    years: list[MemoryYear]


def client_today(
    settings: MemoriesSettings, tz: str | None, day: str | None
) -> tuple[date, Any, str]:
    """(today, tzinfo, zone name) as the client sees them."""
    zone_name = (tz or "").strip() or settings.timezone
    if zone_name:
        try:
            tzinfo: Any = zone(zone_name)
        except ValueError as exc:
            raise InvalidParameter("tz", str(exc)) from None
    else:
        tzinfo = datetime.now().astimezone().tzinfo or UTC
        zone_name = str(tzinfo)
    if day:
        if not _DATE.fullmatch(day.strip()):
            raise InvalidParameter("date", f"expected YYYY-MM-DD, got {day!r}")
        try:
            return date.fromisoformat(day.strip()), tzinfo, zone_name
        except ValueError:
            raise InvalidParameter("date", f"no such day: {day!r}") from None
    return datetime.now(tzinfo).date(), tzinfo, zone_name


def utc_offset_minutes(tzinfo: Any, day: date) -> int:
    noon = datetime.combine(day, datetime.min.time()).replace(hour=12, tzinfo=tzinfo)
    offset = noon.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _recursive(raw: str | None) -> bool:
    if raw is None or raw.strip() == "":
        return True
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidParameter("recursive", f"not a boolean: {raw!r}")


@get("/memories", summary="Photos and videos from this day, week or month in earlier years")
async def memories(
    plugin: PluginDep,
    user: CurrentUser,
    folder: Annotated[str, QueryParameter(name="path")] = "",
    library: FromQuery[str | None] = None,
    recursive: FromQuery[str | None] = None,
    span: FromQuery[str | None] = None,
    tz: FromQuery[str | None] = None,
    date_override: Annotated[str | None, QueryParameter(name="date")] = None,
) -> Memories:
    kernel, settings = plugin.kernel, plugin.settings
    chosen = (span or settings.default_span).strip().lower()
    if chosen not in SPANS:
        raise InvalidParameter("span", f"must be one of {', '.join(SPANS)}, not {span!r}")
    deep = _recursive(recursive)
    today, tzinfo, zone_name = client_today(settings, tz, date_override)
    resolved = kernel.libraries.resolve(library, folder)
    if not resolved.abs_path.is_dir():
        raise PathRefused(400, "path must be a folder")
    window = Window.around(today, chosen)
    table = kernel.hooks.date_taken_table()
    source = "date_taken_table"
    if table is None:
        table = query.mtime_table(kernel, utc_offset_minutes(tzinfo, today))
        source = "mtime"
    scope = query.Scope(resolved.library.id, resolved.rel_path, deep)
    rows = await asyncio.to_thread(query.run, kernel, table, window, scope)
    # The one file shape of every listing; our capture date replaces any extra of that
    # name (it is the date the grouping used, from whichever source answered).
    entries = await kernel.catalog.entries(kernel.index.refs(rows), user.id)
    years: dict[int, list[dict[str, Any]]] = {}
    for row, entry in zip(rows, entries, strict=True):
        taken = query.taken_as_datetime(row.taken_at)
        entry["date_taken"] = iso_datetime(taken, row.utc_offset_minutes)
        years.setdefault(window.anniversary(taken), []).append(entry)
    return Memories(
        span=chosen,
        today=today.isoformat(),
        tz=zone_name,
        window=WindowDays(window.start.isoformat(), window.end.isoformat()),
        dates_from=source,
        total=len(rows),
        years=[
            MemoryYear(year=year, years_ago=today.year - year, items=years[year])
            for year in sorted(years, reverse=True)
        ],
    )
