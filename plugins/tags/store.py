"""The tags plugin's database work. Every function is synchronous; routes and tools run
them in a worker thread.

Writes are set-based (``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, one ``DELETE``)
so tagging a thousand files is a handful of statements, and a batch is one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from litestar.exceptions import HTTPException, NotFoundException
from sqlalchemy import Connection, and_, delete, func, literal, select, true, update
from sqlalchemy.exc import IntegrityError

from kernel.core import Kernel
from kernel.index import under_folder
from kernel.libraries import PathRefused
from kernel.tables import files
from kernel.types import FileRef, InvalidParameter

from .tables import name_key, tag_counts, tagged_photo, tags

MAX_NAME_LENGTH = 255
MAX_BATCH_PATHS = 5_000
MAX_BATCH_TAGS = 100
CHUNK = 500  # values per IN (...) list: far below SQLite's and PostgreSQL's limits

TAG_COLUMNS = (tags.c.id, tags.c.name, tags.c.created_at, tags.c.updated_at)


class TagNameTaken(HTTPException):
    status_code = 409


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def tag_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def clean_name(raw: object, param: str) -> str:
    """A tag name as stored: trimmed, non-empty, at most 255 characters."""
    if not isinstance(raw, str):
        raise InvalidParameter(param, "a tag name must be a string")
    name = raw.strip()
    if not name:
        raise InvalidParameter(param, "a tag name may not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(param, f"a tag name is at most {MAX_NAME_LENGTH} characters")
    return name


# --- files ----------------------------------------------------------------------------------


def indexed_file(kernel: Kernel, library: str | int | None, path: str | None) -> FileRef:
    """The index row of a client path: resolved by the kernel, present in the index."""
    if not path:
        raise InvalidParameter("path", "the path of a file is required")
    resolved = kernel.libraries.resolve(library, path)
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder; tags belong to files")
    ref = kernel.index.get(resolved.library.id, resolved.rel_path)
    if ref is None:
        raise PathRefused(404, f"{resolved.rel_path} is not in the index (yet)")
    return ref


def indexed_ids(conn: Connection, library_id: int, rel_paths: Sequence[str]) -> list[int]:
    """File ids of present files, in the order given; 404 naming the first one not indexed."""
    found: dict[str, int] = {}
    for part in chunks(rel_paths):
        rows = conn.execute(
            select(files.c.id, files.c.rel_path).where(
                files.c.library_id == library_id,
                files.c.rel_path.in_(part),
                files.c.status == "present",
            )
        )
        found.update((row.rel_path, row.id) for row in rows)
    for rel_path in rel_paths:
        if rel_path not in found:
            raise PathRefused(404, f"{rel_path} is not in the index (yet)")
    return [found[rel_path] for rel_path in rel_paths]


# --- tags -----------------------------------------------------------------------------------


def find_by_name(conn: Connection, name: str, *, other_than: int | None = None) -> Any:
    query = select(*TAG_COLUMNS).where(tags.c.name_key == name_key(name))
    if other_than is not None:
        query = query.where(tags.c.id != other_than)
    return conn.execute(query).first()


def require_tags(conn: Connection, tag_ids: Iterable[int], param: str) -> dict[int, Any]:
    """The rows of the given tag ids; 404 naming the first unknown one."""
    wanted = list(dict.fromkeys(tag_ids))
    rows: dict[int, Any] = {}
    for part in chunks(wanted):
        rows.update(
            (r.id, r) for r in conn.execute(select(*TAG_COLUMNS).where(tags.c.id.in_(part)))
        )
    for tag_id in wanted:
        if tag_id not in rows:
            raise NotFoundException(f"{param}: no tag with id {tag_id}")
    return rows


def ensure_tag(kernel: Kernel, conn: Connection, name: str, now: float) -> Any:
    """The tag called ``name`` (any case), created when there is none."""
    row = find_by_name(conn, name)
    if row is not None:
        return row
    # ON CONFLICT covers a concurrent creator on PostgreSQL (SQLite writers take turns).
    conn.execute(
        kernel.db.insert(tags)
        .values(name=name, name_key=name_key(name), created_at=now, updated_at=now)
        .on_conflict_do_nothing()
    )
    return find_by_name(conn, name)


def link(kernel: Kernel, conn: Connection, tag_ids: Sequence[int], file_ids: Sequence[int]) -> int:
    """Put every tag on every file (already there is fine); returns how many were new."""
    if not tag_ids or not file_ids:
        return 0
    added = 0
    now = time.time()
    for part in chunks(file_ids):
        pairs = (
            select(tags.c.id, files.c.id, literal(now))
            .select_from(tags.join(files, true()))  # every tag x every file, on purpose
            .where(tags.c.id.in_(tag_ids), files.c.id.in_(part))
        )
        stmt = (
            kernel.db.insert(tagged_photo)
            .from_select(["tag_id", "file_id", "created_at"], pairs)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
        )
        added += max(conn.execute(stmt).rowcount, 0)
    return added


def unlink(conn: Connection, tag_ids: Sequence[int], file_ids: Sequence[int]) -> int:
    if not tag_ids or not file_ids:
        return 0
    removed = 0
    for part in chunks(file_ids):
        removed += (
            conn.execute(
                delete(tagged_photo).where(
                    tagged_photo.c.tag_id.in_(tag_ids), tagged_photo.c.file_id.in_(part)
                )
            ).rowcount
            or 0
        )
    return removed


def tags_of_file(kernel: Kernel, file_id: int) -> list[dict[str, Any]]:
    query = (
        select(*TAG_COLUMNS)
        .join(tagged_photo, tagged_photo.c.tag_id == tags.c.id)
        .where(tagged_photo.c.file_id == file_id)
        .order_by(func.lower(tags.c.name), tags.c.id)
    )
    with kernel.db.read() as conn:
        return [tag_json(row) for row in conn.execute(query)]


def all_tags(
    kernel: Kernel, library_id: int | None, rel_dir: str | None, recursive: bool
) -> list[dict[str, Any]]:
    """Every tag with how many present files carry it (optionally within one folder)."""
    counted = [
        files.c.id == tagged_photo.c.file_id,
        files.c.status == "present",
        files.c.error.is_(None),
    ]
    if library_id is not None:
        counted.append(files.c.library_id == library_id)
    if rel_dir is not None:
        counted.append(under_folder(rel_dir, recursive))
    query = (
        select(*TAG_COLUMNS, func.count(files.c.id).label("count"))
        .select_from(
            tags.outerjoin(tagged_photo, tagged_photo.c.tag_id == tags.c.id).outerjoin(
                files, and_(*counted)
            )
        )
        .group_by(*TAG_COLUMNS)
        .order_by(func.lower(tags.c.name), tags.c.id)
    )
    with kernel.db.read() as conn:
        return [{**tag_json(row), "count": int(row.count)} for row in conn.execute(query)]


def add_to_file(
    kernel: Kernel, file_id: int, tag_id: int | None, tag_name: str | None
) -> dict[str, Any]:
    """Tag one file by tag id or by name (a new name creates the tag). Idempotent."""
    if tag_id is None and tag_name is None:
        raise InvalidParameter("tag_name", "give tag_id or tag_name")
    name = clean_name(tag_name, "tag_name") if tag_id is None else None
    with kernel.db.write() as conn:
        if tag_id is not None:
            row = require_tags(conn, [tag_id], "tag_id")[tag_id]
        else:
            assert name is not None
            row = ensure_tag(kernel, conn, name, time.time())
        added = link(kernel, conn, [row.id], [file_id])
    return {**tag_json(row), "added": bool(added)}


def remove_from_file(kernel: Kernel, file_id: int, tag_id: int) -> dict[str, Any]:
    with kernel.db.write() as conn:
        require_tags(conn, [tag_id], "tag_id")
        removed = unlink(conn, [tag_id], [file_id])
    return {"tag_id": tag_id, "removed": bool(removed)}


def batch(
    kernel: Kernel,
    library: str | int | None,
    paths: Sequence[str],
    add: Sequence[int | str],
    remove: Sequence[int],
) -> dict[str, Any]:
    """Add and remove many tags on many files in ONE transaction: all or nothing."""
    if not paths:
        raise InvalidParameter("paths", "give at least one path")
    if len(paths) > MAX_BATCH_PATHS:
        raise InvalidParameter("paths", f"at most {MAX_BATCH_PATHS} paths per batch")
    if not add and not remove:
        raise InvalidParameter("add", "nothing to add or remove")
    if len(add) > MAX_BATCH_TAGS or len(remove) > MAX_BATCH_TAGS:
        raise InvalidParameter("add", f"at most {MAX_BATCH_TAGS} tags to add and to remove")
    target = kernel.libraries.get(library)
    rel_paths: list[str] = []
    for path in paths:
        if not isinstance(path, str) or not path:
            raise InvalidParameter("paths", "every path must be a non-empty string")
        resolved = kernel.libraries.resolve(target.id, path)
        if resolved.abs_path.is_dir():
            raise PathRefused(400, f"{resolved.rel_path or '/'} is a folder; tags belong to files")
        rel_paths.append(resolved.rel_path)
    rel_paths = list(dict.fromkeys(rel_paths))
    add_ids = [item for item in add if isinstance(item, int)]
    add_names = [clean_name(item, "add") for item in add if isinstance(item, str)]

    with kernel.db.write() as conn:
        file_ids = indexed_ids(conn, target.id, rel_paths)
        added_rows = require_tags(conn, add_ids, "add")
        require_tags(conn, remove, "remove")
        now = time.time()
        for name in add_names:
            row = ensure_tag(kernel, conn, name, now)
            added_rows[row.id] = row
        clash = sorted(set(added_rows) & set(remove))
        if clash:  # raising rolls back the tags this batch just created
            raise InvalidParameter("remove", f"tag {clash[0]} is both added and removed")
        added = link(kernel, conn, list(added_rows), file_ids)
        removed = unlink(conn, list(dict.fromkeys(remove)), file_ids)
    return {
        "files": len(file_ids),
        "added": added,
        "removed": removed,
        "tags_added": [tag_json(row) for row in added_rows.values()],
        "tags_removed": list(dict.fromkeys(remove)),
    }


def rename(kernel: Kernel, tag_id: int, raw_name: object) -> dict[str, Any]:
    """Rename a tag; another tag already called that (any case) is a 409."""
    name = clean_name(raw_name, "name")
    try:
        with kernel.db.write() as conn:
            require_tags(conn, [tag_id], "tag_id")
            other = find_by_name(conn, name, other_than=tag_id)
            if other is not None:
                raise TagNameTaken(detail=f"another tag is already called {other.name!r}")
            conn.execute(
                update(tags)
                .where(tags.c.id == tag_id)
                .values(name=name, name_key=name_key(name), updated_at=time.time())
            )
            row = conn.execute(select(*TAG_COLUMNS).where(tags.c.id == tag_id)).one()
    except IntegrityError:  # a concurrent rename won the race on PostgreSQL
        raise TagNameTaken(detail=f"another tag is already called {name!r}") from None
    return tag_json(row)


def delete_tag(kernel: Kernel, tag_id: int) -> dict[str, Any]:
    """Delete a tag and take it off every file (missing ones too)."""
    with kernel.db.write() as conn:
        require_tags(conn, [tag_id], "tag_id")
        untagged = conn.execute(
            delete(tagged_photo).where(tagged_photo.c.tag_id == tag_id)
        ).rowcount
        conn.execute(delete(tags).where(tags.c.id == tag_id))
    return {"deleted": tag_id, "files": untagged or 0}


def counts_of(kernel: Kernel, file_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(file id, number of tags) of the files among ``file_ids`` that have any."""
    found: list[tuple[int, int]] = []
    with kernel.db.read() as conn:
        for start in range(0, len(file_ids), 500):
            chunk = list(file_ids[start : start + 500])
            rows = conn.execute(
                select(tag_counts.c.file_id, tag_counts.c.tag_count).where(
                    tag_counts.c.file_id.in_(chunk), tag_counts.c.tag_count > 0
                )
            )
            found += [(row.file_id, row.tag_count) for row in rows]
    return found
