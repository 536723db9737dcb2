"""The favorites table and the database work on it. Every function is synchronous; routes
and tools run them in a worker thread.

A favourite belongs to one user and one kernel file row: another user never sees it, and a
file that goes missing keeps it until it comes back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
)

from kernel.core import Kernel
from kernel.db import Database
from kernel.index import FILE_COLUMNS
from kernel.libraries import PathRefused
from kernel.tables import files, users
from kernel.types import FileRef, InvalidParameter

metadata = MetaData()
favorites = Table(
    "favorites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("file_id", Integer, ForeignKey(files.c.id, ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
)


def indexed_file(
    kernel: Kernel, library: str | int | None, path: str | None, *, present: bool = True
) -> FileRef:
    """The index row of a client path. ``present=False`` also finds a file that is missing
    from disk right now (so its favourite can still be removed)."""
    if not path:
        raise InvalidParameter("path", "the path of a file is required")
    resolved = kernel.libraries.resolve(library, path, must_exist=present)
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder; only files can be favourites")
    ref = kernel.index.get(resolved.library.id, resolved.rel_path, present_only=present)
    if ref is None:
        raise PathRefused(404, f"{resolved.rel_path} is not in the index (yet)")
    return ref


def add(kernel: Kernel, user_id: int, file_id: int) -> bool:
    """Mark a favourite; True when it was not one already."""
    stmt = (
        kernel.db.insert(favorites)
        .values(user_id=user_id, file_id=file_id, created_at=time.time())
        .on_conflict_do_nothing()
        .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
    )
    with kernel.db.write() as conn:
        return conn.execute(stmt).rowcount > 0


def remove(kernel: Kernel, user_id: int, file_id: int) -> bool:
    with kernel.db.write() as conn:
        result = conn.execute(
            delete(favorites).where(favorites.c.user_id == user_id, favorites.c.file_id == file_id)
        )
        return result.rowcount > 0


@dataclass(frozen=True)
class FavoritePage:
    """A page of one user's favourites, newest first, and how many there are in all."""

    files: list[FileRef]
    favorited_at: dict[int, float]  # file id -> when it became a favourite (Unix seconds)
    total: int


def listing(
    kernel: Kernel, user_id: int, library_id: int | None, limit: int | None, offset: int
) -> FavoritePage:
    """The user's favourite present files, newest first (the catalog gives them their JSON)."""
    where = [
        favorites.c.user_id == user_id,
        files.c.status == "present",
        files.c.library_id.in_([library.id for library in kernel.libraries]),
    ]
    if library_id is not None:
        where.append(files.c.library_id == library_id)
    joined = favorites.join(files, files.c.id == favorites.c.file_id)
    page = (
        select(*FILE_COLUMNS, favorites.c.created_at.label("favorited_at"))
        .select_from(joined)
        .where(*where)
        .order_by(favorites.c.created_at.desc(), favorites.c.id.desc())
        .offset(offset)
    )
    if limit is not None:
        page = page.limit(limit)
    with kernel.db.read() as conn:
        rows = conn.execute(page).all()
        total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
    return FavoritePage(
        kernel.index.refs(rows), {row.id: row.favorited_at for row in rows}, int(total)
    )


def flags(
    kernel: Kernel, user_id: int | None, refs: Sequence[FileRef]
) -> dict[int, dict[str, Any]]:
    """``{"favorite": bool}`` for every file of a page, for this user, in one query."""
    extras: dict[int, dict[str, Any]] = {ref.id: {"favorite": False} for ref in refs}
    if user_id is None:
        return extras
    db = kernel.db
    values = {"user_id": user_id, "ids": db.ids_value(extras)}
    with db.read() as conn:
        chosen = conn.execute(db.prepared(_chosen_of_page), values).scalars().all()
    for file_id in chosen:
        extras[file_id]["favorite"] = True
    return extras


def counts_of(kernel: Kernel, files_: Sequence[FileRef]) -> list[tuple[int, int]]:
    """(file id, number of users) of the files among ``files_`` someone made a favourite."""
    ids = [ref.id for ref in files_]
    found: list[tuple[int, int]] = []
    with kernel.db.read() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(favorites.c.file_id, func.count())
                .where(favorites.c.file_id.in_(ids[start : start + 500]))
                .group_by(favorites.c.file_id)
            )
            found += [(file_id, int(n)) for file_id, n in rows]
    return found


def _chosen_of_page(db: Database) -> Select[Any]:
    """The files bound to ``ids`` that the user bound to ``user_id`` has chosen."""
    return select(favorites.c.file_id).where(
        favorites.c.user_id == bindparam("user_id"), db.among(favorites.c.file_id, db.ids_param())
    )
