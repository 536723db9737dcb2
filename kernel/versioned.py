"""A small least-recently-used cache whose entries hold for one database version.

The hot paths of a photo server ask the same questions again and again between writes:
whose token is this, which file is at this path, is its thumbnail made. Each answer is
kept with the ``Database.local_version`` read before it was computed and given again
only while the version is unchanged, so any commit by any process (a scan, a tag, a
password change) makes every entry stale at once. Where no version is known
(PostgreSQL, an in-memory database) nothing is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class VersionedCache(Generic[V]):
    """Up to ``size`` answers, each valid while the version it was computed at holds."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()

    def get(self, key: Hashable, version: int | None) -> V | None:
        if version is None:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version:
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: Hashable, version: int | None, value: V) -> None:
        """Keep ``value``, computed after ``version`` was read (None: keep nothing)."""
        if version is None:
            return
        with self._lock:
            self._kept[key] = (version, value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._kept.pop(key, None)
