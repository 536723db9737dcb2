"""The memories query: one SQL statement selects the files of the window in every
earlier year; Python only groups the rows it returns.

Capture dates come from whichever plugin answers the ``date_taken_table`` hook (exif
does); with none, from the file's mtime. The "same days of the year" test is on
``month * 100 + day``: a ``month_day`` column when the date table offers one (exif
stores it, indexed), otherwise computed by ``extract()``, which SQLAlchemy renders as
``strftime`` on SQLite and ``EXTRACT`` on PostgreSQL. Rows carry the kernel's file
columns, so the route turns them into ``FileRef`` and then the kernel's file entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DateTime,
    FromClause,
    Integer,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from kernel.index import FILE_COLUMNS, listed_in
from kernel.tables import files

from .window import Window

if TYPE_CHECKING:
    from kernel.core import Kernel

NANOSECONDS = 1_000_000_000


@dataclass(frozen=True)
class Scope:
    library_id: int
    rel_dir: str
    recursive: bool


def mtime_table(kernel: Kernel, offset_minutes: int) -> FromClause:
    """Capture dates from the files' mtime, as wall time at the client's UTC offset.

    The offset is the one in force today in the client's zone, so a photo from the
    other side of a daylight-saving change can shift by an hour: fine for a fallback.
    """
    seconds = files.c.mtime_ns // NANOSECONDS + offset_minutes * 60
    if kernel.db.dialect == "postgresql":
        wall = func.timezone("UTC", func.to_timestamp(seconds))
    else:
        wall = func.datetime(seconds, "unixepoch")
    return select(
        files.c.id.label("file_id"),
        type_coerce(wall, DateTime).label("taken_at"),
        literal(offset_minutes, Integer).label("utc_offset_minutes"),
    ).subquery("mtime_taken")


def month_day_of(table: FromClause) -> Any:
    if "month_day" in table.c:
        return table.c.month_day
    taken = table.c.taken_at
    return cast(extract("month", taken) * 100 + extract("day", taken), Integer)


def memories_query(kernel: Kernel, table: FromClause, window: Window, scope: Scope) -> Any:
    md = month_day_of(table)
    if window.wraps:  # e.g. 29 Dec .. 4 Jan: two ranges of month-days
        in_window = or_(md >= window.start_md, md <= window.end_md)
    else:
        in_window = md.between(window.start_md, window.end_md)
    return (
        select(*FILE_COLUMNS, table.c.taken_at, table.c.utc_offset_minutes)
        .select_from(files.join(table, table.c.file_id == files.c.id))
        .where(
            *listed_in(scope.library_id, scope.rel_dir, scope.recursive),
            kernel.excluder.sql_clause(),
            in_window,
            table.c.taken_at < window.starts_at,
        )
        .order_by(table.c.taken_at, files.c.id)
    )


def run(kernel: Kernel, table: FromClause, window: Window, scope: Scope) -> list[Any]:
    with kernel.db.read() as conn:
        return conn.execute(memories_query(kernel, table, window, scope)).all()


def taken_as_datetime(value: Any) -> datetime:
    """Drivers hand back datetimes; SQLite's ``datetime()`` text is parsed defensively."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
