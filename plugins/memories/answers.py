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

import threading
from collections import OrderedDict
from collections.abc import Hashable
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


class Answers:
    """Least-recently-used encoded answers, each valid for one data version."""

    def __init__(self, max_answers: int = MAX_ANSWERS, max_bytes: int = MAX_BYTES) -> None:
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[Any, bytes]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable, version: Any) -> bytes | None:
        if version is None:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version:
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: Hashable, version: Any, body: bytes) -> None:
        """Keep ``body``, built from data read after ``version`` was (None: keep nothing)."""
        if version is None or len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._kept[key] = (version, body)
            self._bytes += len(body)
            while len(self._kept) > self.max_answers or self._bytes > self.max_bytes:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= len(dropped)
