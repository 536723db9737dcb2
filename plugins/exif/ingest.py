"""Getting every file's metadata into ``image_exif``: on ``on_hashed`` for files that
arrive while the server runs, and from the backlog (an anti-join) for everything else.

Extraction runs in the killable worker processes of ``pool`` with a time limit per
file, so a file that makes a parser loop or crash costs its time limit and a ``failed``
row with the reason, never a stuck or dead scan. A failed row carries the content hash
it failed on and the backlog skips it; new content (a new hash) is tried again.

Threads: a worker thread waits for each extraction (the pool call blocks). They come
from a small executor of our own, sized to the pool, so files queued behind the pool
wait as asyncio futures instead of occupying the threads the rest of the server uses
for its database work.

Everything with state (the worker processes, the threads, the group writer) is one
``Ingester``, made by the plugin instance of a kernel and closed with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, select

from kernel.index import FILE_COLUMNS
from kernel.tables import files
from kernel.types import FileRef

from . import pool, store
from .model import ExtractError
from .tables import image_exif

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)
QUEUE = "exif"  # the claims queue (several workers over PostgreSQL)


class GroupWriter:
    """Group commit for ``on_hashed``: the scanner fires it for many files at once, and
    instead of one transaction per file, whoever gets the lock writes every row that
    has queued up meanwhile. Each caller returns once its own row is committed."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.pending: list[dict[str, Any]] = []
        self.lock = asyncio.Lock()

    async def write(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        async with self.lock:
            if not self.pending:
                return  # an earlier holder of the lock wrote ours too
            rows, self.pending = self.pending, []
            await asyncio.to_thread(store.upsert, self.kernel, rows)


def backlog_query(limit: int | None) -> Any:
    """Present, hashed files without a row for their current content (the anti-join)."""
    done = exists().where(
        and_(
            image_exif.c.file_id == files.c.id,
            image_exif.c.content_hash == files.c.content_hash,
        )
    )
    return (
        select(*FILE_COLUMNS)
        .where(
            files.c.status == "present",
            files.c.content_hash.isnot(None),
            files.c.error.is_(None),
            ~done,
        )
        .order_by(files.c.id)
        .limit(limit)
    )


def backlog(kernel: Kernel, limit: int) -> list[FileRef]:
    """The next ``limit`` files to read; on PostgreSQL, leased to this process."""
    query = backlog_query(None)
    return kernel.index.refs(kernel.claims.take(QUEUE, query, limit))


class Ingester:
    """One kernel's extraction: its worker processes, the threads that wait on them,
    and the group writer. ``close`` stops the workers and the threads."""

    def __init__(self, kernel: Kernel, timeout: float, batch: int) -> None:
        self.kernel = kernel
        self.timeout = timeout
        self.batch = batch
        self.workers = pool.Pool(pool.MAX_WORKERS)
        self.executor = ThreadPoolExecutor(pool.MAX_WORKERS, thread_name_prefix="imageapi-exif")
        self.writer = GroupWriter(kernel)

    def extract_row(self, ref: FileRef, content_hash: str) -> dict[str, Any] | None:
        """One file's row: its metadata, or ``failed`` with the reason. None when the
        file is gone (the scanner will mark it missing; nothing to record against its
        content)."""
        try:
            data = self.workers.extract(
                ref.abs_path, ref.media_type, ref.mtime_ns / 1e9, self.timeout
            )
        except ExtractError as exc:
            if not ref.abs_path.is_file():
                return None
            log.warning("exif: %s: %s", ref.rel_path, exc)
            return store.row_values(ref.id, content_hash, None, str(exc))
        except Exception as exc:  # a bug here must not stop ingest: record it, move on
            log.exception("exif: %s: unexpected failure", ref.rel_path)
            return store.row_values(ref.id, content_hash, None, f"unexpected error: {exc!r}")
        return store.row_values(ref.id, content_hash, data)

    async def extract_async(self, ref: FileRef, content_hash: str) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.extract_row, ref, content_hash)

    async def on_hashed(self, file: FileRef) -> None:
        assert file.content_hash is not None
        claims = self.kernel.claims
        if claims.shared:  # another worker may be reading it from the backlog already
            query = backlog_query(None)
            if await asyncio.to_thread(claims.take_one, QUEUE, query, file.id) is None:
                return
        try:
            row = await self.extract_async(file, file.content_hash)
            if row is not None:
                await self.writer.write(row)
        finally:
            if claims.shared:
                await asyncio.to_thread(claims.release, QUEUE, [file.id])

    async def drain(self, limit: int) -> int:
        """Extract up to ``limit`` backlog files, as many at a time as the pool has
        workers, committing every ``batch`` rows; returns how many files were processed.

        Stops starting new batches after half the kernel's hook timeout, so a backlog of
        slow files is worked off over several ticks instead of being cancelled mid-way.
        """
        kernel = self.kernel
        refs: Sequence[FileRef] = await asyncio.to_thread(backlog, kernel, limit)
        deadline = time.monotonic() + kernel.config.kernel.hook_timeout_seconds / 2
        done = 0
        for start in range(0, len(refs), self.batch):
            if done and time.monotonic() > deadline:
                break
            chunk = refs[start : start + self.batch]
            rows = await asyncio.gather(
                *(self.extract_async(ref, ref.content_hash or "") for ref in chunk)
            )
            await asyncio.to_thread(store.upsert, kernel, [r for r in rows if r is not None])
            await asyncio.to_thread(kernel.claims.release, QUEUE, [ref.id for ref in chunk])
            done += len(chunk)
        if len(refs) > done:  # stopped by the deadline: let anybody take the rest
            await asyncio.to_thread(kernel.claims.release, QUEUE, [r.id for r in refs[done:]])
        return done

    def close(self) -> None:
        """Stop the idle workers now and the busy ones as their file finishes; files
        still queued are dropped (their rows come from the backlog next time)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.workers.shutdown()
