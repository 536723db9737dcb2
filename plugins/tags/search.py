"""What the tags plugin adds to ``GET /photos``: tag filters, tag-count sorts, and each
file's tags in the listing. All of it is SQL the kernel runs in its one page query (plus
one query per page for the extras) — nothing loops over files in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select

from kernel.core import Kernel
from kernel.db import Database
from kernel.tables import files
from kernel.types import (
    FileRef,
    InvalidParameter,
    SearchFilter,
    SearchParam,
    SearchQuery,
    SearchSort,
)

from .tables import tag_counts, tagged_photo, tags

MATCH_PARAMS = ("tag_match", "tag_filter_mode")  # ours, then the Rust server's spelling


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


PARAMS_DECLARED = [
    SearchParam("tag_ids", list[int], "Tag ids, comma-separated: files with any (or all) of them."),
    SearchParam("exclude_tag_ids", list[int], "Tag ids, comma-separated: files with none of them."),
    SearchParam("tag_match", str, "any (default) or all: how tag_ids combine."),
    SearchParam("tag_filter_mode", str, "The same as tag_match (the Rust server's name)."),
]


def search_filter(query: SearchQuery) -> list[SearchFilter]:
    mode = tag_match(query)
    wanted = sorted(set(query.get_int_list("tag_ids") or ()))
    unwanted = sorted(set(query.get_int_list("exclude_tag_ids") or ()))
    found: list[SearchFilter] = []
    if wanted and mode == "any":
        found.append(SearchFilter.on(tagged_photo, tagged_photo.c.tag_id.in_(wanted)))
    elif wanted:
        having_all = (
            select(tagged_photo.c.file_id)
            .where(tagged_photo.c.tag_id.in_(wanted))
            .group_by(tagged_photo.c.file_id)
            .having(func.count(func.distinct(tagged_photo.c.tag_id)) == len(wanted))
        )
        found.append(SearchFilter.of(files.c.id.in_(having_all)))  # a handful: the set is cheap
    if unwanted:
        excluded = tagged_photo.c.tag_id.in_(unwanted)
        found.append(SearchFilter.on(tagged_photo, excluded, negate=True))
    return found


SORTS = [
    SearchSort.keyed(
        "TagCountAsc", tag_counts, tag_counts.c.tag_count, "ix_tag_counts_asc",
        descending=False, missing="first", ties_descending=False,
        description="By number of tags, fewest first (untagged files first).",
    ),
    SearchSort.keyed(
        "TagCountDesc", tag_counts, tag_counts.c.tag_count, "ix_tag_counts_desc",
        descending=True, missing="last", ties_descending=False,
        description="By number of tags, most first (untagged files last).",
    ),
]  # fmt: skip


def file_tag_extras(kernel: Kernel, refs: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
    """``{"tags": [{"id", "name"}]}`` for every file of a page, in one query."""
    extras: dict[int, dict[str, Any]] = {ref.id: {"tags": []} for ref in refs}
    db = kernel.db
    with db.read() as conn:
        rows = conn.execute(db.prepared(_page_tags), {"ids": db.ids_value(extras)}).all()
    for file_id, tag_id, name in rows:
        extras[file_id]["tags"].append({"id": tag_id, "name": name})
    return extras


def _page_tags(db: Database) -> Select[Any]:
    """(file id, tag id, tag name) of the files bound to ``ids``, by file then name."""
    return (
        select(tagged_photo.c.file_id, tags.c.id, tags.c.name)
        .join(tags, tags.c.id == tagged_photo.c.tag_id)
        .where(db.among(tagged_photo.c.file_id, db.ids_param()))
        .order_by(tagged_photo.c.file_id, func.lower(tags.c.name), tags.c.id)
    )
