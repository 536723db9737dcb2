"""Counts and orderings of ``/photos`` listings, kept until the database changes.

A client paging through a result asks the same COUNT for every page, and a page deep in
a sorted listing (offset 50,000) otherwise re-walks everything before it. Both are kept
here — for an ordering, its start: every id up to a little past the deepest page asked
— keyed by the statement and its values, and stamped with ``Database.data_version``
taken before the transaction read anything: any commit by anyone (a new tag, a scan in
another process) changes the stamp and the entry is computed afresh. Nothing is kept
for an in-memory database, whose stamp is unknown.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Select

MAX_COUNTS = 512
MAX_ORDERED_IDS = 4_000_000  # ~32 MB of 8-byte ids across all kept orderings


def statement_key(*statements: Select[Any]) -> Hashable | None:
    """What identifies a statement's result: its SQL shape plus every bound value (None
    when a plugin's construct cannot say, and then the result is not kept)."""
    key: list[Any] = []
    for stmt in statements:
        cache_key = stmt._generate_cache_key()
        if cache_key is None:
            return None
        key.append(cache_key.key)
        key.extend(_hashable(bind.effective_value) for bind in cache_key.bindparams)
    return tuple(key)


def _hashable(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value  # type: ignore[no-any-return]


class ListingCache:
    """Least-recently-used counts and orderings, each valid for one data version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._orders: OrderedDict[Hashable, tuple[Any, array[int]]] = OrderedDict()
        self._ordered_ids = 0

    def count(self, version: Any, key: Hashable | None, compute: Callable[[], int]) -> int:
        if version is None or key is None:
            return compute()
        with self._lock:
            kept = self._counts.get(key)
            if kept is not None and kept[0] == version:
                self._counts.move_to_end(key)
                return kept[1]
        total = compute()
        with self._lock:
            self._counts[key] = (version, total)
            self._counts.move_to_end(key)
            while len(self._counts) > MAX_COUNTS:
                self._counts.popitem(last=False)
        return total

    def ordering(self, version: Any, key: Hashable | None) -> array[int] | None:
        """The kept start of a listing's order (its first N ids), if still valid."""
        if version is None or key is None:
            return None
        with self._lock:
            kept = self._orders.get(key)
            if kept is None or kept[0] != version:
                return None
            self._orders.move_to_end(key)
            return kept[1]

    def keep_ordering(self, version: Any, key: Hashable | None, ids: array[int]) -> None:
        """Keep (or replace with a longer) start of a listing's order. The array must not
        be changed afterwards: readers slice it without the lock."""
        if version is None or key is None or len(ids) > MAX_ORDERED_IDS // 4:
            return
        with self._lock:
            old = self._orders.pop(key, None)
            if old is not None:
                self._ordered_ids -= len(old[1])
            self._orders[key] = (version, ids)
            self._ordered_ids += len(ids)
            while self._ordered_ids > MAX_ORDERED_IDS:
                _, (_, dropped) = self._orders.popitem(last=False)
                self._ordered_ids -= len(dropped)
