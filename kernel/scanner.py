"""The scanner: walk libraries, reconcile with the index in bulk, hash, fire ingest hooks.

A full scan walks everything and compares it with one query per library (never one per
file); a quick scan only looks at files modified or created since the last scan. Rows are
committed before hooks fire, and hashing picks its work from the database, so a crash at
any point resumes from the index: nothing is lost and nothing is inserted twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam, select, update

from kernel import moves
from kernel.hashing import HashOutcome, hash_file
from kernel.index import Stat, insert_values, update_values
from kernel.libraries import Library
from kernel.moves import Arrival, Move
from kernel.tables import files
from kernel.types import FileRef
from kernel.walk import walk

if TYPE_CHECKING:
    from kernel.core import Kernel

T = TypeVar("T")

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int | None], None]
BATCH = 2000
IDLE_RECHECK_SECONDS = 300.0  # an idle backlog is asked again after this, changes or not
HASH_QUEUE = "hash"


@dataclass
class ScanReport:
    seen: int = 0
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)
    missing: list[FileRef] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    hashed: int = 0
    failed: int = 0

    def summary(self) -> str:
        """One line for the log and ``imageapi scan``."""
        return (
            f"{self.seen} files: {len(self.new)} new, {len(self.moved)} moved,"
            f" {len(self.changed)} changed, {len(self.missing)} missing,"
            f" {self.hashed} hashed, {self.failed} failed"
        )


@dataclass
class Plan:
    """One library's walk compared with its rows: what a scan will write."""

    library: Library
    seen: int
    arrivals: list[Arrival] = field(default_factory=list)  # paths without a row
    updates: list[tuple[int, Stat, bool]] = field(default_factory=list)  # (id, stat, changed)
    gone: list[FileRef] = field(default_factory=list)  # present rows not found (full scans)


class Scanner:
    """Scans, hashes and drains backlogs for one kernel; also the periodic loop."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        workers = kernel.config.kernel.hash_workers or (os.cpu_count() or 2)
        self.hash_pool = ThreadPoolExecutor(workers, thread_name_prefix="imageapi-hash")
        self.workers = workers
        self.last_scan_ns: dict[int, int] = {}
        self.lock = asyncio.Lock()
        self.hash_lock = asyncio.Lock()
        #: plugin -> (database version, when) of its last drain that processed nothing
        self._idle_backlogs: dict[str, tuple[int, float]] = {}

    # --- reconciling the walk with the index --------------------------------------------

    def _diff(
        self, library: Library, stats: list[Stat], known: dict[str, tuple], *, full: bool
    ) -> Plan:
        """What the walk means for the index, not written yet (moves are found first)."""
        plan = Plan(library, len(stats))
        for stat in stats:
            row = known.pop(stat.rel_path, None)
            if row is None:
                plan.arrivals.append(Arrival(library, stat))
            elif row[2] != stat.size or row[3] != stat.mtime_ns:
                plan.updates.append((row[1], stat, True))
            elif row[4] != "present":
                plan.updates.append((row[1], stat, False))
        if full:
            gone = [row[1] for row in known.values() if row[4] == "present"]
            plan.gone = self.kernel.index.get_many(gone)
        return plan

    def _find_moves(self, plans: list[Plan]) -> list[Move]:
        """Pair the files gone from every library with the new ones (and with rows already
        missing), re-point the pairs' rows in batches and take them out of the plans."""
        arrivals = [a for plan in plans for a in plan.arrivals]
        if not arrivals:
            return []
        vanished = [ref for plan in plans for ref in plan.gone]
        vanished += moves.missing_with_sizes(self.kernel.index, {a.stat.size for a in arrivals})
        pairs = moves.pair(vanished, arrivals, self._digests)
        if not pairs:
            return []
        with self.kernel.db.write() as conn:
            moved = moves.apply(conn, pairs)
        old_ids = {old.id for old, _new in pairs}
        new_keys = {new.key for _old, new in pairs}
        for plan in plans:
            plan.gone = [ref for ref in plan.gone if ref.id not in old_ids]
            plan.arrivals = [a for a in plan.arrivals if a.key not in new_keys]
        return moved

    def _digests(self, arrivals: list[Arrival]) -> list[str | None]:
        return list(self.hash_pool.map(moves.digest, arrivals))

    def _write(self, plan: Plan, *, progress: Progress | None) -> ScanReport:
        library = plan.library
        report = ScanReport(seen=plan.seen)
        db = self.kernel.db
        now = time.time()
        inserts = [insert_values(library.id, a.stat, now) for a in plan.arrivals]
        updates = plan.updates
        for start in range(0, max(len(inserts), len(updates), 1), BATCH):
            with db.write() as conn:
                chunk = inserts[start : start + BATCH]
                if chunk:
                    conn.execute(files.insert(), chunk)
                changes = updates[start : start + BATCH]
                if changes:
                    conn.execute(
                        update(files).where(files.c.id == bindparam("b_id")),
                        [{"b_id": i, **update_values(s, c, now)} for i, s, c in changes],
                    )
            if progress:
                progress("index", min(start + BATCH, plan.seen), plan.seen)
        if inserts:
            with db.read() as conn:
                new_paths = {r["rel_path"] for r in inserts}
                ids = conn.execute(
                    select(files.c.id, files.c.rel_path).where(
                        files.c.library_id == library.id, files.c.discovered_at == now
                    )
                ).all()
            report.new = [r.id for r in ids if r.rel_path in new_paths]
        report.changed = [i for i, _, changed in updates if changed]
        report.returned = [i for i, _, changed in updates if not changed]
        if plan.gone:
            report.missing = plan.gone
            with db.write() as conn:
                self.kernel.index.mark_missing(conn, [ref.id for ref in plan.gone])
        return report

    # --- scans --------------------------------------------------------------------------

    async def scan_library(
        self, library: Library, *, full: bool = True, progress: Progress | None = None
    ) -> ScanReport:
        """Scan one library (moves are recognised within it only)."""
        return await self._scan([library], full=full, progress=progress)

    def _plan(self, library: Library, *, full: bool, progress: Progress | None) -> Plan:
        since = None if full else self.last_scan_ns.get(library.id)
        full = full or since is None  # nothing to be "recent" against yet
        skip = self.kernel.skip_dirs
        if full:
            # One after the other: with the disk's metadata cached, reading the index in
            # a second thread made both slower (100,000 files: 0.91-1.04 s against
            # 0.68-0.79; the sqlite3 module drops the interpreter lock at every row, the
            # walk at every stat, and the two handed it back and forth). From a cold
            # cache the overlap saved 2-8 %; on PostgreSQL it saved nothing.
            stats = list(walk(str(library.root), skip))
            known = self.kernel.index.rows_of(library.id)
        else:
            stats = list(walk(str(library.root), skip, since_ns=since))
            known = self.kernel.index.rows_of(library.id, [s.rel_path for s in stats])
        if progress:
            progress("walk", len(stats), len(stats))
        return self._diff(library, stats, known, full=full)

    async def _scan(
        self, libraries: list[Library], *, full: bool, progress: Progress | None
    ) -> ScanReport:
        """Walk every library first, so a file moved from one library to another in the
        same scan is one move; then write, then tell plugins."""
        started = time.time_ns()
        plans = [
            await self._on_own_threads(self._plan, library, full=full, progress=progress)
            for library in libraries
        ]
        total = ScanReport(moved=await self._on_own_threads(self._find_moves, plans))
        for plan in plans:
            report = await self._on_own_threads(self._write, plan, progress=progress)
            self.last_scan_ns[plan.library.id] = started - 2_000_000_000  # clock granularity
            total.seen += report.seen
            total.new += report.new
            total.changed += report.changed
            total.returned += report.returned
            total.missing += report.missing
        await self._announce(total)
        return total

    async def _on_own_threads(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a scan step that takes seconds on a large library (the walk, writing the
        index) on the scanner's threads, not the event loop's few (``[kernel] threads``,
        three on SQLite): they answer the requests of the serving process that scans."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.hash_pool, lambda: context.run(function, *args, **kwargs)
        )

    async def _announce(self, report: ScanReport) -> None:
        hooks = self.kernel.hooks
        index = self.kernel.index
        if report.moved:
            await hooks.on_files_moved(report.moved)
        for hook, ids in (
            (hooks.on_file_discovered, report.new + report.returned),
            (hooks.on_file_changed, report.changed),
        ):
            if ids and hooks.implemented(hook):
                for start in range(0, len(ids), 500):
                    for ref in index.get_many(ids[start : start + 500]):
                        await hook(ref)
        if report.missing and hooks.implemented(hooks.on_file_removed):
            for ref in report.missing:
                await hooks.on_file_removed(ref)

    async def scan(self, *, full: bool = True, progress: Progress | None = None) -> ScanReport:
        """Scan every library, hash what is new, then let plugins drain their backlogs."""
        async with self.lock:
            total = await self._scan(list(self.kernel.libraries), full=full, progress=progress)
            hashed, failed = await self.hash_backlog(progress=progress)
            total.hashed, total.failed = hashed, failed
            await self.drain_backlogs()
            return total

    # --- hashing and backlogs -------------------------------------------------------------

    async def hash_backlog(self, *, progress: Progress | None = None) -> tuple[int, int]:
        """Hash every present, unhashed file; fire ``on_hashed`` for each. (hashed, failed)"""
        async with self.hash_lock:
            return await self._hash_backlog(progress)

    async def _hash_backlog(self, progress: Progress | None) -> tuple[int, int]:
        """Hash batch after batch; a batch's ``on_hashed`` (EXIF, thumbnails, ...) runs while
        the next batch is hashed, so the first ingest keeps every core busy."""
        loop = asyncio.get_running_loop()
        claims = self.kernel.claims
        hashed = failed = 0
        chunk_size = max(16, self.workers * 8)
        announcing: asyncio.Future[None] | None = None
        try:
            while True:
                batch = await asyncio.to_thread(self._claim_unhashed, chunk_size)
                outcomes = await asyncio.gather(
                    *(
                        loop.run_in_executor(
                            self.hash_pool, hash_file, f.id, f.abs_path, f.size, f.mtime_ns
                        )
                        for f in batch
                    )
                )
                usable = [o for o in outcomes if not o.changed]
                if usable:
                    await asyncio.to_thread(self._store_hashes, usable)
                await asyncio.to_thread(claims.release, HASH_QUEUE, [f.id for f in batch])
                if not usable:
                    break
                by_id = {f.id: f for f in batch}
                done = [o for o in usable if o.content_hash]
                failed += len(usable) - len(done)
                hashed += len(done)
                if progress:
                    progress("hash", hashed + failed, None)
                if announcing is not None:
                    await announcing  # one batch ahead at most
                announcing = asyncio.ensure_future(
                    self._fire_hashed([(by_id[o.file_id], o.content_hash) for o in done])
                )
            if announcing is not None:
                await announcing
        except BaseException:
            if announcing is not None:
                announcing.cancel()
            raise
        return hashed, failed

    def _claim_unhashed(self, limit: int) -> list[FileRef]:
        """The next files to hash; on PostgreSQL, leased to this process (several workers
        hash side by side, each file once, and ``on_hashed`` fires where it was hashed)."""
        index = self.kernel.index
        return index.refs(self.kernel.claims.take(HASH_QUEUE, index.unhashed_query(), limit))

    def _store_hashes(self, outcomes: list[HashOutcome]) -> None:
        now = time.time()
        with self.kernel.db.write() as conn:
            conn.execute(
                update(files).where(files.c.id == bindparam("b_id")),
                [
                    {
                        "b_id": o.file_id,
                        "content_hash": o.content_hash,
                        "error": o.error,
                        "hashed_at": now if o.content_hash else None,
                    }
                    for o in outcomes
                ],
            )

    async def _fire_hashed(self, items: list[tuple[FileRef, str]]) -> None:
        hooks = self.kernel.hooks
        if not items or not hooks.implemented(hooks.on_hashed):
            return
        gate = asyncio.Semaphore(self.workers)

        async def one(ref: FileRef, digest: str) -> None:
            async with gate:
                await hooks.on_hashed(dataclasses.replace(ref, content_hash=digest))

        await asyncio.gather(*(one(ref, digest) for ref, digest in items))

    async def drain_backlogs(self) -> dict[str, int]:
        """One ``drain_backlog`` round for every plugin; returns what each processed.

        A plugin that processed nothing last time is skipped while the database has not
        changed since (and for at most ``IDLE_RECHECK_SECONDS``)."""
        limit = self.kernel.config.kernel.backlog_per_tick
        version = self.kernel.db.local_version()
        now = time.monotonic()
        idle = {
            name
            for name, (seen, since) in self._idle_backlogs.items()
            if version is not None and seen == version and now - since < IDLE_RECHECK_SECONDS
        }
        done = await self.kernel.hooks.drain_backlog(limit, skip=idle)
        for name, count in done.items():
            if count == 0 and version is not None:
                self._idle_backlogs[name] = (version, now)
            else:
                self._idle_backlogs.pop(name, None)
        return {**{name: 0 for name in idle}, **done}

    async def work(self, *, hash_files: bool = True) -> int:
        """One round of claimed work for a worker that does not scan: hash what is
        unhashed, then every plugin's backlog. Returns how many units were done."""
        async with self.lock:
            hashed = failed = 0
            if hash_files:
                hashed, failed = await self.hash_backlog()
            drained = await self.drain_backlogs()
            return hashed + failed + sum(drained.values())

    # --- the periodic loop ------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Quick scans every WATCH_QUICK_INTERVAL_SECONDS, full ones every ..._FULL_...."""
        cfg = self.kernel.config
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(cfg.watch_quick_interval)
            full = time.monotonic() - last_full >= cfg.watch_full_interval
            try:
                report = await self.scan(full=full)
                if full:
                    last_full = time.monotonic()
                log.info("%s scan: %s", "full" if full else "quick", report.summary())
            except Exception:
                log.exception("scan failed; retrying at the next interval")

    def close(self) -> None:
        self.hash_pool.shutdown(wait=False, cancel_futures=True)
