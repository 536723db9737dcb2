"""The ``hls_jobs`` table: the plugin's queue, its progress and its memory of failures.

One row per video that was asked for or pre-generated: ``queued`` → ``running`` →
``done`` | ``failed`` (with ffmpeg's last error lines), the source size and mtime the
rendition was made from, and ``out_key``, the folder of the current run's output. Every
state change is a compare-and-set on (file_id, status, out_key), so a run that was
superseded (its source changed, its file was removed, the server restarted) can never
mark a newer job done; it just deletes its own output.

``priority`` 1 marks a job a client asked for: those run first, newest request first
(the video the user is looking at now), and may suspend a pre-generation run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    or_,
    select,
    update,
)

from kernel.db import Database
from kernel.index import FILE_COLUMNS
from kernel.tables import file_key_column, files

metadata = MetaData()
hls_jobs = Table(
    "hls_jobs",
    metadata,
    file_key_column(),
    Column("status", String(8), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("source_size", BigInteger, nullable=False),
    Column("source_mtime_ns", BigInteger, nullable=False),
    Column("mode", String(16)),
    Column("out_key", String(32)),
    Column("duration", Float),
    Column("processed", Float, nullable=False),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("owner", String(200)),
    Column("pid", Integer),
    Column("queued_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
BACKGROUND, REQUESTED = 0, 1
J = hls_jobs.c


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``hls_jobs``."""

    file_id: int
    status: str
    priority: int
    source_size: int
    source_mtime_ns: int
    mode: str | None
    out_key: str | None
    duration: float | None
    processed: float
    error: str | None
    attempts: int
    owner: str | None
    pid: int | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float

    def same_source(self, size: int, mtime_ns: int) -> bool:
        return self.source_size == size and self.source_mtime_ns == mtime_ns


def _job(row: Any) -> Job:
    return Job(*(getattr(row, name) for name in Job.__slots__))


def get(db: Database, file_id: int) -> Job | None:
    with db.read() as conn:
        row = conn.execute(select(hls_jobs).where(J.file_id == file_id)).first()
    return _job(row) if row else None


def _fresh(size: int, mtime_ns: int, priority: int, now: float) -> dict[str, Any]:
    """The columns of a job that has just been queued (nothing of an earlier run)."""
    return {
        "status": QUEUED,
        "priority": priority,
        "source_size": size,
        "source_mtime_ns": mtime_ns,
        "mode": None,
        "out_key": None,
        "duration": None,
        "processed": 0.0,
        "error": None,
        "owner": None,
        "pid": None,
        "queued_at": now,
        "started_at": None,
        "finished_at": None,
        "updated_at": now,
    }


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What ``enqueue`` did: the job as it is now, whether this call queued it, and the
    rendition of older content it replaced (its run to stop, its output to delete)."""

    job: Job
    created: bool
    replaced: Job | None = None


def enqueue(db: Database, file_id: int, size: int, mtime_ns: int, *, requested: bool) -> Enqueued:
    """Queue a rendition of the file's current content, or report the job it already has.

    A job for the same content (queued, running, done, or failed — a broken file is not
    retried until it changes) is left as it is; a client asking for a queued
    pre-generation job moves it to the front, which counts as queueing it now (whether the
    scanner's hook or the client's call got there first is a race the client must not see).
    A job made from other content is replaced.
    """
    found = get(db, file_id)  # the common case (a player reloading) needs no write
    if found is not None and found.same_source(size, mtime_ns) and not _to_front(found, requested):
        return Enqueued(found, created=False)
    now = time.time()
    priority = REQUESTED if requested else BACKGROUND
    with db.write() as conn:
        row = conn.execute(select(hls_jobs).where(J.file_id == file_id)).first()
        old = _job(row) if row else None
        if old is None:
            values = {**_fresh(size, mtime_ns, priority, now), "attempts": 0}
            conn.execute(hls_jobs.insert().values(file_id=file_id, **values))
            return Enqueued(_as_job({"file_id": file_id, **values}), created=True)
        if old.status == QUEUED or old.same_source(size, mtime_ns):
            changes: dict[str, Any] = {}
            if old.status == QUEUED and not old.same_source(size, mtime_ns):
                changes.update(source_size=size, source_mtime_ns=mtime_ns)
            promoted = _to_front(old, requested)
            if promoted:
                changes.update(priority=REQUESTED, queued_at=now)
            if changes:
                conn.execute(update(hls_jobs).where(J.file_id == file_id).values(**changes))
                old = _replace(old, changes)
            return Enqueued(old, created=promoted)
        values = _fresh(size, mtime_ns, priority, now)
        conn.execute(update(hls_jobs).where(J.file_id == file_id).values(**values))
        return Enqueued(_replace(old, values), created=True, replaced=old)


def _to_front(job: Job, requested: bool) -> bool:
    """Does a client's request move this job ahead of pre-generation?"""
    return requested and job.status == QUEUED and job.priority < REQUESTED


def _as_job(values: dict[str, Any]) -> Job:
    return Job(**{name: values[name] for name in Job.__slots__})


def _replace(job: Job, changes: dict[str, Any]) -> Job:
    return _as_job({**{name: getattr(job, name) for name in Job.__slots__}, **changes})


def claim(db: Database, file_id: int, key: str, owner: str) -> bool:
    """Take a queued job for a run writing into folder ``key``; False if someone else did."""
    now = time.time()
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs)
            .where(J.file_id == file_id, J.status == QUEUED)
            .values(
                status=RUNNING,
                out_key=key,
                owner=owner,
                pid=None,
                processed=0.0,
                error=None,
                attempts=J.attempts + 1,
                started_at=now,
                finished_at=None,
                updated_at=now,
            )
        )
    return result.rowcount == 1


def _running(file_id: int, key: str) -> Any:
    return (J.file_id == file_id) & (J.status == RUNNING) & (J.out_key == key)


def started(db: Database, file_id: int, key: str, **values: Any) -> bool:
    """Record what a run found out (mode, duration, source size/mtime, ffmpeg's pid)."""
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs).where(_running(file_id, key)).values(updated_at=time.time(), **values)
        )
    return result.rowcount == 1


def progress(db: Database, file_id: int, key: str, processed: float) -> None:
    with db.write() as conn:
        conn.execute(
            update(hls_jobs)
            .where(_running(file_id, key))
            .values(processed=processed, updated_at=time.time())
        )


def finish(db: Database, file_id: int, key: str, error: str | None) -> bool:
    """End a run: ``done``, or ``failed`` with ``error``. False when the run was superseded."""
    now = time.time()
    values: dict[str, Any] = {"status": FAILED if error else DONE, "error": error, "pid": None}
    if not error:
        values["processed"] = func.coalesce(J.duration, J.processed)
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs)
            .where(_running(file_id, key))
            .values(finished_at=now, updated_at=now, **values)
        )
    return result.rowcount == 1


def requeue(db: Database, file_id: int, key: str | None, owner: str | None = None) -> bool:
    """Put a run back in the queue (shutdown, crash, source changed mid-run); its output
    is the caller's to delete. With ``owner``, only if that process still owns it."""
    now = time.time()
    where = (J.file_id == file_id) & (J.status == RUNNING)
    where &= J.out_key.is_(None) if key is None else J.out_key == key
    if owner is not None:
        where &= J.owner == owner
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs)
            .where(where)
            .values(
                status=QUEUED,
                out_key=None,
                owner=None,
                pid=None,
                processed=0.0,
                started_at=None,
                updated_at=now,
            )
        )
    return result.rowcount == 1


def reset(db: Database, job: Job, size: int, mtime_ns: int, *, requested: bool) -> bool:
    """Queue a finished job again (its output vanished); False if the row moved on."""
    now = time.time()
    priority = REQUESTED if requested else BACKGROUND
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs)
            .where(J.file_id == job.file_id, J.status == job.status, J.out_key == job.out_key)
            .values(**_fresh(size, mtime_ns, priority, now))
        )
    return result.rowcount == 1


def forget(db: Database, file_ids: Sequence[int]) -> list[Job]:
    """Delete the rows of changed or removed files; returns them (to stop and clean up)."""
    if not file_ids:
        return []
    with db.write() as conn:
        rows = conn.execute(select(hls_jobs).where(J.file_id.in_(list(file_ids)))).all()
        conn.execute(delete(hls_jobs).where(J.file_id.in_(list(file_ids))))
    return [_job(row) for row in rows]


def next_queued(db: Database, *, requested: bool, limit: int = 4) -> list[int]:
    """Queued jobs to start next: asked-for ones newest first, pre-generation oldest first."""
    query = select(J.file_id).where(J.status == QUEUED)
    if requested:
        query = query.where(J.priority >= REQUESTED).order_by(J.queued_at.desc(), J.file_id)
    else:
        query = query.where(J.priority < REQUESTED).order_by(J.queued_at, J.file_id)
    with db.read() as conn:
        return list(conn.execute(query.limit(limit)).scalars())


def backlog(db: Database, limit: int) -> list[Any]:
    """Present, hashed videos without a job (an anti-join), oldest first."""
    query = (
        select(*FILE_COLUMNS)
        .select_from(files.outerjoin(hls_jobs, J.file_id == files.c.id))
        .where(
            J.file_id.is_(None),
            files.c.status == "present",
            files.c.media_type == "video",
            files.c.content_hash.is_not(None),
        )
        .order_by(files.c.id)
        .limit(limit)
    )
    with db.read() as conn:
        return list(conn.execute(query).all())


def queue_many(db: Database, rows: Iterable[Any]) -> int:
    """Queue pre-generation jobs for file rows (``backlog``'s); returns how many."""
    now = time.time()
    values = [
        {"file_id": r.id, "attempts": 0, **_fresh(r.size, r.mtime_ns, BACKGROUND, now)}
        for r in rows
    ]
    if not values:
        return 0
    with db.write() as conn:
        conn.execute(db.insert(hls_jobs).values(values).on_conflict_do_nothing())
    return len(values)


def stale(db: Database, limit: int) -> list[int]:
    """Finished jobs whose file changed or vanished since (missed while the plugin was
    off, or while another process ran the scan)."""
    query = (
        select(J.file_id)
        .join(files, files.c.id == J.file_id)
        .where(
            J.status.in_([DONE, FAILED]),
            or_(
                J.source_size != files.c.size,
                J.source_mtime_ns != files.c.mtime_ns,
                files.c.status != "present",
            ),
        )
        .limit(limit)
    )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


def running(db: Database) -> list[Job]:
    with db.read() as conn:
        return [_job(r) for r in conn.execute(select(hls_jobs).where(J.status == RUNNING))]


def touch(db: Database, owner: str) -> int:
    """Renew the lease of every run ``owner`` has (its ``updated_at``); how many it has."""
    with db.write() as conn:
        result = conn.execute(
            update(hls_jobs)
            .where(J.status == RUNNING, J.owner == owner)
            .values(updated_at=time.time())
        )
    return int(result.rowcount or 0)


def owned_by(db: Database, owner: str) -> list[Job]:
    with db.read() as conn:
        rows = conn.execute(select(hls_jobs).where(J.status == RUNNING, J.owner == owner))
        return [_job(r) for r in rows]


def output_keys(db: Database) -> set[tuple[int, str]]:
    """(file_id, out_key) of every run whose output must be kept."""
    with db.read() as conn:
        rows = conn.execute(select(J.file_id, J.out_key).where(J.out_key.is_not(None))).all()
    return {(r.file_id, r.out_key) for r in rows}


def counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(select(J.status, func.count()).group_by(J.status)).all()
    return {status: int(n) for status, n in rows}
