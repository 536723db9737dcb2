"""Counts and orderings of ``/photos`` listings, kept until the database changes.

A client paging through a result asks the same COUNT for every page, and a page deep in
a sorted listing (offset 50,000) otherwise re-walks everything before it. Both are kept
here — for an ordering, its start: every id up to a little past the deepest page asked
— keyed by the statement and its values, and stamped with ``Database.data_version``
taken before the transaction read anything: any commit by anyone (a new tag, a scan in
another process) changes the stamp and the entry is computed afresh. Nothing is kept
for an in-memory database, whose stamp is unknown.

A listing's statements (``kernel.listing.Statements``) do not depend on the data: they
are kept by the listing's parameters, whatever the stamp.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select

from kernel.versioned import VersionedCache

if TYPE_CHECKING:
    from kernel.types import SearchQuery, SearchSort

Built = TypeVar("Built")

MAX_COUNTS = 512
MAX_ORDERED_IDS = 4_000_000  # 16 MB of 4-byte ids across all kept orderings (32 past 2**32)
#: an ordering is kept only from offset 1,000 on, so more than this never fit the ids
MAX_ORDERINGS = 4_000
MAX_STATEMENTS = 128  # listings' built statements, by parameters (about 30 KiB each)
ANY_DATA = 0  # the version statements are kept at: they depend on no data
#: the parameters that page through a listing without changing its statements
PAGING_PARAMS = frozenset({"limit", "offset", "seed"})


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


def query_key(query: SearchQuery, sort: SearchSort) -> Hashable:
    """What a listing's statements are built from: the folder, the user, the media type,
    every declared parameter but the paging ones, and the sort (a client's own ``_``
    names, such as cache-busters, are no one's parameters)."""
    params = tuple(
        sorted(
            (k, v) for k, v in query.params.items()
            if k not in PAGING_PARAMS and not k.startswith("_")
        )
    )  # fmt: skip
    return (query.library_id, query.path, query.recursive, query.media_type, query.user_id,
            params, sort.name)  # fmt: skip


def _hashable(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value  # type: ignore[no-any-return]


class ListingCache:
    """Least-recently-used counts and orderings, each valid for one data version
    (two ``VersionedCache``s: orderings are bounded by their ids in all as well)."""

    def __init__(self) -> None:
        self._counts: VersionedCache[int] = VersionedCache(MAX_COUNTS)
        self._orders: VersionedCache[array[int]] = VersionedCache(
            MAX_ORDERINGS, weigh=len, max_weight=MAX_ORDERED_IDS
        )
        self._statements: VersionedCache[Any] = VersionedCache(MAX_STATEMENTS)

    def statements(self, key: Hashable | None, build: Callable[[], Built]) -> Built:
        """The statements kept for ``key``, or ``build()``'s (kept unless key is None);
        they hold at every data version (``ANY_DATA``)."""
        found = None if key is None else self._statements.get(key, ANY_DATA)
        if found is None:
            found = build()
            if key is not None:
                self._statements.put(key, ANY_DATA, found)
        return found  # type: ignore[no-any-return]

    def count(self, version: Any, key: Hashable | None, compute: Callable[[], int]) -> int:
        if key is None:
            return compute()
        total = self._counts.get(key, version)
        if total is None:
            total = compute()
            self._counts.put(key, version, total)
        return total

    def ordering(self, version: Any, key: Hashable | None) -> array[int] | None:
        """The kept start of a listing's order (its first N ids), if still valid."""
        return None if key is None else self._orders.get(key, version)

    def keep_ordering(self, version: Any, key: Hashable | None, ids: array[int]) -> None:
        """Keep (or replace with a longer) start of a listing's order. The array must not
        be changed afterwards: readers slice it without the lock."""
        if key is not None and len(ids) <= MAX_ORDERED_IDS // 4:
            self._orders.put(key, version, ids)
