"""How a listing turns filters and a sort into a page of file ids and a total.

Everything the kernel knows about query planners is in this module: plugins declare
filters (``SearchFilter.on``) and sorts (``SearchSort.keyed``) and the statements are
built here. One COUNT first: the total is in every response, and it tells the sort whether to walk
an index (many matches: read the sort column's index in order, stop when the page is
full) or to join and sort (few matches: a folder, a selective filter). Then the page,
walked across the sort's parts (dated files, then undated ones), counting a part only
when the page starts beyond its end.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    Table,
    cast,
    exists,
    func,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from kernel.listing_cache import ListingCache, statement_key
from kernel.tables import files
from kernel.types import SearchFilter, SearchQuery, SearchSort, SortPlan

# A page is found by walking the sort column's index (about limit / share entries) when
# there are more than WALK_INDEX_ABOVE matches; otherwise the matches are sorted, which
# for a few thousand rows is cheap. Within a folder the matches must also be one in
# WALK_SHARE of the index: a folder's files cluster in it (a folder of 2012 photos
# listed newest first would walk past every newer photo before the first match).
WALK_INDEX_ABOVE = 2_000
WALK_SHARE = 8
# From this offset on, a page is cut from the kept start of the listing's order (see
# ListingCache) instead of walking past every row before it on each request; reading a
# little further than asked serves the next pages too.
DEEP_OFFSET = 1_000
READ_AHEAD = 5_000
KEPT_PLANS = 4  # a listing's sort parts are kept for this many totals (``Statements``)


class DrivingJoin(Join):
    """An inner join whose left side is the outer loop of the query plan.

    PostgreSQL weighs LIMIT when it orders joins and needs no help; SQLite's planner does
    not, and given ``files JOIN image_exif ... ORDER BY date_taken LIMIT 100`` it sorts
    all 100,000 files. Rendered as ``CROSS JOIN ... ON`` there, which SQLite documents as
    keeping the left table outermost.
    """

    inherit_cache = True


@compiles(DrivingJoin, "sqlite")
def _sqlite_cross_join(join: DrivingJoin, compiler: Any, **kw: Any) -> str:
    kw.pop("asfrom", None)
    return (
        join.left._compiler_dispatch(compiler, asfrom=True, **kw)
        + " CROSS JOIN "
        + join.right._compiler_dispatch(compiler, asfrom=True, **kw)
        + " ON "
        + join.onclause._compiler_dispatch(compiler, **kw)
    )


@compiles(Table, "sqlite")
def _sqlite_table(table: Table, compiler: Any, **kw: Any) -> str:
    """SQLAlchemy drops table hints on SQLite; render ``INDEXED BY`` ones (see
    ``walk_index``) and nothing else."""
    text: str = compiler.visit_table(table, **kw)
    hint = (kw.get("fromhints") or {}).get(table)
    if kw.get("asfrom") and hint and hint.startswith("INDEXED BY "):
        text += " " + hint
    return text


def walk_index(stmt: Select[Any], table: Table, index: str) -> Select[Any]:
    """Make SQLite read ``table`` through ``index`` (``INDEXED BY``): in a walking sort part,
    so that it scans in sort order and tests the filters on each row, instead of starting
    from a filter's matches and sorting them all. Other databases choose for themselves."""
    return stmt.with_hint(table, f"INDEXED BY {index}", "sqlite")


def drive_from(table: FromClause, onclause: ColumnElement[bool]) -> DrivingJoin:
    """``table JOIN files ON onclause`` with ``table`` as the outer loop; give it to
    ``Select.select_from`` in a sort part that walks ``table``'s index in order."""
    return DrivingJoin(table, files, onclause)


def sort_all(stmt: Select[Any], *order: tuple[ColumnElement[Any], bool]) -> Select[Any]:
    """``stmt`` (a select of ``files.id``) ordered by ``(column, descending)`` pairs after
    every match is found: for a sort part when the plan says not to walk.

    Without the fence (an ``OFFSET 0`` subquery, which no planner flattens) PostgreSQL,
    seeing ORDER BY date_taken LIMIT 100 over 6,400 matches, walks the whole date index
    from the newest end hoping for one match in sixteen — 108 ms for a folder of 2012
    photos, whose matches all sit at the far end. Sorting the 6,400 takes a few ms.
    """
    keys = [column.label(f"sort_key_{n}") for n, (column, _) in enumerate(order)]
    matches = stmt.add_columns(*keys).order_by(None).offset(0).subquery("matches")
    ordering = [
        matches.c[key.name].desc() if descending else matches.c[key.name].asc()
        for key, (_, descending) in zip(keys, order, strict=True)
    ]
    return select(matches.c.id).order_by(*ordering)


@dataclass(frozen=True)
class Page:
    ids: list[int]
    total: int


def count_of(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.order_by(None).subquery())


@dataclass
class Statements:
    """What a listing runs, built from its parameters alone and kept for the next request
    with the same ones (``Catalog.search``): the filters as sets (``where``) and as row
    tests (``probing``), the COUNT and its cache key, and the sort's parts for each plan
    met. Building them took about a third of a listing's time in its worker thread
    (SQLAlchemy constructs and their cache keys); running them is the rest. Safe to share
    between threads: every statement is immutable, two threads building the parts of one
    plan at once both build the same, and the kept plans change under a lock."""

    query: SearchQuery
    sort: SearchSort
    filters: tuple[SearchFilter, ...]
    where: list[ColumnElement[bool]]
    probing: list[ColumnElement[bool]]
    counting: Select[Any]
    count_key: Hashable | None
    _parts: dict[tuple[int, bool], tuple[list[Select[Any]], Hashable | None]] = field(
        default_factory=dict
    )
    _keeping: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls,
        scope: Sequence[ColumnElement[bool]],
        filters: Sequence[SearchFilter],
        sort: SearchSort,
        query: SearchQuery,
    ) -> Statements:
        """``scope`` holds the kernel's conditions on ``files`` (folder, status, media
        type); ``filters`` the plugins'."""
        where = [*scope, *(f.where for f in filters)]
        probing = [*scope, *(f.probe for f in filters)]
        counting = select(func.count()).select_from(files).where(*where)
        key = statement_key(counting)
        return cls(query, sort, tuple(filters), where, probing, counting, key)

    def parts(self, plan: SortPlan) -> tuple[list[Select[Any]], Hashable | None]:
        """The sort's parts for ``plan`` and their cache key (the last few plans kept:
        the total moves with every file added or tagged)."""
        found = self._parts.get((plan.matches, plan.walk_index))
        if found is None:
            matching = select(files.c.id).where(*(self.probing if plan.walk_index else self.where))
            parts = [part(matching, self.query, plan) for part in self.sort.parts]
            found = (parts, statement_key(*parts))
            with self._keeping:
                while len(self._parts) >= KEPT_PLANS:
                    del self._parts[next(iter(self._parts))]
                self._parts[(plan.matches, plan.walk_index)] = found
        return found


def list_page(
    conn: Connection,
    statements: Statements,
    limit: int | None,
    offset: int,
    *,
    cache: ListingCache | None = None,
    version: Any = None,
) -> Page:
    """The ids of one page and the total, in at most one query per part plus the COUNT.

    The COUNT and a sorted page use each filter as a set; a page that walks an index uses
    it as a row test (``SearchFilter.probe``). With a ``cache`` and the ``version`` read
    before this transaction's first query, the total is reused while nothing changes, and
    a page at ``DEEP_OFFSET`` or beyond is cut from the kept start of the order (extended
    when a page lies past it).
    """
    counting = statements.counting

    def count() -> int:
        return int(conn.execute(counting).scalar_one())

    total = cache.count(version, statements.count_key, count) if cache else count()
    if offset >= total or limit == 0:
        return Page([], total)
    walk = worth_walking(conn, total, statements.query)
    parts, key = statements.parts(SortPlan(total, walk, statements.filters))
    end = total if limit is None else min(total, offset + limit)
    if cache is None or version is None or offset < DEEP_OFFSET:
        return Page(walk_parts(conn, parts, offset, end - offset, total), total)
    known = cache.ordering(version, key)
    if known is None or len(known) < end:
        start = len(known) if known is not None else 0
        target = min(total, end + READ_AHEAD)
        known = extended(known, walk_parts(conn, parts, start, target - start, total))
        cache.keep_ordering(version, key, known)
    return Page(known[offset:end].tolist(), total)


def extended(known: array[int] | None, more: list[int]) -> array[int]:
    """A kept ordering with ``more`` ids after it, as 4-byte ids while every id fits
    (half the bytes; after a minute of random deep listings at 100,000 files, two serving
    processes held 10 MB less private memory) and 8-byte ids once one does not."""
    code = known.typecode if known is not None else "I"
    try:
        tail = array(code, more)
    except OverflowError:  # an id of 2**32 or more
        code, tail = "q", array("q", more)
    if known is None:
        return tail
    return (known if known.typecode == code else array(code, known)) + tail


def worth_walking(conn: Connection, total: int, query: SearchQuery) -> bool:
    """Many matches; in a folder, also a good share of every file indexed (the highest
    id: one index lookup, an overestimate once files have been deleted)."""
    if total <= WALK_INDEX_ABOVE:
        return False
    if query.recursive and not query.path:
        return True
    highest = conn.execute(select(func.max(files.c.id))).scalar() or 0
    return total * WALK_SHARE >= highest


def walk_parts(
    conn: Connection, parts: Sequence[Select[Any]], offset: int, limit: int, total: int
) -> list[int]:
    """``limit`` ids from ``offset`` of the parts laid end to end: the part the page starts
    in runs with LIMIT/OFFSET, a part is counted only when the page starts beyond it, and
    no part runs once ``total`` ids are behind the page."""
    ids: list[int] = []
    skip = offset
    for stmt in parts:
        wanted = limit - len(ids)
        got = list(conn.execute(stmt.limit(wanted).offset(skip or None)).scalars())
        ids.extend(got)
        if len(got) == wanted or (ids and offset + len(ids) >= total):
            break  # the page is full, or it reached the last match: no later part has rows
        if got or not skip:
            skip = 0  # the page ran past this part's end: the next part starts at its top
        else:  # the page starts beyond this part: how far beyond?
            skip -= int(conn.execute(count_of(stmt)).scalar_one())
    return ids


def shuffle_key(seed: int) -> Any:
    """A deterministic pseudo-random order from (id, seed): stable across pages, different
    per seed. Quadratic mixing modulo a prime below 2**31 stays inside 64-bit integers."""
    prime = 2147483629
    seed = (seed * 1103515245 + 12345) % prime  # spread nearby seeds far apart
    mixed = (cast(files.c.id, BigInteger) * 48271 + seed) % prime
    return (mixed * mixed + seed) % prime


def _by_name(descending: bool) -> SearchSort:
    order = (files.c.name.desc(), files.c.id.desc()) if descending else (files.c.name, files.c.id)

    def part(stmt: Select[Any], query: SearchQuery, plan: SortPlan) -> Select[Any]:
        if not query.recursive:  # one folder: ix_files_parent holds it in name order
            return stmt.order_by(*order)
        if plan.walk_index:
            return walk_index(stmt, files, "ix_files_name").order_by(*order)
        return sort_all(stmt, (files.c.name, descending), (files.c.id, descending))

    return SearchSort("NameDesc" if descending else "NameAsc", part)


_NAME_SORTS = {"NameAsc": _by_name(False), "NameDesc": _by_name(True)}


def kernel_sorts(seed: int) -> dict[str, SearchSort]:
    """The sorts the kernel owns; ``Shuffle`` depends on the request's seed (the name
    sorts are made once: a request used to build both again to pick one)."""
    return {
        **_NAME_SORTS,
        "Shuffle": SearchSort("Shuffle", lambda s, q, p: s.order_by(shuffle_key(seed), files.c.id)),
    }


# --- declared filters and sorts ------------------------------------------------------------


def filter_forms(
    cls: type[SearchFilter],
    table: Table,
    conditions: Sequence[ColumnElement[bool]],
    key: Any,
    negate: bool,
) -> SearchFilter:
    """``SearchFilter.on``: the set form (``files.id IN (SELECT key ...)``, answered from
    the plugin's index) and the row form (a correlated EXISTS on the key). A negated
    filter is NOT EXISTS in both: an anti-join the planner runs either way."""
    key = table.c.file_id if key is None else key
    probe = exists().where(key == files.c.id, *conditions).correlate_except(table)
    if negate:
        return cls(where=~probe, probe=~probe)
    where = files.c.id.in_(select(key).where(*conditions))
    return cls(where=where, probe=probe, table=table, conditions=tuple(conditions))


def keyed_sort(
    cls: type[SearchSort],
    name: str,
    table: Table,
    key: Any,
    index: str,
    *,
    descending: bool,
    missing: str,
    ties_descending: bool,
    file_key: Any,
    description: str,
) -> SearchSort:
    """``SearchSort.keyed``: the files with a key, then (or before) the files without.

    The keyed part, with many matches, drives the query from ``table`` read through
    ``index`` in order and stops when the page is full (the filters on ``table`` itself
    are tested on the walked row, so a date range bounds the walk); with few matches it
    joins and sorts them behind the ``sort_all`` fence. Files without a key form their own
    part in id order.
    """
    if missing not in ("first", "last"):
        raise ValueError(f"sort {name!r}: missing must be 'first' or 'last', not {missing!r}")
    file_key = table.c.file_id if file_key is None else file_key
    on = file_key == files.c.id
    has_key = [key.isnot(None)] if getattr(key, "nullable", True) else []
    order = (
        key.desc() if descending else key.asc(),
        file_key.desc() if ties_descending else file_key.asc(),
    )

    def keyed(stmt: Select[Any], _query: SearchQuery, plan: SortPlan) -> Select[Any]:
        if not plan.walk_index:
            stmt = stmt.join(table, on).where(*has_key)
            return sort_all(stmt, (key, descending), (file_key, ties_descending))
        own = [c for f in plan.filters if f.table is table for c in f.conditions]
        stmt = walk_index(stmt.select_from(drive_from(table, on)), table, index)
        return stmt.where(*has_key, *own).order_by(*order)

    def without(stmt: Select[Any], _query: SearchQuery, _plan: SortPlan) -> Select[Any]:
        return stmt.where(~exists().where(on, *has_key)).order_by(files.c.id)

    if missing == "last":
        return cls(name, keyed, then=(without,), description=description)
    return cls(name, without, then=(keyed,), description=description)
