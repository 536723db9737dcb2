"""Encoded ``/memories`` answers, kept until the database changes.

An app asks for today's memories every time it opens, and the answer stays the same
until somebody commits something: a scan, a tag, a favourite. Building it is the
costliest request of the server (thousands of files, each with every plugin's extras,
a megabyte of JSON for a week), so the encoded body is kept, stamped with the data
version read before anything of it was read (``Database.data_version``: SQLite's
``PRAGMA data_version``, PostgreSQL's transaction snapshot). Any commit by any process
changes the version and the next request builds the answer afresh. An in-memory
database has no version, and nothing is kept.

The key is everything the answer is made from besides the database: the user (whose
favourites it shows), the folder, the span, the client's day and zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.db import Database

MAX_ANSWERS = 32
MAX_BYTES = 48 << 20  # a month of a busy library is ~5 MB of JSON


def read_version(db: Database) -> Any:
    """The data version now, None when unknown (blocking on PostgreSQL: a round trip)."""
    if db.is_sqlite:
        return db.local_version()
    with db.read() as conn:
        return db.data_version(conn)
