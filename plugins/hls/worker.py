"""The scheduler: which job runs when, crash recovery, and stopping stale runs.

One ``HlsService`` per kernel. Its loop (started by ``on_startup``) wakes when a job is
queued or a run ends, and every ``POLL_SECONDS`` for jobs queued by another process.
At most ``max_concurrent`` ffmpeg processes compute at once; a job a client asked for
suspends (SIGSTOP) the most recent pre-generation run when all slots are busy, and that
run continues (SIGCONT) when a slot is free again. Runs execute in this service's own
threads, so long transcodes never hold the threads the server uses for requests.

Ownership: a claimed row records ``owner`` (host, pid, process start time, and a nonce
per service). On SQLite (one machine) a ``running`` row whose owner is gone (``kill -9``,
power cut) is re-queued at start-up and its partial output deleted; its ffmpeg, if it
outlived the server, is killed first. On PostgreSQL several machines run jobs from the
one table: a claimed row is a lease its owner renews (``updated_at``, every third of the
kernel's ``lease_seconds``), and any process re-queues a run whose lease expired, on
every poll — the owner of a run on another machine cannot be asked through ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.types import FileRef

from . import jobs, layout, runner
from .settings import HlsSettings

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0
HOST = socket.gethostname()
_live_owners: set[str] = set()  # owners of the services alive in this process


def _start_ticks(pid: int) -> str | None:
    """A process's start time (clock ticks since boot): with the pid, it names a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def new_owner() -> str:
    pid = os.getpid()
    owner = f"{HOST}:{pid}:{_start_ticks(pid) or 0}:{secrets.token_hex(4)}"
    _live_owners.add(owner)
    return owner


def owner_alive(owner: str) -> bool:
    """Is the process (and service) that claimed a job still running?"""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != HOST or not parts[1].isdigit():
        return False  # one server per VIDEO_PATH: another host's claim is stale
    pid = int(parts[1])
    if pid == os.getpid():
        return owner in _live_owners
    ticks = _start_ticks(pid)
    if ticks is not None:
        return ticks == parts[2]
    if Path("/proc/self/stat").exists():
        return False  # /proc works, so there is no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def kill_orphan(pid: int, directory: Path) -> None:
    """Kill an ffmpeg a dead server left running in ``directory`` (checked by its cwd, so
    a recycled pid is never hit)."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return
    if cwd.removesuffix(" (deleted)") == str(directory):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def current_stat(ref: FileRef) -> tuple[int, int]:
    """Size and mtime of the file on disk now (the index may not have noticed a change)."""
    try:
        st = ref.abs_path.stat()
    except OSError:
        return ref.size, ref.mtime_ns
    return st.st_size, st.st_mtime_ns


@dataclass
class Running:
    key: str
    control: runner.Control
    interactive: bool
    started: float


class HlsService:
    """Queue, scheduler and runs of one kernel."""

    def __init__(self, kernel: Kernel, settings: HlsSettings, root: Path) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.settings = settings
        self.root = root
        self.owner = new_owner()
        self.running: dict[int, Running] = {}
        workers = 2 * self.settings.max_concurrent + 1  # running + suspended + spare
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="hls")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake = asyncio.Event()
        self.closed = False

    # --- the loop --------------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """Several processes, maybe on several machines, run jobs (PostgreSQL)."""
        return self.kernel.claims.shared

    @property
    def lease(self) -> float:
        return self.kernel.config.kernel.lease_seconds

    async def _renew_forever(self) -> None:
        """Keep this service's runs leased while it lives (PostgreSQL)."""
        while not self.closed:
            await asyncio.sleep(self.lease / 3)
            try:
                await asyncio.to_thread(jobs.touch, self.db, self.owner)
            except Exception:  # the database is away for a moment: next time
                log.warning("hls: could not renew the leases of the runs", exc_info=True)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.shared:
            self.kernel.spawn_background(self._renew_forever(), "hls: leases")
        await asyncio.to_thread(self.recover)
        if self.pregenerating:
            while await asyncio.to_thread(self.queue_backlog, 1000) == 1000:
                pass
        poll = min(POLL_SECONDS, self.lease / 3) if self.shared else POLL_SECONDS
        while not self.closed:
            self.wake.clear()
            try:
                if self.shared:  # runs of processes that died elsewhere
                    await asyncio.to_thread(self.recover, sweep=False)
                await self.schedule()
            except Exception:  # a database hiccup must not end the worker
                log.exception("hls: scheduling failed; retrying")
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns the result of
            # a wake that lands with a cancellation and drops the cancellation (the loop
            # then never ended and the kernel's shutdown waited for it forever)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self.wake.wait()

    async def schedule(self) -> None:
        """Start, suspend and resume runs until the slots are used as well as they can be."""
        cap = self.settings.max_concurrent
        while not self.closed:
            active = [r for r in self.running.values() if not r.control.paused]
            paused = [r for r in self.running.values() if r.control.paused]
            wanted = await self._next(requested=True)
            if wanted is not None:
                if len(active) < cap:
                    await self._start(wanted, interactive=True)
                    continue
                victims = [r for r in active if not r.interactive]
                if victims:
                    victim = max(victims, key=lambda r: r.started)
                    victim.control.pause()
                    if not await self._start(wanted, interactive=True):
                        victim.control.resume()
                    continue
            if paused and len(active) < cap:
                max(paused, key=lambda r: r.interactive).control.resume()
                continue
            if paused or len(active) >= cap or not self.pregenerating:
                return
            queued = await self._next(requested=False)
            if queued is None:
                return
            await self._start(queued, interactive=False)

    @property
    def pregenerating(self) -> bool:
        """Renditions nobody asked for yet are made by the one process doing background
        work (``serve --workers``); the others run only the streams their clients ask for."""
        return self.settings.pregenerate and not self.kernel.serve_only

    async def _next(self, *, requested: bool) -> int | None:
        limit = len(self.running) + 1
        ids = await asyncio.to_thread(jobs.next_queued, self.db, requested=requested, limit=limit)
        return next((i for i in ids if i not in self.running), None)

    async def _start(self, file_id: int, *, interactive: bool) -> bool:
        key = secrets.token_hex(8)
        if not await asyncio.to_thread(jobs.claim, self.db, file_id, key, self.owner):
            return False
        run = Running(key, runner.Control(), interactive, time.monotonic())
        self.running[file_id] = run
        try:
            future = self.pool.submit(self._execute, file_id, key, run.control)
        except RuntimeError:  # shutting down
            del self.running[file_id]
            await asyncio.to_thread(jobs.requeue, self.db, file_id, key)
            return False
        future.add_done_callback(lambda _: self._call_soon(self._finished, file_id, key))
        return True

    def _call_soon(self, callback: object, *args: object) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]

    def _finished(self, file_id: int, key: str) -> None:
        run = self.running.get(file_id)
        if run is not None and run.key == key:
            del self.running[file_id]
        self.wake.set()

    # --- one run (in a pool thread) ------------------------------------------------------------

    def _execute(self, file_id: int, key: str, control: runner.Control) -> None:
        directory = layout.run_dir(self.root, file_id, key)
        try:
            error = self._produce(file_id, key, control, directory)
        except Exception as exc:
            log.exception("hls: rendition of file %d failed", file_id)
            error = f"internal error: {exc!r}"
        if error == _REQUEUE:  # stopped by us, or the source changed while it was read
            jobs.requeue(self.db, file_id, key)  # a no-op when the row has moved on
            layout.remove_run(self.root, file_id, key)
            self._call_soon(self.wake.set)
            return
        if not jobs.finish(self.db, file_id, key, error) or error:
            layout.remove_run(self.root, file_id, key)
        if error:
            log.warning("hls: file %d: %s", file_id, error.splitlines()[0])

    def _produce(
        self, file_id: int, key: str, control: runner.Control, directory: Path
    ) -> str | None:
        refs = self.kernel.index.get_many([file_id])
        if not refs:
            return "the file is no longer in the index"
        ref = refs[0]
        try:
            before = ref.abs_path.stat()
        except OSError as exc:
            return f"cannot read the source: {exc.strerror or exc}"
        try:
            source = runner.inspect(ref.abs_path)
        except runner.Unplayable as exc:
            return str(exc)
        if control.cancelled:
            return _REQUEUE
        jobs.started(
            self.db,
            file_id,
            key,
            mode=source.mode,
            duration=source.duration,
            source_size=before.st_size,
            source_mtime_ns=before.st_mtime_ns,
        )
        directory.mkdir(parents=True, exist_ok=True)
        timeout = runner.timeout_for(source, self.settings)
        outcome = runner.run(
            runner.ffmpeg_args(source, ref.abs_path, self.settings),
            directory,
            timeout=timeout,
            nice=self.settings.nice,
            control=control,
            on_start=lambda pid: jobs.started(self.db, file_id, key, pid=pid),
            on_progress=lambda seconds: jobs.progress(self.db, file_id, key, seconds),
        )
        tail = f": {outcome.error_tail}" if outcome.error_tail else ""
        if outcome.timed_out:
            return f"ffmpeg timed out after {timeout:g} s{tail}"
        if control.cancelled:  # shutdown, or replaced by newer content
            return _REQUEUE
        if outcome.returncode != 0:
            return f"ffmpeg exited with status {outcome.returncode}{tail}"
        complete, _ = layout.is_complete(directory)
        if not complete:
            return f"ffmpeg wrote no complete playlist{tail}"
        after = current_stat(ref)
        if after != (before.st_size, before.st_mtime_ns):
            return _REQUEUE  # the source changed while it was read: make it again
        return None

    # --- queueing and invalidation -------------------------------------------------------------

    def queue_backlog(self, limit: int) -> int:
        return jobs.queue_many(self.db, jobs.backlog(self.db, limit))

    async def request(self, ref: FileRef, *, requested: bool = True) -> jobs.Enqueued:
        """Queue a rendition of ``ref``'s current content (or report the existing job)."""
        size, mtime_ns = await asyncio.to_thread(current_stat, ref)
        result = await asyncio.to_thread(
            jobs.enqueue, self.db, ref.id, size, mtime_ns, requested=requested
        )
        if result.replaced is not None:
            await self._discard(result.replaced)
        if result.job.status == jobs.QUEUED:
            self.wake.set()
        elif requested and result.job.status == jobs.RUNNING:
            self._promote(ref.id)
        return result

    def _promote(self, file_id: int) -> None:
        """A client now waits for a pre-generation run: it may no longer be suspended
        for another, and if it is suspended, it takes a pre-generation run's slot."""
        run = self.running.get(file_id)
        if run is None or run.interactive:
            return
        run.interactive = True
        if not run.control.paused:
            return
        active = [r for r in self.running.values() if not r.control.paused]
        if len(active) >= self.settings.max_concurrent:
            victims = [r for r in active if not r.interactive]
            if not victims:
                return  # resumed by ``schedule`` when an asked-for run ends
            max(victims, key=lambda r: r.started).control.pause()
        run.control.resume()

    async def renew(self, job: jobs.Job, ref: FileRef) -> bool:
        """Queue a finished job again: its output vanished (VIDEO_PATH wiped), or a
        client asks to retry a failure. False when the row changed meanwhile."""
        size, mtime_ns = await asyncio.to_thread(current_stat, ref)
        if not await asyncio.to_thread(jobs.reset, self.db, job, size, mtime_ns, requested=True):
            return False
        await asyncio.to_thread(layout.remove_run, self.root, job.file_id, job.out_key)
        self.wake.set()
        return True

    async def invalidate(self, file_id: int) -> None:
        """The source changed or vanished: stop its run, delete its row and rendition."""
        for old in await asyncio.to_thread(jobs.forget, self.db, [file_id]):
            await self._discard(old)

    async def _discard(self, old: jobs.Job) -> None:
        run = self.running.get(old.file_id)
        if run is not None and run.key == old.out_key:
            run.control.cancel("replaced")  # the run deletes its own output once ffmpeg is dead
        else:
            await asyncio.to_thread(layout.remove_run, self.root, old.file_id, old.out_key)

    async def drain(self, limit: int) -> int:
        """Drop renditions of files that changed while nobody watched; queue the backlog."""
        stale = await asyncio.to_thread(jobs.stale, self.db, limit)
        for file_id in stale:
            await self.invalidate(file_id)
        queued = 0
        if self.settings.pregenerate:
            queued = await asyncio.to_thread(self.queue_backlog, limit)
        if queued or stale:
            self.wake.set()
        return queued + len(stale)

    def paused(self, file_id: int) -> bool:
        run = self.running.get(file_id)
        return run is not None and run.control.paused

    # --- start-up and shutdown -----------------------------------------------------------------

    def _owner_gone(self, job: jobs.Job) -> bool:
        if job.owner == self.owner:
            return False
        if self.shared:  # a lease: the owner may be on another machine
            return job.updated_at < time.time() - self.lease
        return not (job.owner and owner_alive(job.owner))

    def recover(self, *, sweep: bool = True) -> int:
        """Re-queue the runs of dead servers and delete their partial output."""
        recovered = 0
        for job in jobs.running(self.db):
            if not self._owner_gone(job):
                continue
            same_host = (job.owner or "").split(":", 1)[0] == HOST
            if job.pid and job.out_key and same_host:
                kill_orphan(job.pid, layout.run_dir(self.root, job.file_id, job.out_key))
            if jobs.requeue(self.db, job.file_id, job.out_key, owner=job.owner):
                layout.remove_run(self.root, job.file_id, job.out_key)
                recovered += 1
        if recovered:
            log.info("hls: re-queued %d interrupted job(s)", recovered)
            self.wake.set()
        if sweep:
            layout.sweep(self.root, jobs.output_keys(self.db))
        return recovered

    async def close(self) -> None:
        """Kill the runs (their jobs go back to the queue) and wait for their threads."""
        self.closed = True
        self.wake.set()
        for run in list(self.running.values()):
            run.control.cancel("shutdown")
        await asyncio.to_thread(self.pool.shutdown, wait=True)
        await asyncio.to_thread(self._release)
        _live_owners.discard(self.owner)

    def _release(self) -> None:
        for job in jobs.owned_by(self.db, self.owner):
            if jobs.requeue(self.db, job.file_id, job.out_key, owner=self.owner):
                layout.remove_run(self.root, job.file_id, job.out_key)


_REQUEUE = "\0requeue"
