"""The file index: the ``files`` table and the small set of operations on it.

Rows are keyed by (library_id, rel_path). A file that vanishes is marked ``missing``
rather than deleted, so user data keyed to the row (tags, favorites) survives a
disconnected drive and comes back with the file.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, Select, and_, bindparam, select, update

from kernel.db import Database
from kernel.libraries import Libraries
from kernel.tables import files
from kernel.types import FileRef


class Stat(NamedTuple):
    """What the scanner learnt about a path on disk (a tuple: 100,000 of them per scan)."""

    rel_path: str
    size: int
    mtime_ns: int
    media_type: str


def split_rel_path(rel_path: str) -> tuple[str, str]:
    """(parent_dir, name) of a library-relative path."""
    parent, _, name = rel_path.rpartition("/")
    return parent, name


def under_folder(rel_dir: str, recursive: bool) -> Any:
    """WHERE clause for the files in a folder (or below it): index range scans only."""
    if not recursive:
        return files.c.parent_dir == rel_dir
    if not rel_dir:
        return files.c.id.isnot(None)
    # "a/b/" <= rel_path < "a/b0": everything under a/b/ ("0" follows "/" in byte order)
    return and_(files.c.rel_path >= rel_dir + "/", files.c.rel_path < rel_dir + "0")


def listed_in(library_id: int, rel_dir: str, recursive: bool) -> list[Any]:
    """WHERE clauses for the files a listing shows: present, not failed, in the folder
    (or below it). ``ix_files_listed`` covers exactly these columns."""
    return [
        files.c.library_id == library_id,
        files.c.status == "present",
        files.c.error.is_(None),
        under_folder(rel_dir, recursive),
    ]


def insert_values(library_id: int, stat: Stat, now: float) -> dict[str, Any]:
    """The ``files`` row of a path found on disk with no row yet."""
    parent, name = split_rel_path(stat.rel_path)
    return {
        "library_id": library_id,
        "rel_path": stat.rel_path,
        "parent_dir": parent,
        "name": name,
        "size": stat.size,
        "mtime_ns": stat.mtime_ns,
        "media_type": stat.media_type,
        "status": "present",
        "discovered_at": now,
        "updated_at": now,
    }


def update_values(stat: Stat, changed: bool, now: float) -> dict[str, Any]:
    """What a row found on disk again is set to: present, with the file's stat; a file
    that ``changed`` (size or mtime) loses its hash and error, to be hashed again."""
    values: dict[str, Any] = {
        "status": "present",
        "missing_since": None,
        "updated_at": now,
        "size": stat.size,
        "mtime_ns": stat.mtime_ns,
        "media_type": stat.media_type,
    }
    if changed:
        values.update(content_hash=None, hashed_at=None, error=None)
    return values


FILE_COLUMNS = (
    files.c.id,
    files.c.library_id,
    files.c.rel_path,
    files.c.size,
    files.c.mtime_ns,
    files.c.media_type,
    files.c.content_hash,
)


def _ref(row: Any, root: Path) -> FileRef:
    return FileRef(
        row.id, row.library_id, row.rel_path, root, row.size, row.mtime_ns, row.media_type,
        row.content_hash,
    )  # fmt: skip


class FileIndex:
    """Reads and writes of ``files``; turns rows into ``FileRef`` for plugins."""

    def __init__(self, db: Database, libraries: Libraries) -> None:
        self.db = db
        self.libraries = libraries

    def ref(self, row: Row[Any] | Any) -> FileRef:
        return _ref(row, self.libraries.by_id(row.library_id).root)

    def refs(self, rows: Iterable[Any]) -> list[FileRef]:
        """Rows (with ``FILE_COLUMNS``) of known libraries as ``FileRef``s, in order."""
        roots = {lib.id: lib.root for lib in self.libraries}
        rows = list(rows)
        fields = getattr(rows[0], "_fields", None) if rows else None
        if not fields:
            return [_ref(row, roots[row.library_id]) for row in rows if row.library_id in roots]
        # Thousands of rows (memories): pick the columns by position, not by name.
        pick = itemgetter(*(fields.index(c.name) for c in FILE_COLUMNS))
        found = []
        for row in rows:
            id_, library_id, rel_path, size, mtime_ns, media_type, content_hash = pick(row)
            root = roots.get(library_id)
            if root is not None:
                found.append(
                    FileRef(id_, library_id, rel_path, root, size, mtime_ns, media_type,
                            content_hash)
                )  # fmt: skip
        return found

    def get(self, library_id: int, rel_path: str, *, present_only: bool = True) -> FileRef | None:
        statement = self.db.prepared(_present_by_path if present_only else _any_by_path)
        with self.db.read() as conn:
            row = conn.execute(statement, {"library_id": library_id, "rel_path": rel_path}).first()
        return self.ref(row) if row else None

    def unchanged(self, ref: FileRef) -> bool:
        """Whether ``ref``, kept from before some commit, is still the present row: read by
        primary key on the caller's thread (``Database.row_now``), so a request holding a
        kept row need not go to a worker thread each time other clients write. False when
        it cannot tell (PostgreSQL)."""
        now = self.db.row_now(FILE_COLUMNS, ref.id, "status = 'present'")
        kept = (ref.id, ref.library_id, ref.rel_path, ref.size, ref.mtime_ns, ref.media_type,
                ref.content_hash)  # fmt: skip
        return now == kept

    def rows_of(self, library_id: int, paths: list[str] | None = None) -> dict[str, tuple]:
        """rel_path → (rel_path, id, size, mtime_ns, status) of a library's rows (or of those
        of ``paths``), read with the raw driver cursor: SQLAlchemy rows cost more than a
        scan's walk itself at 100,000 files."""
        sql = "SELECT rel_path, id, size, mtime_ns, status FROM files WHERE library_id = {p}"
        with self.db.read() as conn:
            marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            cursor = conn.connection.cursor()
            try:
                if paths is None:
                    cursor.execute(sql.format(p=marker), (library_id,))
                    return {row[0]: row for row in cursor.fetchall()}
                known: dict[str, tuple] = {}
                for start in range(0, len(paths), 500):
                    chunk = paths[start : start + 500]
                    in_list = ", ".join([marker] * len(chunk))
                    cursor.execute(
                        sql.format(p=marker) + f" AND rel_path IN ({in_list})", (library_id, *chunk)
                    )
                    known.update((row[0], row) for row in cursor.fetchall())
                return known
            finally:
                cursor.close()

    def get_many(self, ids: Sequence[int]) -> list[FileRef]:
        if not ids:
            return []
        with self.db.read() as conn:
            rows = self.rows_by_id(conn, ids)
        return self.refs(rows)

    def rows_by_id(self, conn: Connection, ids: Sequence[int]) -> list[Row[Any]]:
        """The ``FILE_COLUMNS`` of these files (any order), through one prepared statement."""
        statement = self.db.prepared(_rows_by_id)
        return conn.execute(statement, {"ids": self.db.ids_value(ids)}).all()

    def upsert(self, conn: Connection, library_id: int, stat: Stat) -> tuple[int, str]:
        """Insert or refresh one row; returns (id, "new" | "changed" | "returned" | "same")."""
        now = time.time()
        row = conn.execute(
            select(files.c.id, files.c.size, files.c.mtime_ns, files.c.status).where(
                files.c.library_id == library_id, files.c.rel_path == stat.rel_path
            )
        ).first()
        if row is None:
            insert = files.insert().values(**insert_values(library_id, stat, now))
            return int(conn.execute(insert).inserted_primary_key[0]), "new"
        changed = row.size != stat.size or row.mtime_ns != stat.mtime_ns
        if not changed and row.status == "present":
            return row.id, "same"
        values = update_values(stat, changed, now)
        conn.execute(update(files).where(files.c.id == row.id).values(**values))
        return row.id, "changed" if changed else "returned"

    def mark_missing(self, conn: Connection, ids: Sequence[int]) -> None:
        now = time.time()
        conn.execute(
            update(files)
            .where(self.db.among(files.c.id, ids), files.c.status == "present")
            .values(status="missing", missing_since=now, updated_at=now)
        )

    @staticmethod
    def unhashed_query() -> Any:
        """Present files still waiting for a content hash (the hashing backlog), unlimited."""
        return (
            select(*FILE_COLUMNS)
            .where(
                files.c.status == "present",
                files.c.content_hash.is_(None),
                files.c.error.is_(None),
            )
            .order_by(files.c.id)
        )


def _rows_by_id(db: Database) -> Select[Any]:
    return select(*FILE_COLUMNS).where(db.among(files.c.id, db.ids_param()))


def _any_by_path(db: Database) -> Select[Any]:
    return select(*FILE_COLUMNS).where(
        files.c.library_id == bindparam("library_id"), files.c.rel_path == bindparam("rel_path")
    )


def _present_by_path(db: Database) -> Select[Any]:
    return _any_by_path(db).where(files.c.status == "present")
