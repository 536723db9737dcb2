"""The backlog as a flow that outlives one drain, so that Apollo always has
``detect_concurrency`` calls to answer, tick after tick.

A drain that ran its own batch to the end left the calls' slots idle one after another
while its last answers came back, then selected, claimed and prepared the next tick's
photos before the first call of that tick could start: 64 photos in a tick of about
0.4 s, and some 50 ms of every tick with fewer than 8 calls in flight. Here the stages
run on from one drain into the next:

* the selection picks the next photos (the anti-join) while calls are on the wire, as
  soon as fewer than ``detect_concurrency`` are waiting: on SQLite the rest of the tick
  in one query, on PostgreSQL at most ``2 * detect_concurrency`` at a time, claimed
  (``kernel.claims``), so that the other workers find the rest unclaimed;
* preparers (``PREPARERS`` worker threads at a time) decode and re-encode pictures at
  most ``detect_concurrency`` ahead of the calls;
* callers hold a slot for the call alone;
* one writer stores the answers of up to ``GROUP_SECONDS`` in one transaction (one
  thread hop), then releases the photos' claims.

A drain grants ``cap`` calls and returns once ``cap`` answers are stored; the calls of
the next tick may start up to ``2 * detect_concurrency`` ahead of that (``LOOKAHEAD``),
so when the drain returns calls are still in flight and count for the next tick. Failed
calls give their grant back (errors do not burn the cap). A drain that stops early (its
time budget, Apollo unreachable, as many failures as the cap) takes the grant back, and
no call starts until the next drain.

What is stored is unchanged, and so is when: an answer is written only after Apollo
gave it, so a kill loses the answers not written yet and nothing else; their photos
are still pending (and, on PostgreSQL, their claims expire after the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel.types import FileRef

from . import images, store

if TYPE_CHECKING:
    from .pipeline import Pipeline

PREPARERS = 2  # decoding keeps ahead of 8 calls of 50 ms with room to spare
GROUP_SECONDS = 0.05  # answers written together: a few per transaction, none held longer
LOOKAHEAD = 2  # calls a drain lets start for the next tick, in units of detect_concurrency
QUEUE = "faces"  # the claims queue (several workers over PostgreSQL)


@dataclass
class Outcome:
    """What to store for one photo: its faces (``detected``; none: a ``no_faces``
    marker) or a ``failed`` marker with the reason."""

    file: FileRef
    faces: list[store.NewFace] = field(default_factory=list)
    status: str = "detected"
    error: str | None = None
    model_version: str | None = None


Prepared = tuple[FileRef, "images.Picture | images.NoPicture"]


class Flow:
    """The backlog pipeline of one plugin instance; ``drain`` drives it one tick."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.slots = pipeline.settings.detect_concurrency
        self.lookahead = LOOKAHEAD * self.slots
        self.todo: deque[FileRef] = deque()  # claimed, picture not made yet
        self.ready: deque[Prepared] = deque()  # pictures made, call not started
        self.answered: list[Outcome] = []  # answers not written yet
        self.claimed: dict[str, int] = {}  # content hash -> claimed file id, until stored
        self.preparing = self.calling = 0
        self.selecting = self.writing = False
        self.exhausted = False  # the last selection found less than it asked for
        self.granted = 0  # calls that may be started but not yet reported by a drain
        self.started = 0  # calls started (failures taken back), not yet reported
        self.stored = 0  # outcomes stored, not yet reported
        self.failures = 0  # transient failures in the current drain
        self.target: int | None = None  # the waiting drain's cap: write at once on reaching it
        self.tried: set[str] = set()  # selected in this drain: each photo once per drain
        self.error: BaseException | None = None
        self.changed = asyncio.Event()
        self.flush = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.releases: set[asyncio.Task[Any]] = set()  # claims being given back

    # --- one tick ----------------------------------------------------------------------

    async def drain(self, cap: int, budget_seconds: float) -> int:
        """Detect and store up to ``cap`` photos (at most ``budget_seconds`` of new calls);
        returns how many were stored for this tick."""
        deadline = time.monotonic() + budget_seconds
        self.granted, self.target = cap + self.lookahead, cap
        self.failures, self.exhausted, self.tried = 0, False, set()
        pipeline = self.pipeline
        full = False
        try:
            while True:
                self.pump()
                if self.error is not None:
                    error, self.error = self.error, None
                    raise error
                full = self.stored >= cap
                stop = self.failures >= cap or pipeline.paused() or time.monotonic() >= deadline
                if full or stop or (self.exhausted and self.idle()):
                    break
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await self.changed.wait()
        finally:
            self.target = None
            if not full:  # stopped early: no call starts before the next drain, and the
                self.granted = 0  # photos not called yet go back to the backlog
                self._forget([*self.todo, *(file for file, _ in self.ready)])
                self.todo.clear()
                self.ready.clear()
        if self.releases:  # a photo given back can be taken again by the next tick
            await asyncio.gather(*self.releases, return_exceptions=True)
        reported = min(self.stored, cap)
        self.stored -= reported
        self.started -= reported
        if full:  # the next tick's first calls may start now
            self.granted = self.lookahead
        return reported

    def idle(self) -> bool:
        """Nothing claimed here is waiting, running or unwritten."""
        return not (
            self.todo or self.ready or self.answered or self.preparing or self.calling
            or self.selecting or self.writing
        )  # fmt: skip

    # --- the stages ----------------------------------------------------------------------

    def pump(self) -> None:
        """Start every stage that may start now; called whenever a stage finishes."""
        pipeline = self.pipeline
        paused = pipeline.paused()
        while self.ready and self.calling < self.slots and self.started < self.granted:
            if paused:
                break
            file, picture = self.ready.popleft()
            self.calling += 1
            self.started += 1
            self._spawn(self._call(file, picture))
        while (
            self.todo
            and self.preparing < PREPARERS
            and len(self.ready) + self.preparing < self.slots
        ):
            self.preparing += 1
            self._spawn(self._prepare(self.todo.popleft()))
        queued = len(self.todo) + len(self.ready) + self.preparing
        wanted = self.granted - self.started - queued
        if wanted > 0 and queued < self.slots and not (self.selecting or self.exhausted or paused):
            if pipeline.kernel.claims.shared:  # claim what is needed soon, leave the rest
                wanted = min(wanted, 2 * self.slots)  # to the other workers
            self.selecting = True
            self._spawn(self._select(wanted))
        if self.answered and not self.writing:
            self.writing = True
            self._spawn(self._write())
        self.changed.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name="faces backlog")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.error is None:
            self.error = task.exception()
        if not task.cancelled():
            self.pump()

    async def _select(self, limit: int) -> None:
        pipeline = self.pipeline
        try:
            now = time.monotonic()
            skip = self.tried | pipeline.in_flight
            skip |= {h for h in pipeline.retry_at if pipeline.waiting(h, now)}
            batch = await asyncio.to_thread(pipeline.candidates, limit, skip)
            self.exhausted = len(batch) < limit
            for file in batch:
                h = file.content_hash or ""
                self.tried.add(h)
                if h in pipeline.in_flight:  # on_hashed's since the selection (SQLite)
                    continue
                pipeline.in_flight.add(h)
                self.claimed[h] = file.id
                self.todo.append(file)
        finally:
            self.selecting = False

    async def _prepare(self, file: FileRef) -> None:
        try:
            picture = await self.pipeline.picture(file)
            if (file.content_hash or "") in self.claimed:  # else given back meanwhile
                self.ready.append((file, picture))
        except BaseException:
            self._forget([file])
            raise
        finally:
            self.preparing -= 1

    async def _call(self, file: FileRef, picture: images.Picture | images.NoPicture) -> None:
        outcome = None
        try:
            outcome = await self.pipeline.call(file, picture)
        finally:
            self.calling -= 1
            if outcome is None:  # a transient failure (or a bug): its grant is given back
                self.started -= 1
                self.failures += 1
                self._forget([file])
        if outcome is not None:
            self.answered.append(outcome)
            if self.target is not None and self.stored + len(self.answered) >= self.target:
                self.flush.set()  # the drain waits for these: no grouping delay

    async def _write(self) -> None:
        try:
            if self.calling and not self.flush.is_set():  # let a group gather
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GROUP_SECONDS):
                        await self.flush.wait()
            self.flush.clear()
            group, self.answered = self.answered, []
            try:
                await self.pipeline.store(group)
            except BaseException:
                self.started -= len(group)  # not stored: pending again, their grant back
                raise
            finally:
                self._forget([o.file for o in group])
            self.stored += len(group)
        finally:
            self.writing = False

    def _forget(self, done: list[FileRef]) -> None:
        """Photos stored or given up: out of flight, their claims released (after the
        commit, so a claim anybody may take again is backed by the stored rows)."""
        ids = []
        for file in done:
            h = file.content_hash or ""
            self.pipeline.in_flight.discard(h)
            if (file_id := self.claimed.pop(h, None)) is not None:
                ids.append(file_id)
        if ids and self.pipeline.kernel.claims.shared:
            release = asyncio.to_thread(self.pipeline.kernel.claims.release, QUEUE, ids)
            task = asyncio.create_task(release, name="faces: release claims")
            self.releases.add(task)
            task.add_done_callback(self.releases.discard)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Stop every stage; what was claimed and not stored goes back to the backlog."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        left = list(self.claimed.values())
        for h in self.claimed:
            self.pipeline.in_flight.discard(h)
        self.claimed.clear()
        self.todo.clear()
        self.ready.clear()
        if left and self.pipeline.kernel.claims.shared:
            with contextlib.suppress(Exception):  # the database may be gone: leases expire
                await asyncio.to_thread(self.pipeline.kernel.claims.release, QUEUE, left)
