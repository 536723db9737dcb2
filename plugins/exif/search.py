"""What EXIF adds to listings: camera, lens, GPS-radius and date filters, and the
date-taken sorts.

Every condition is on ``image_exif`` and has an index (``lower(camera_make)``,
``date_taken``, ``(gps_lat, gps_lon)``, ...); the kernel decides how to run them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from kernel.types import InvalidParameter, SearchFilter, SearchParam, SearchQuery, SearchSort

from . import dates, geo
from .tables import image_exif

TEXT_PARAMS = {
    "camera_make": image_exif.c.camera_make,
    "camera_model": image_exif.c.camera_model,
    "lens": image_exif.c.lens,
}
GPS_PARAMS = ("gps_lat", "gps_lon", "gps_radius_km")
DATE_PARAMS = ("date_from", "date_to")

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


PARAMS_DECLARED = [
    SearchParam("camera_make", str, "Camera maker, case-insensitive (Canon, Apple, ...)."),
    SearchParam("camera_model", str, "Camera model, case-insensitive."),
    SearchParam("lens", str, "Lens model, case-insensitive."),
    SearchParam("gps_lat", float, "Latitude of the centre of a radius search (-90..90)."),
    SearchParam("gps_lon", float, "Longitude of the centre of a radius search (-180..180)."),
    SearchParam("gps_radius_km", float, "Radius of the search around gps_lat/gps_lon, in km."),
    SearchParam(
        "date_from", str, "Taken at or after: YYYY-MM-DD, an ISO datetime, or Unix seconds."
    ),
    SearchParam("date_to", str, "Taken at or before (a bare date includes the whole day)."),
]


def search_filter(query: SearchQuery) -> SearchFilter | None:
    """One filter on ``image_exif`` for every condition asked. A failed row has every
    field NULL, so no condition matches it (no ``status`` test needed)."""
    conditions = exif_conditions(query)
    return SearchFilter.on(image_exif, *conditions) if conditions else None


SORTS = [
    SearchSort.keyed(
        name,
        image_exif,
        image_exif.c.date_taken,
        DATE_INDEX,
        descending=descending,
        description=f"By capture date, {label}; files without one last.",
    )
    for name, descending, label in (
        ("DateTakenAsc", False, "oldest first"),
        ("DateTakenDesc", True, "newest first"),
    )
]


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
