"""The ``thumbnails`` state table: the plugin's queue and its memory of failures.

One row per file that was attempted: the content it was made from (``content_hash``,
or the size and mtime when the file was rendered on demand before it was hashed),
``done`` or ``failed`` with the reason, the renditions made (``sizes``, tokens such as
``thumb.jpg@200``) and how many renders were attempted. The backlog is every present,
hashed file without a row for its current content, or with a ``done`` row missing a
rendition the settings ask for; a ``failed`` row for the current content is left alone
until the file changes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    false,
    func,
    or_,
    select,
)

from kernel.db import Database
from kernel.index import FILE_COLUMNS
from kernel.tables import file_key_column, files
from kernel.types import FileRef

metadata = MetaData()
thumbnails = Table(
    "thumbnails",
    metadata,
    file_key_column(),
    Column("content_hash", String(64)),
    Column("source_size", BigInteger, nullable=False),
    Column("source_mtime_ns", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),  # "done" | "failed"
    Column("error", Text),
    Column("sizes", Text, nullable=False),  # " thumb.jpg@200 gif.gif@200 "
    Column("attempts", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

DONE, FAILED = "done", "failed"


@dataclass(frozen=True, slots=True)
class State:
    """One row of the state table."""

    file_id: int
    content_hash: str | None
    source_size: int
    source_mtime_ns: int
    status: str
    error: str | None
    sizes: frozenset[str]
    attempts: int
    updated_at: float

    def same_source(self, ref: FileRef) -> bool:
        """Was this row made from the content ``ref`` has now?

        By hash when both are known; by size and mtime (what the scanner itself uses to
        notice a change) when the file was rendered before it was hashed.
        """
        if self.content_hash and ref.content_hash:
            return self.content_hash == ref.content_hash
        return self.source_size == ref.size and self.source_mtime_ns == ref.mtime_ns

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def _state(row: Any) -> State:
    return State(
        row.file_id,
        row.content_hash,
        row.source_size,
        row.source_mtime_ns,
        row.status,
        row.error,
        frozenset(row.sizes.split()),
        row.attempts,
        row.updated_at,
    )


def get(db: Database, file_id: int) -> State | None:
    with db.read() as conn:
        row = conn.execute(db.prepared(_state_of), {"file_id": file_id}).first()
    return _state(row) if row else None


def _state_of(db: Database) -> Select[Any]:
    return select(thumbnails).where(thumbnails.c.file_id == bindparam("file_id"))


@dataclass(frozen=True, slots=True)
class Record:
    """The outcome of one render job, waiting to be written.

    ``rendered=False`` records no render, only that a row made before the file was
    hashed (on request, or while the scan was still hashing) belongs to this hash.
    """

    ref: FileRef
    made: frozenset[str]
    error: str | None
    replace: bool = False  # a rebuild: forget renditions made before
    rendered: bool = True


def merge(old: State | None, record: Record, now: float) -> State | None:
    """The row after ``record``: renditions made earlier from the same content are kept
    (a WebP made on demand survives the JPEG made on ingest) unless it is a rebuild.
    None when there is nothing to write."""
    ref = record.ref
    same = old is not None and old.same_source(ref)
    if not record.rendered:
        if old is None or not same or old.content_hash or not ref.content_hash:
            return old
        return dataclasses.replace(old, content_hash=ref.content_hash)
    sizes = set(record.made)
    if same and old is not None and old.status == DONE and not record.replace:
        remade = {token.partition("@")[0] for token in sizes}  # one file per size.ext
        sizes |= {token for token in old.sizes if token.partition("@")[0] not in remade}
    return State(
        file_id=ref.id,
        content_hash=ref.content_hash or (old.content_hash if same and old else None),
        source_size=ref.size,
        source_mtime_ns=ref.mtime_ns,
        status=FAILED if record.error else DONE,
        error=record.error,
        sizes=frozenset(sizes),
        attempts=(old.attempts if old else 0) + 1,
        updated_at=now,
    )


def _values(state: State) -> dict[str, Any]:
    return {
        "file_id": state.file_id,
        "content_hash": state.content_hash,
        "source_size": state.source_size,
        "source_mtime_ns": state.source_mtime_ns,
        "status": state.status,
        "error": state.error,
        "sizes": " " + " ".join(sorted(state.sizes)) + " " if state.sizes else "",
        "attempts": state.attempts,
        "updated_at": state.updated_at,
    }


def record_many(db: Database, records: Sequence[Record]) -> list[State]:
    """Write many job outcomes in one transaction (one read, one upsert for the batch).

    Records are applied in order, so two for the same file merge as if written apart.
    Rows whose file row has gone (a foreign key refusal) are skipped.
    """
    now = time.time()
    ids = sorted({r.ref.id for r in records})
    with db.write() as conn:
        known: dict[int, State] = {}
        alive: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(select(thumbnails).where(thumbnails.c.file_id.in_(chunk)))
            known.update((row.file_id, _state(row)) for row in rows)
            alive.update(conn.execute(select(files.c.id).where(files.c.id.in_(chunk))).scalars())
        for record in records:
            merged = merge(known.get(record.ref.id), record, now)
            if merged is not None:
                known[record.ref.id] = merged
        states = [known[i] for i in ids if i in known]
        rows_out = [_values(state) for state in states if state.file_id in alive]
        if rows_out:
            conn.execute(db.upsert(thumbnails, "file_id"), rows_out)
    return states


def forget(db: Database, file_ids: Sequence[int]) -> None:
    """Drop rows, so the files go back into the backlog (changed or removed files)."""
    if not file_ids:
        return
    with db.write() as conn:
        conn.execute(delete(thumbnails).where(thumbnails.c.file_id.in_(list(file_ids))))


def _lacks_any(tokens: Sequence[str]) -> ColumnElement[bool]:
    if not tokens:
        return false()
    return or_(*(thumbnails.c.sizes.not_like(f"% {token} %") for token in tokens))


def backlog_query(tokens: Mapping[str, Sequence[str]]) -> Any:
    """Present, hashed files whose renditions are missing or were made from other content
    (unlimited; None when no media type has renditions made on ingest).

    ``tokens`` maps a media type to the renditions made on ingest for it; a media type
    with none is not in the backlog. An anti-join on the primary key: cheap even when
    every file is done.
    """
    kinds = [kind for kind, wanted in tokens.items() if wanted]
    if not kinds:
        return None
    t = thumbnails
    stale = or_(
        t.c.file_id.is_(None),
        t.c.content_hash.is_(None),
        t.c.content_hash != files.c.content_hash,
        and_(
            t.c.status == DONE,
            or_(*(and_(files.c.media_type == k, _lacks_any(tokens[k])) for k in kinds)),
        ),
    )
    return (
        select(*FILE_COLUMNS)
        .select_from(files.outerjoin(t, t.c.file_id == files.c.id))
        .where(
            files.c.status == "present",
            files.c.content_hash.is_not(None),
            files.c.media_type.in_(kinds),
            stale,
        )
        .order_by(files.c.id)
    )


def backlog(db: Database, limit: int, tokens: Mapping[str, Sequence[str]]) -> list[Any]:
    """The first ``limit`` files of ``backlog_query``."""
    query = backlog_query(tokens)
    if query is None:
        return []
    with db.read() as conn:
        return list(conn.execute(query.limit(limit)).all())


def rebuild_targets(db: Database, *, failed_only: bool) -> list[int]:
    """Ids of the present files a rebuild renders (only failed ones with ``failed_only``)."""
    query = select(files.c.id).where(files.c.status == "present").order_by(files.c.id)
    if failed_only:
        query = query.join(thumbnails, thumbnails.c.file_id == files.c.id).where(
            thumbnails.c.status == FAILED
        )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


def counts(db: Database) -> dict[str, int]:
    """Rows per status among present files, plus the present files with no row yet."""
    with db.read() as conn:
        rows = conn.execute(
            select(thumbnails.c.status, func.count())
            .join(files, files.c.id == thumbnails.c.file_id)
            .where(files.c.status == "present")
            .group_by(thumbnails.c.status)
        ).all()
        present = conn.execute(
            select(func.count()).select_from(files).where(files.c.status == "present")
        ).scalar_one()
    result = {status: int(n) for status, n in rows}
    result["none"] = int(present) - sum(result.values())
    return result


def failures(db: Database, limit: int = 1000) -> list[tuple[int, str, str]]:
    """(library_id, rel_path, reason) of failed present files, for ``status --failed``."""
    with db.read() as conn:
        rows = conn.execute(
            select(files.c.library_id, files.c.rel_path, thumbnails.c.error)
            .join(thumbnails, thumbnails.c.file_id == files.c.id)
            .where(thumbnails.c.status == FAILED, files.c.status == "present")
            .order_by(files.c.library_id, files.c.rel_path)
            .limit(limit)
        ).all()
    return [(r.library_id, r.rel_path, r.error or "") for r in rows]
