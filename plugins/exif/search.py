"""What EXIF adds to ``GET /photos``: camera, lens, GPS-radius and date filters, the
date-taken sorts, and each file's capture date and camera in the listing.

Filters become one ``files.id IN (SELECT file_id FROM image_exif WHERE ...)`` clause
that the kernel ANDs into its page and count queries; every condition in it has an
index (``lower(camera_make)``, ``date_taken``, ``(gps_lat, gps_lon)``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select

from kernel.listing import drive_from, sort_all, walk_index
from kernel.tables import files
from kernel.types import InvalidParameter, SearchFilter, SearchQuery, SearchSort, SortPlan
from plugins.exif import dates, geo
from plugins.exif.tables import image_exif

TEXT_PARAMS = {
    "camera_make": image_exif.c.camera_make,
    "camera_model": image_exif.c.camera_model,
    "lens": image_exif.c.lens,
}
GPS_PARAMS = ("gps_lat", "gps_lon", "gps_radius_km")
DATE_PARAMS = ("date_from", "date_to")
PARAMS = frozenset({*TEXT_PARAMS, *GPS_PARAMS, *DATE_PARAMS})

_NUMBER = re.compile(r"\s*-?\d+(?:\.\d+)?\s*")
_BARE_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
DATE_INDEX = "ix_image_exif_date_taken"
MILLISECONDS_FROM = 1e11  # a "timestamp" this large is in milliseconds (year 5138 otherwise)


@dataclass(frozen=True)
class When:
    """A client's date bound: a wall-clock time (compared with ``date_taken``, as the
    camera recorded it) or an instant (compared with ``taken_utc``)."""

    value: datetime  # naive; UTC when ``instant``
    instant: bool
    whole_day: bool  # a bare date: ``date_to`` then covers the whole day


def parse_when(name: str, raw: str) -> When:
    """An ISO date, an ISO datetime (with or without offset) or a Unix timestamp."""
    if _NUMBER.fullmatch(raw):
        seconds = float(raw)
        if abs(seconds) >= MILLISECONDS_FROM:
            seconds /= 1000
        try:
            value = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise InvalidParameter(name, f"timestamp out of range: {raw!r}") from None
        return When(value, instant=True, whole_day=False)
    stamp = dates.parse_iso_date(raw)
    if stamp is None:
        raise InvalidParameter(
            name,
            f"not a date (YYYY-MM-DD), a datetime (YYYY-MM-DDTHH:MM[:SS][+HH:MM]) or a"
            f" Unix timestamp, or outside 1900-2100: {raw!r}",
        )
    if stamp.offset_minutes is not None:
        value = stamp.when - timedelta(minutes=stamp.offset_minutes)
        return When(value, instant=True, whole_day=False)
    return When(stamp.when, instant=False, whole_day=bool(_BARE_DATE.fullmatch(raw)))


def date_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    raw_from, raw_to = query.get("date_from"), query.get("date_to")
    start = parse_when("date_from", raw_from) if raw_from else None
    end = parse_when("date_to", raw_to) if raw_to else None
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        column = image_exif.c.taken_utc if start.instant else image_exif.c.date_taken
        conditions.append(column >= start.value)
    if end is not None:
        column = image_exif.c.taken_utc if end.instant else image_exif.c.date_taken
        if end.whole_day:
            conditions.append(column < end.value + timedelta(days=1))
        else:
            conditions.append(column <= end.value)
    if start is not None and end is not None:
        limit = end.value + timedelta(days=1) if end.whole_day else end.value
        if start.value > limit or (end.whole_day and start.value == limit):
            raise InvalidParameter("date_from", f"{raw_from!r} is after date_to {raw_to!r}")
    return conditions


def gps_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    lat, lon = query.get_float("gps_lat"), query.get_float("gps_lon")
    radius = query.get_float("gps_radius_km")
    if lat is None and lon is None and radius is None:
        return []
    for name, value in zip(GPS_PARAMS, (lat, lon, radius), strict=True):
        if value is None:
            raise InvalidParameter(name, "a radius search needs gps_lat, gps_lon and gps_radius_km")
    assert lat is not None and lon is not None and radius is not None
    if not -90 <= lat <= 90:
        raise InvalidParameter("gps_lat", f"latitude must be within -90..90, not {lat:g}")
    if not -180 <= lon <= 180:
        raise InvalidParameter("gps_lon", f"longitude must be within -180..180, not {lon:g}")
    if not 0 < radius <= geo.HALF_CIRCUMFERENCE_KM + 1:
        raise InvalidParameter(
            "gps_radius_km", f"must be above 0 and at most {geo.HALF_CIRCUMFERENCE_KM:.0f} km"
        )
    c = geo.cap(lat, lon, radius)
    e = image_exif.c
    conditions: list[ColumnElement[bool]] = [e.gps_lat.between(c.lat_min, c.lat_max)]
    if c.lon_ranges:
        conditions.append(or_(*(e.gps_lon.between(lo, hi) for lo, hi in c.lon_ranges)))
    else:
        conditions.append(e.gps_lon.isnot(None))
    cx, cy, cz = c.center
    conditions.append(e.gps_x * cx + e.gps_y * cy + e.gps_z * cz >= c.min_dot)
    return conditions


def exif_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    """Every condition on ``image_exif`` the query asks for (raises for bad values)."""
    conditions: list[ColumnElement[bool]] = []
    for name, column in TEXT_PARAMS.items():
        value = query.get(name)
        if value is not None and value.strip():
            conditions.append(func.lower(column) == value.strip().lower())
    conditions += gps_conditions(query)
    conditions += date_conditions(query)
    return conditions


def matching_ids(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``files.id IN (...)``: the subquery is answered from one index alone. There is no
    ``status = 'ok'`` test: a failed row has every field NULL, so no condition matches
    it, and the test would cost a table lookup per candidate."""
    return files.c.id.in_(select(image_exif.c.file_id).where(*conditions))


def probe(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """The same test as ``matching_ids``, for one file at a time (``SearchFilter.probe``)."""
    return (
        exists().where(image_exif.c.file_id == files.c.id, *conditions).correlate_except(image_exif)
    )


def search_filter(query: SearchQuery) -> SearchFilter | None:
    present = frozenset(name for name in PARAMS if name in query.params)
    if not present:
        return None
    conditions = exif_conditions(query)
    if not conditions:
        return SearchFilter(params=present)
    return SearchFilter(params=present, where=[matching_ids(conditions)], probe=[probe(conditions)])


def _date_sort(name: str, descending: bool) -> SearchSort:
    """Dated files by ``date_taken`` (ties by id, same direction), then the undated ones.

    With many matches the dated part walks ``ix_image_exif_date_taken`` from one end and
    stops when the page is full (0.1 ms for the newest 100 of 100,000); with few it joins
    and sorts them. Undated files (not read yet, unreadable) follow in id order.
    """
    taken = image_exif.c.date_taken
    order = (
        (taken.desc(), image_exif.c.file_id.desc()) if descending else (taken, image_exif.c.file_id)
    )
    on = image_exif.c.file_id == files.c.id

    def dated(stmt: Select[Any], query: SearchQuery, plan: SortPlan) -> Select[Any]:
        if not plan.walk_index:
            stmt = stmt.join(image_exif, on).where(taken.isnot(None))
            return sort_all(stmt, (taken, descending), (image_exif.c.file_id, descending))
        # Walking the date index: the query's own EXIF conditions (already in the filter)
        # are repeated on the walked row, so a date range bounds the walk itself.
        stmt = walk_index(stmt.select_from(drive_from(image_exif, on)), image_exif, DATE_INDEX)
        return stmt.where(taken.isnot(None), *exif_conditions(query)).order_by(*order)

    def undated(stmt: Select[Any], _query: SearchQuery, _plan: SortPlan) -> Select[Any]:
        return stmt.where(~exists().where(on, taken.isnot(None))).order_by(files.c.id)

    return SearchSort(name, dated, then=(undated,))


NEWEST_FIRST = _date_sort("DateTakenDesc", True)
SORTS = [_date_sort("DateTakenAsc", False), NEWEST_FIRST]


def date_taken_table() -> Any:
    """The ``date_taken_table`` answer: capture dates of successfully read files, plus
    ``month_day`` (month * 100 + day, indexed) for consumers that look for it."""
    e = image_exif.c
    return (
        select(
            e.file_id,
            e.date_taken.label("taken_at"),
            e.utc_offset_minutes,
            e.taken_md.label("month_day"),
        )
        .where(e.date_taken.isnot(None))  # only "ok" rows have a date
        .subquery("exif_date_taken")
    )
