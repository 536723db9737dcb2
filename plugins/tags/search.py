"""What the tags plugin adds to ``GET /photos``: tag filters, tag-count sorts, and each
file's tags in the listing. All of it is SQL the kernel runs in its one page query (plus
one query per page for the extras) — nothing loops over files in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, func, select

from kernel.core import Kernel
from kernel.listing import drive_from, sort_all, walk_index
from kernel.tables import files
from kernel.types import (
    FileRef,
    InvalidParameter,
    SearchFilter,
    SearchQuery,
    SearchSort,
    SortPlan,
)

from .tables import tag_counts, tagged_photo, tags

MATCH_PARAMS = ("tag_match", "tag_filter_mode")  # ours, then the Rust server's spelling
PARAMS = frozenset({"tag_ids", "exclude_tag_ids", *MATCH_PARAMS})
EXTRAS_CHUNK = 10_000  # ids per query: one query for any realistic page


def tag_match(query: SearchQuery) -> str:
    """``any`` (a file with at least one of the tags) or ``all`` (every one of them)."""
    for name in MATCH_PARAMS:
        raw = query.get(name)
        if raw is None:
            continue
        mode = raw.strip().lower()
        if mode not in ("any", "all"):
            raise InvalidParameter(name, f"must be any or all, not {raw!r}")
        return mode
    return "any"


def search_filter(query: SearchQuery) -> SearchFilter | None:
    present = frozenset(name for name in PARAMS if name in query.params)
    if not present:
        return None
    mode = tag_match(query)
    wanted = sorted(set(query.get_int_list("tag_ids") or ()))
    unwanted = sorted(set(query.get_int_list("exclude_tag_ids") or ()))
    where: list[Any] = []
    probe: list[Any] = []  # the same conditions as tests of one file (SearchFilter.probe)
    if wanted and mode == "any":
        # IN, not EXISTS: the planner can walk the (tag_id, file_id) index to the few
        # matching files instead of probing tagged_photo once per listed file.
        tagged = select(tagged_photo.c.file_id).where(tagged_photo.c.tag_id.in_(wanted))
        where.append(files.c.id.in_(tagged))
        probe.append(
            exists().where(tagged_photo.c.file_id == files.c.id, tagged_photo.c.tag_id.in_(wanted))
        )
    elif wanted:
        having_all = (
            select(tagged_photo.c.file_id)
            .where(tagged_photo.c.tag_id.in_(wanted))
            .group_by(tagged_photo.c.file_id)
            .having(func.count(func.distinct(tagged_photo.c.tag_id)) == len(wanted))
        )
        where.append(files.c.id.in_(having_all))
        probe.append(files.c.id.in_(having_all))  # a handful of files: the set is cheap
    if unwanted:
        untagged = ~exists().where(
            tagged_photo.c.file_id == files.c.id, tagged_photo.c.tag_id.in_(unwanted)
        )
        where.append(untagged)
        probe.append(untagged)
    return SearchFilter(params=present, where=where, probe=probe)


def _tag_count_sort(name: str, descending: bool) -> SearchSort:
    """Files by how many tags they carry (ties by id), untagged files as zero.

    Tagged files come from ``tag_counts``: with many matches the part walks the index for
    its direction and stops at the page; with few it joins and sorts. Untagged files have
    no row there and form their own part, in id order — last for ``TagCountDesc``, first
    for ``TagCountAsc``.
    """
    count = tag_counts.c.tag_count
    order = (count.desc() if descending else count, tag_counts.c.file_id)
    on = tag_counts.c.file_id == files.c.id
    index = "ix_tag_counts_desc" if descending else "ix_tag_counts_asc"

    def tagged(stmt: Select[Any], _query: SearchQuery, plan: SortPlan) -> Select[Any]:
        if plan.walk_index:
            stmt = walk_index(stmt.select_from(drive_from(tag_counts, on)), tag_counts, index)
            return stmt.order_by(*order)
        return sort_all(
            stmt.join(tag_counts, on), (count, descending), (tag_counts.c.file_id, False)
        )

    def untagged(stmt: Select[Any], _query: SearchQuery, _plan: SortPlan) -> Select[Any]:
        return stmt.where(~exists().where(on)).order_by(files.c.id)

    if descending:
        return SearchSort(name, tagged, then=(untagged,))
    return SearchSort(name, untagged, then=(tagged,))


SORTS = [_tag_count_sort("TagCountAsc", False), _tag_count_sort("TagCountDesc", True)]


def file_tag_extras(kernel: Kernel, refs: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
    """``{"tags": [{"id", "name"}]}`` for every file of a page, in one query."""
    extras: dict[int, dict[str, Any]] = {ref.id: {"tags": []} for ref in refs}
    ids = list(extras)
    with kernel.db.read() as conn:
        for start in range(0, len(ids), EXTRAS_CHUNK):
            rows = conn.execute(
                select(tagged_photo.c.file_id, tags.c.id, tags.c.name)
                .join(tags, tags.c.id == tagged_photo.c.tag_id)
                .where(tagged_photo.c.file_id.in_(ids[start : start + EXTRAS_CHUNK]))
                .order_by(tagged_photo.c.file_id, func.lower(tags.c.name), tags.c.id)
            )
            for row in rows:
                extras[row.file_id]["tags"].append({"id": row.id, "name": row.name})
    return extras
