"""memories: "on this day" — photos and videos taken in the same day, week or month of
the year as today, in earlier years, grouped by year, newest year first.

Dates come from the ``date_taken_table`` hook (the exif plugin answers it) and fall
back to the files' mtime when no plugin does; this plugin never imports another one.
Folders in ``EXCLUDED_DIRS`` are left out (``/private`` and below, or any folder named
``@eaDir`` anywhere).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar import get
from litestar.params import FromQuery, QueryParameter

from kernel import hookimpl
from kernel.core import Kernel
from kernel.deps import KernelDep
from kernel.libraries import PathRefused
from kernel.types import InvalidParameter
from plugins.memories import query
from plugins.memories.window import SPANS, Window

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        message = f"unknown time zone {name!r} (use an IANA name such as Europe/Oslo)"
        raise ValueError(message) from None


class MemoriesSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.memories]`` in plugins.toml."""

    default_span: str = "week"
    timezone: str = ""  # IANA zone for "today" when the client sends no tz; "" = server's

    def __post_init__(self) -> None:
        if self.default_span not in SPANS:
            raise ValueError(f"default_span must be one of {', '.join(SPANS)}")
        if self.timezone:
            _zone(self.timezone)


def settings(kernel: Kernel) -> MemoriesSettings:
    return kernel.settings_for("memories") or MemoriesSettings()


def client_today(kernel: Kernel, tz: str | None, day: str | None) -> tuple[date, Any, str]:
    """(today, tzinfo, zone name) as the client sees them."""
    zone_name = (tz or "").strip() or settings(kernel).timezone
    if zone_name:
        try:
            zone: Any = _zone(zone_name)
        except ValueError as exc:
            raise InvalidParameter("tz", str(exc)) from None
    else:
        zone = datetime.now().astimezone().tzinfo or UTC
        zone_name = str(zone)
    if day:
        if not _DATE.fullmatch(day.strip()):
            raise InvalidParameter("date", f"expected YYYY-MM-DD, got {day!r}")
        try:
            return date.fromisoformat(day.strip()), zone, zone_name
        except ValueError:
            raise InvalidParameter("date", f"no such day: {day!r}") from None
    return datetime.now(zone).date(), zone, zone_name


def utc_offset_minutes(zone: Any, day: date) -> int:
    noon = datetime.combine(day, datetime.min.time()).replace(hour=12, tzinfo=zone)
    offset = noon.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def iso_taken(taken: datetime, offset: int | None) -> str:
    if offset is not None:
        taken = taken.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return taken.isoformat()


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
    kernel: KernelDep,
    folder: Annotated[str, QueryParameter(name="path")] = "",
    library: FromQuery[str | None] = None,
    recursive: FromQuery[str | None] = None,
    span: FromQuery[str | None] = None,
    tz: FromQuery[str | None] = None,
    date_override: Annotated[str | None, QueryParameter(name="date")] = None,
) -> dict[str, Any]:
    chosen = (span or settings(kernel).default_span).strip().lower()
    if chosen not in SPANS:
        raise InvalidParameter("span", f"must be one of {', '.join(SPANS)}, not {span!r}")
    deep = _recursive(recursive)
    today, zone, zone_name = client_today(kernel, tz, date_override)
    resolved = kernel.libraries.resolve(library, folder)
    if not resolved.abs_path.is_dir():
        raise PathRefused(400, "path must be a folder")
    window = Window.around(today, chosen)
    table = kernel.hooks.date_taken_table()
    source = "date_taken_table"
    if table is None:
        table = query.mtime_table(kernel, utc_offset_minutes(zone, today))
        source = "mtime"
    scope = query.Scope(resolved.library.id, resolved.rel_path, deep)
    rows = await asyncio.to_thread(query.run, kernel, table, window, scope)
    years: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        taken = query.taken_as_datetime(row.taken_at)
        years.setdefault(window.anniversary(taken), []).append(
            {
                "id": row.id,
                "path": row.rel_path,
                "library": row.library_id,
                "name": row.name,
                "media_type": row.media_type,
                "date_taken": iso_taken(taken, row.utc_offset_minutes),
            }
        )
    return {
        "span": chosen,
        "today": today.isoformat(),
        "tz": zone_name,
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "dates_from": source,
        "total": len(rows),
        "years": [
            {"year": year, "years_ago": today.year - year, "items": years[year]}
            for year in sorted(years, reverse=True)
        ],
    }


@hookimpl
def plugin_settings() -> type[msgspec.Struct]:
    return MemoriesSettings


@hookimpl
def routes() -> list[object]:
    return [memories]
