"""``GET /memories``: parse the client's day and window, select the files (``query``),
shape each one as the kernel's file entry, group them by anniversary year.

The handler receives its plugin instance as the ``plugin`` dependency, which the
plugin's Router provides (and names, for the annotation, in its signature namespace).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from kernel.deps import CurrentUser
from kernel.libraries import PathRefused
from kernel.media.dates import iso_datetime
from kernel.types import InvalidParameter

from . import (
    Plugin,  # loaded lazily by Plugin.routes(), once the package is complete
    query,
)
from .answers import read_version
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
) -> Response[Memories]:
    kernel, settings = plugin.kernel, plugin.settings
    chosen = (span or settings.default_span).strip().lower()
    if chosen not in SPANS:
        raise InvalidParameter("span", f"must be one of {', '.join(SPANS)}, not {span!r}")
    deep = _recursive(recursive)
    today, tzinfo, zone_name = client_today(settings, tz, date_override)
    resolved = kernel.libraries.resolve(library, folder)
    if not resolved.abs_path.is_dir():
        raise PathRefused(400, "path must be a folder")
    offset = utc_offset_minutes(tzinfo, today)
    key = (user.id, resolved.library.id, resolved.rel_path, deep, chosen, today, zone_name, offset)
    # Read before anything the answer is built from (see answers.py).
    if kernel.db.is_sqlite:
        version = kernel.db.local_version()  # no I/O: fine on the event loop
    else:
        version = await asyncio.to_thread(read_version, kernel.db)
    body = plugin.answers.get(key, version)
    if body is None:
        scope = query.Scope(resolved.library.id, resolved.rel_path, deep)
        window = Window.around(today, chosen)
        answer = await build(plugin, user.id, window, scope, zone_name, offset)
        body = msgspec.json.encode(answer)
        plugin.answers.put(key, version, body)
    return Response(body, media_type=MediaType.JSON)


async def build(
    plugin: Plugin, user_id: int, window: Window, scope: query.Scope, zone_name: str, offset: int
) -> Memories:
    """The answer: the window's files in every earlier year, as the kernel's entries."""
    kernel = plugin.kernel
    table = kernel.hooks.date_taken_table()
    source = "date_taken_table"
    if table is None:
        table = query.mtime_table(kernel, offset)
        source = "mtime"
    # The one file shape of every listing, read with the rows in one worker-thread hop;
    # our capture date replaces any extra of that name (it is the date the grouping
    # used, from whichever source answered).
    rows, entries = await kernel.catalog.read_entries(
        lambda: query.run(kernel, table, window, scope), kernel.index.refs, user_id
    )
    today = window.today
    return Memories(
        span=window.span,
        today=today.isoformat(),
        tz=zone_name,
        window=WindowDays(window.start.isoformat(), window.end.isoformat()),
        dates_from=source,
        total=len(rows),
        years=[
            MemoryYear(year=year, years_ago=today.year - year, items=items)
            for year, items in sorted(group(window, rows, entries).items(), reverse=True)
        ],
    )


def group(
    window: Window, rows: Sequence[Any], entries: Sequence[dict[str, Any]]
) -> dict[int, list[dict[str, Any]]]:
    """Entries by anniversary year, each with the capture date the grouping used.

    Thousands of rows: ``Window.anniversary`` unrolled, the columns taken by position."""
    years: dict[int, list[dict[str, Any]]] = {}
    late = window.today.year - window.start.year  # years to add to a date of the window
    early = window.today.year - window.end.year  # ... of its January part, when it wraps
    start_md = window.start_md if window.wraps else 0
    taken_at, offset_at = len(query.FILE_COLUMNS), len(query.FILE_COLUMNS) + 1
    for row, entry in zip(rows, entries, strict=True):
        taken = row[taken_at]
        if not isinstance(taken, datetime):
            taken = query.taken_as_datetime(taken)
        entry["date_taken"] = iso_datetime(taken, row[offset_at])
        year = taken.year + (early if taken.month * 100 + taken.day < start_md else late)
        items = years.get(year)
        if items is None:
            years[year] = [entry]
        else:
            items.append(entry)
    return years
