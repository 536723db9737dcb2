"""Reading and writing ``photo_insights`` (blocking: callers run these in a thread).

``store`` is the one way an insight is written: in one transaction it sets the file's
other rows non-current and inserts the new one as current. Two writers racing on one
file (two processes on PostgreSQL) meet the partial unique index; the loser retries
once, now seeing the winner's row. Within a server, ``locks.FileLocks`` already
serialises work on one file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from kernel.db import Database

from .tables import photo_insights as t


@dataclass(frozen=True)
class NewInsight:
    library_id: int
    rel_path: str
    content_hash: str | None
    title: str
    summary: str
    backend: str
    model: str
    training_messages: str | None


def _of_file(library_id: int, rel_path: str) -> Any:
    return and_(t.c.library_id == library_id, t.c.rel_path == rel_path)


def store(db: Database, new: NewInsight) -> Any:
    """Insert ``new`` as the file's current insight; returns its row."""
    for attempt in (1, 2):
        try:
            with db.write() as conn:
                conn.execute(
                    update(t)
                    .where(_of_file(new.library_id, new.rel_path), t.c.is_current.is_(True))
                    .values(is_current=False)
                )
                inserted = conn.execute(
                    t.insert()
                    .values(
                        library_id=new.library_id,
                        rel_path=new.rel_path,
                        content_hash=new.content_hash,
                        title=new.title,
                        summary=new.summary,
                        backend=new.backend,
                        model=new.model,
                        is_current=True,
                        training_messages=new.training_messages,
                        created_at=time.time(),
                    )
                    .returning(*t.c)
                ).one()
                return inserted
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def current(db: Database, library_id: int, rel_path: str) -> Any | None:
    with db.read() as conn:
        return conn.execute(
            select(t).where(_of_file(library_id, rel_path), t.c.is_current.is_(True))
        ).first()


def history(db: Database, library_id: int, rel_path: str) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(t)
                .where(_of_file(library_id, rel_path))
                .order_by(t.c.created_at.desc(), t.c.id.desc())
            )
        )


def by_id(db: Database, insight_id: int) -> Any | None:
    with db.read() as conn:
        return conn.execute(select(t).where(t.c.id == insight_id)).first()


def rate(db: Database, insight_id: int, rating: str | None) -> Any | None:
    """Set (or clear, with None) an insight's rating; None when there is no such row."""
    with db.write() as conn:
        return conn.execute(
            update(t)
            .where(t.c.id == insight_id)
            .values(rating=rating, rated_at=None if rating is None else time.time())
            .returning(*t.c)
        ).first()


def replace_transcript(db: Database, insight_id: int, training_messages: str) -> bool:
    """Write a continued transcript back to its row (chat's append mode)."""
    with db.write() as conn:
        result = conn.execute(
            update(t).where(t.c.id == insight_id).values(training_messages=training_messages)
        )
        return result.rowcount == 1


def for_export(db: Database, *, rated_only: bool, batch: int = 200) -> Iterator[Any]:
    """Insights with a transcript (only rated ones with ``rated_only``), oldest first,
    read in batches so an export of thousands of transcripts stays small in memory."""
    last = 0
    while True:
        condition = and_(t.c.id > last, t.c.training_messages.is_not(None))
        if rated_only:
            condition = and_(condition, t.c.rating.is_not(None))
        with db.read() as conn:
            rows = list(conn.execute(select(t).where(condition).order_by(t.c.id).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id
