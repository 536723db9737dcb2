"""The render pool: a fixed set of threads, one job per file at a time, requests first.

Pillow, libheif, LibRaw and PyAV release the GIL while they decode, so one thread per
CPU keeps every core busy while the event loop stays free to answer requests. Jobs for
the same file are deduplicated (fifty clients asking for one missing thumbnail cause one
render) and serialised (two jobs never race on one file's state row). A client's
request jumps ahead of ingest work, and ingest hands over at most two jobs per thread
at a time, so a request waits for at most the renders already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.types import FileRef
from kernel.versioned import VersionedCache

from . import layout, store
from .budget import PixelBudget
from .heap import map_large_blocks, release_freed_memory
from .produce import produce
from .settings import ThumbnailSettings
from .writer import StateWriter

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)

INTERACTIVE, INGEST = 0, 1
COMMIT_WAIT = 30.0  # seconds a request waits for its state row; the file is there anyway
_STOP = -1
READY_KEPT = 8192  # (file, variant) pairs known rendered, per process
SAME_SOURCE = 0  # the version ``ready`` keeps its entries at: their key is the content
QUEUE = "thumbnails"  # the claims queue of ingest renders (PostgreSQL scale-out)


class Unrenderable(Exception):
    """The file cannot be rendered; the message is the reason stored for it."""


class PoolClosed(RuntimeError):
    """The server is stopping: the job was never started (the file renders next time)."""


class PriorityPool:
    """Worker threads taking jobs by priority, then in order of arrival."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, priority: int, future: Future[Any], fn: Callable[..., Any], *args: Any
    ) -> None:
        """Run ``fn(*args)`` on a worker and settle ``future`` with its result."""
        if self._closed:
            raise PoolClosed("the thumbnail pool is shut down")
        self._queue.put((priority, next(self._order), (future, fn, args)))

    def _work(self) -> None:
        while True:
            priority, _, (future, fn, args) = self._queue.get()
            if priority == _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # settle the future whatever happened
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel what has not started, let running jobs finish, stop the threads."""
        self._closed = True
        self._cancel_queued()
        for _ in self._threads:
            self._queue.put((_STOP, next(self._order), (None, None, ())))
        if wait:
            for thread in self._threads:
                thread.join()
            self._cancel_queued()  # anything that slipped in while closing

    def _cancel_queued(self) -> None:
        while True:
            try:
                priority, _, (future, _fn, _args) = self._queue.get_nowait()
            except queue.Empty:
                return
            if priority != _STOP:
                future.cancel()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended: the failure reason (None when all went well) and the
    renditions (tokens) the file has now."""

    error: str | None
    available: frozenset[str]


@dataclass(eq=False)
class Job:
    ref: FileRef
    variants: frozenset[layout.Variant]
    force: bool
    future: Future[Outcome] = field(default_factory=Future)

    def covers(self, ref: FileRef, variants: frozenset[layout.Variant], force: bool) -> bool:
        same = (self.ref.content_hash, self.ref.size, self.ref.mtime_ns) == (
            ref.content_hash,
            ref.size,
            ref.mtime_ns,
        )
        return same and variants <= self.variants and (self.force or not force)


class Thumbnailer:
    """Renders for one kernel: the pool, the jobs in flight, the slots ingest may use."""

    def __init__(
        self, kernel: Kernel, settings: ThumbnailSettings, storage: layout.Storage
    ) -> None:
        self.kernel = kernel
        self.settings = settings
        self.storage = storage
        self.workers = self.settings.workers or os.cpu_count() or 2
        map_large_blocks()  # before the render threads allocate anything: see heap.py
        self.pool = PriorityPool(self.workers, "imageapi-thumbnails")
        self.budget = PixelBudget(int(settings.render_budget_megapixels * 1_000_000))
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._slots: asyncio.Semaphore | None = None
        self.writer = StateWriter(kernel.db, on_commit=self.release)
        #: renditions known to be up to date (``serve``), kept by the file's content and
        #: the variant, not until the next commit: what makes one out of date is a change
        #: of the file, which is a new key, or its removal, which ``serve`` checks with a
        #: stat. Other clients' tag and favourite writes no longer send each thumbnail
        #: request to a worker thread for the state row.
        self.ready: VersionedCache[Path] = VersionedCache(READY_KEPT)

    # --- where things are ------------------------------------------------------------

    def path(self, ref: FileRef, v: layout.Variant) -> Path:
        return layout.path_for(self.storage, ref.library_id, ref.rel_path, v)

    def pregenerated(self, ref: FileRef) -> tuple[layout.Variant, ...]:
        return layout.pregenerated(self.settings, ref.media_type)

    def tokens(self) -> dict[str, list[str]]:
        """The renditions made on ingest, by media type (the backlog's definition)."""
        return {
            kind: [v.token for v in layout.pregenerated(self.settings, kind)]
            for kind in ("photo", "video")
        }

    # --- jobs ------------------------------------------------------------------------

    def ensure(
        self,
        ref: FileRef,
        variants: Iterable[layout.Variant],
        *,
        priority: int = INGEST,
        force: bool = False,
    ) -> Future[Outcome]:
        """Make sure ``variants`` of ``ref`` exist; the future settles when they do.

        Joins a job in flight that already covers them; otherwise queues a new one,
        started only when the file's previous job has finished.
        """
        wanted = frozenset(variants)
        with self._lock:
            current = self._jobs.get(ref.id)
            if current is not None and current.covers(ref, wanted, force):
                return current.future
            job = Job(ref, wanted, force)
            self._jobs[ref.id] = job
        job.future.add_done_callback(lambda _: self._forget(job))

        def start(_: object = None) -> None:
            try:
                self.pool.submit(priority, job.future, self._run, job, priority)
            except RuntimeError as exc:
                job.future.set_exception(exc)

        if current is None or current.future.done():
            start()
        else:
            current.future.add_done_callback(start)
        return job.future

    def _forget(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get(job.ref.id) is job:
                del self._jobs[job.ref.id]

    def current(self, file_id: int) -> store.State | None:
        """The file's state: an outcome not yet committed, else its row."""
        return self.writer.pending(file_id) or store.get(self.kernel.db, file_id)

    def _run(self, job: Job, priority: int) -> Outcome:
        """In a pool thread: check the state, render what is missing, hand over the row."""
        ref = job.ref
        wanted = job.variants
        state = None if job.force else self.current(ref.id)
        if state is not None and state.same_source(ref):
            if ref.content_hash and state.content_hash is None:  # made before hashing
                adopt = store.Record(ref, frozenset(), state.error, rendered=False)
                state = store.merge(state, adopt, time.time()) or state
                self.writer.put(adopt, state)
            present = state.sizes
            wanted = frozenset(
                v for v in wanted if v.token not in present or not self.path(ref, v).exists()
            )
            if not wanted or state.failed:
                return Outcome(state.error, present)
        started = time.perf_counter()
        try:
            made, error = produce(
                ref.abs_path,
                ref.media_type,
                sorted(wanted, key=lambda v: v.token),
                gif_frames=self.settings.gif_frames,
                gif_fps=self.settings.gif_fps,
                budget=self.budget,
                video_threads=1 if priority == INGEST else 0,  # the pool runs one per core
            )
        except Exception as exc:  # a decoder bug must not stop the batch: record it
            log.exception("thumbnails: unexpected error rendering %s", ref.abs_path)
            made, error = {}, f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            if ref.media_type == "video":
                release_freed_memory()
        for v, data in made.items():
            layout.write_atomic(self.path(ref, v), data)  # disk full: raised, not recorded
        record = store.Record(ref, frozenset(v.token for v in made), error, job.force)
        state = store.merge(state, record, time.time())
        assert state is not None  # a rendering record always makes a row
        committed = self.writer.put(record, state)
        if priority == INTERACTIVE:  # the client gets its answer once the row is in
            self.writer.wake()
            committed.wait(COMMIT_WAIT)
        log.debug(
            "thumbnails: %s %s in %.0f ms%s",
            ref.rel_path,
            ",".join(v.token for v in made) or "-",
            (time.perf_counter() - started) * 1000,
            f" (failed: {error})" if error else "",
        )
        return Outcome(error, state.sizes)

    # --- from the event loop ---------------------------------------------------------

    async def serve(self, ref: FileRef, v: layout.Variant) -> Path:
        """The path of an up-to-date rendition, rendering it now when it is missing.

        A failure recorded for the file's current content is answered from the state
        table without trying again; raises Unrenderable with the reason.
        """
        key = (ref.id, ref.size, ref.mtime_ns, ref.content_hash, v.token)
        made = self.ready.get(key, SAME_SOURCE)
        if made is not None and made.exists():
            return made  # known made for this content: no lookup, no thread hop
        path = self.path(ref, v)

        def look() -> tuple[bool, str | None]:
            state = self.current(ref.id)
            if state is not None and state.same_source(ref):
                if v.token in state.sizes and path.exists():
                    return True, None
                if state.failed:
                    return False, state.error or "rendering failed"
            return False, None

        ready, error = await asyncio.to_thread(look)
        if ready:
            self.ready.put(key, SAME_SOURCE, path)
            return path
        if error is not None:
            raise Unrenderable(error)
        outcome = await asyncio.wrap_future(self.ensure(ref, [v], priority=INTERACTIVE))
        if v.token in outcome.available and path.exists():
            return path
        raise Unrenderable(outcome.error or "rendering failed")

    def submit_if_idle(self, ref: FileRef, variants: Iterable[layout.Variant]) -> bool:
        """Queue ``ref`` only when a render thread would otherwise wait; never blocks.

        At the start of a scan nothing is hashed yet and the threads have nothing to do;
        a file rendered now is recognised by its size and mtime when its hash arrives,
        and not rendered again.
        """
        with self._lock:
            if len(self._jobs) >= self.workers:
                return False
        self.ensure(ref, variants, priority=INGEST)
        return True

    async def submit_bounded(self, ref: FileRef, variants: Iterable[layout.Variant]) -> None:
        """Queue ingest work for ``ref``, waiting while every thread has two jobs queued.

        Returns as soon as the job is accepted, so the scanner can hash the next files
        while this one renders.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers * 2)
        slots = self._slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        future = self.ensure(ref, variants, priority=INGEST)

        def settled(done: Future[Outcome]) -> None:
            if done.cancelled() or done.exception() is not None:
                self.release([ref.id])  # no row was recorded: let anybody try again
            if not done.cancelled() and not isinstance(done.exception(), PoolClosed | None):
                log.error(
                    "thumbnails: %s: %s", ref.rel_path, done.exception(), exc_info=done.exception()
                )
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to release
                loop.call_soon_threadsafe(slots.release)

        future.add_done_callback(settled)

    async def wait_idle(self) -> None:
        """Until every job in flight now has settled."""
        with self._lock:
            pending = [job.future for job in self._jobs.values()]
        if pending:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)
        await asyncio.to_thread(self.writer.flush)

    async def drain(self, limit: int, budget: float) -> int:
        """Render the backlog (up to ``limit`` files, stopping after ``budget`` seconds).

        On PostgreSQL, where other workers share the backlog, files are claimed a few at
        a time (as many as the pool takes at once) while the renders run: claiming the
        whole ``limit`` up front left the other workers idle until this one finished.
        """
        await self.wait_idle()
        query = store.backlog_query(self.tokens())
        if query is None:
            return 0
        shared = self.kernel.claims.shared
        chunk = min(limit, self.workers * 2) if shared else limit
        deadline = time.monotonic() + budget
        handed = 0
        while handed < limit and time.monotonic() <= deadline:
            rows = await asyncio.to_thread(
                self.kernel.claims.take, QUEUE, query, min(chunk, limit - handed)
            )
            refs = self.kernel.index.refs(rows)
            started = 0
            for ref in refs:
                if time.monotonic() > deadline:
                    break
                await self.submit_bounded(ref, self.pregenerated(ref))
                started += 1
            handed += started
            if started < len(refs):  # stopped by the deadline: let anybody take the rest
                await asyncio.to_thread(self.release, [r.id for r in refs[started:]])
            if not shared or not refs:  # SQLite: one query, as the claims filter nothing
                break
        await self.wait_idle()
        return handed

    # --- claims (several workers over PostgreSQL) ---------------------------------------

    def claim(self, ref: FileRef) -> bool:
        """Lease ``ref``'s ingest render to this process: True when it is still in the
        backlog and nobody else holds it (always True on SQLite, where nothing is claimed)."""
        claims = self.kernel.claims
        if not claims.shared:
            return True
        query = store.backlog_query(self.tokens())
        return query is not None and claims.take_one(QUEUE, query, ref.id) is not None

    def release(self, file_ids: list[int]) -> None:
        """Give back the leases of files whose rows are committed (or failed to render)."""
        self.kernel.claims.release(QUEUE, file_ids)

    def close(self) -> None:
        """Finish the renders under way, commit their rows, stop the threads."""
        self.pool.shutdown(wait=True)
        self.writer.close()
