"""A small least-recently-used cache whose entries hold for one database version.

The hot paths of a photo server ask the same questions again and again between writes:
whose token is this, which file is at this path, is its thumbnail made. Each answer is
kept with the ``Database.local_version`` read before it was computed and given again
only while the version is unchanged, so any commit by any process (a scan, a tag, a
password change) makes every entry stale at once. Where no version is known
(PostgreSQL, an in-memory database) nothing is kept. A version is anything comparable
for equality (SQLite's change counter, a PostgreSQL snapshot). Large values (encoded
answers) are bounded by their total weight as well as their number.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class VersionedCache(Generic[V]):
    """Up to ``size`` answers, each valid while the version it was computed at holds;
    with ``weigh``, also at most ``max_weight`` of them in all (a heavier one is not kept)."""

    def __init__(
        self, size: int, *, weigh: Callable[[V], int] | None = None, max_weight: int = 0
    ) -> None:
        self.size = size
        self.weigh = weigh
        self.max_weight = max_weight
        self._weight = 0
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[Any, V]] = OrderedDict()

    def get(
        self, key: Hashable, version: Any, still: Callable[[V], bool] | None = None
    ) -> V | None:
        """The answer kept at ``version``; with ``still``, also one kept at an older
        version that ``still(answer)`` confirms (a check cheaper than computing it
        again, e.g. its row read by primary key), which is then kept at ``version``."""
        if version is None:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or (kept[0] != version and still is None):
                return None
            self._kept.move_to_end(key)
        if kept[0] != version:
            if not still(kept[1]):  # type: ignore[misc]
                self.discard(key)
                return None
            self.put(key, version, kept[1])
        return kept[1]

    def put(self, key: Hashable, version: Any, value: V) -> None:
        """Keep ``value``, computed after ``version`` was read (None: keep nothing)."""
        weight = self.weigh(value) if self.weigh is not None else 0
        if version is None or (self.weigh is not None and weight > self.max_weight):
            return
        with self._lock:
            self._drop(key)
            self._kept[key] = (version, value)
            self._weight += weight
            while len(self._kept) > self.size or self._weight > self.max_weight > 0:
                self._drop(next(iter(self._kept)))

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None and self.weigh is not None:
            self._weight -= self.weigh(kept[1])
