"""Reading and writing ``image_exif`` rows, and turning them into JSON.

Every function is synchronous; the routes, hooks and tools run them in worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select, bindparam, delete, select

from kernel.media.dates import iso_datetime

from .geo import unit_vector
from .model import ExifData
from .tables import image_exif

if TYPE_CHECKING:
    from kernel.core import Kernel
    from kernel.db import Database

MAX_TEXT = 1000
FIELDS = (
    "camera_make",
    "camera_model",
    "lens",
    "software",
    "width",
    "height",
    "orientation",
    "gps_lat",
    "gps_lon",
    "gps_alt",
    "focal_length",
    "aperture",
    "exposure_time",
    "exposure_seconds",
    "iso",
    "flash",
    "date_taken",
    "utc_offset_minutes",
    "date_source",
)
TEXT_FIELDS = frozenset({"camera_make", "camera_model", "lens", "software", "exposure_time"})
COMPACT_COLUMNS = (
    image_exif.c.file_id,
    image_exif.c.status,
    image_exif.c.camera_make,
    image_exif.c.camera_model,
    image_exif.c.lens,
    image_exif.c.width,
    image_exif.c.height,
    image_exif.c.orientation,
    image_exif.c.gps_lat,
    image_exif.c.gps_lon,
    image_exif.c.gps_alt,
    image_exif.c.date_taken,
    image_exif.c.utc_offset_minutes,
    image_exif.c.date_source,
)


def _clean_text(value: str | None) -> str | None:
    """PostgreSQL refuses NUL characters in text; a 1000-character make is garbage anyway."""
    if value is None:
        return None
    value = value.replace("\x00", "").strip()[:MAX_TEXT]
    return value or None


def row_values(
    file_id: int, content_hash: str, data: ExifData | None, error: str | None = None
) -> dict[str, Any]:
    """The ``image_exif`` row for one extraction: its fields, or a failure and its reason."""
    row: dict[str, Any] = {name: None for name in FIELDS}
    row.update(
        file_id=file_id,
        content_hash=content_hash,
        status="failed" if data is None else "ok",
        error=error[:MAX_TEXT] if error else None,
        extracted_at=time.time(),
        gps_x=None,
        gps_y=None,
        gps_z=None,
        taken_utc=None,
        taken_md=None,
    )
    if data is None:
        return row
    for name in FIELDS:
        value = getattr(data, name)
        row[name] = _clean_text(value) if name in TEXT_FIELDS else value
    if data.gps_lat is not None and data.gps_lon is not None:
        row["gps_x"], row["gps_y"], row["gps_z"] = unit_vector(data.gps_lat, data.gps_lon)
    else:
        row["gps_lat"] = row["gps_lon"] = row["gps_alt"] = None
    when = data.date_taken
    if when is not None:
        row["taken_utc"] = when - timedelta(minutes=data.utc_offset_minutes or 0)
        row["taken_md"] = when.month * 100 + when.day
    return row


def upsert(kernel: Kernel, rows: Sequence[dict[str, Any]]) -> None:
    """Write extraction results in one transaction, replacing stale rows of the same files."""
    if not rows:
        return
    with kernel.db.write() as conn:
        conn.execute(kernel.db.upsert(image_exif, "file_id"), list(rows))


def forget(kernel: Kernel, file_id: int) -> None:
    with kernel.db.write() as conn:
        conn.execute(delete(image_exif).where(image_exif.c.file_id == file_id))


def load(kernel: Kernel, file_id: int) -> Row[Any] | None:
    """One file's EXIF row (``/image/metadata``: the statement is built once)."""
    db = kernel.db
    with db.read() as conn:
        return conn.execute(db.prepared(_one_row), {"file_id": file_id}).first()


def _one_row(db: Database) -> Select[Any]:
    return select(image_exif).where(image_exif.c.file_id == bindparam("file_id"))


def load_compact(kernel: Kernel, file_ids: Sequence[int]) -> list[Row[Any]]:
    """The listing columns of many files, in one query whatever their number."""
    db = kernel.db
    with db.read() as conn:
        return conn.execute(db.prepared(_compact_rows), {"ids": db.ids_value(file_ids)}).all()


def _compact_rows(db: Database) -> Select[Any]:
    return select(*COMPACT_COLUMNS).where(db.among(image_exif.c.file_id, db.ids_param()))


def iso_date(when: datetime | None, offset_minutes: int | None) -> str | None:
    """ISO-8601, with the UTC offset when the camera recorded one."""
    return None if when is None else iso_datetime(when, offset_minutes)


def gps_json(row: Any) -> dict[str, float | None] | None:
    if row.gps_lat is None or row.gps_lon is None:
        return None
    return {"lat": row.gps_lat, "lon": row.gps_lon, "alt": row.gps_alt}


def listing_extras(kernel: Kernel, file_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What a listing shows of each file: ``date_taken`` and a compact ``exif`` object,
    enough to caption, sort and map it (both None when not read, or failed).

    Memories lists thousands of files at once, so rows are unpacked as tuples (in the
    order of ``COMPACT_COLUMNS``) rather than read attribute by attribute, and the files
    without a row are filled in afterwards instead of building a placeholder for all."""
    extras: dict[int, dict[str, Any]] = {}
    for row in load_compact(kernel, file_ids):
        (file_id, status, make, model, lens, width, height, orientation, lat, lon, alt, taken,
         offset, source) = row  # fmt: skip
        if status != "ok":
            continue
        extras[file_id] = {
            "date_taken": None if taken is None else iso_datetime(taken, offset),
            "exif": {
                "camera_make": make,
                "camera_model": model,
                "lens": lens,
                "width": width,
                "height": height,
                "orientation": orientation,
                "gps": None if lat is None or lon is None else {"lat": lat, "lon": lon, "alt": alt},
                "date_source": source,
            },
        }
    if len(extras) < len(file_ids):
        for file_id in file_ids:
            if file_id not in extras:
                extras[file_id] = {"date_taken": None, "exif": None}
    return extras


def full_json(row: Any) -> dict[str, Any]:
    """Every field, plus the extraction state (``status``, ``error``, when, from what)."""
    fields = {name: getattr(row, name) for name in FIELDS}
    fields["date_taken"] = iso_date(row.date_taken, row.utc_offset_minutes)
    fields["gps"] = gps_json(row)
    fields.update(
        status=row.status,
        error=row.error,
        extracted_at=row.extracted_at,
        content_hash=row.content_hash,
    )
    return fields
