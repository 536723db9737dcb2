"""State rows written in batches, off the render threads.

A render thread that opened a transaction per thumbnail spent about a twentieth of its
time in the database (measured on a 24-megapixel ingest). Here render threads hand
their outcome over and go back to decoding; one writer thread commits whatever has
arrived within ``linger`` seconds in a single transaction. Until then the outcome sits
in an in-memory overlay that the render path consults before the database, so a
request right after a render neither misses it nor renders again. A ``kill -9``
loses at most the last batch of rows, never a file: those files are rendered again by
the next backlog drain.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from kernel.db import Database

from . import store

log = logging.getLogger(__name__)

_WAKE, _STOP = object(), object()


class StateWriter:
    """One thread committing ``store.Record``s; ``pending`` shows what is not yet in."""

    def __init__(
        self,
        db: Database,
        *,
        linger: float = 0.2,
        batch: int = 500,
        on_commit: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.db = db
        #: called with the file ids of each committed batch (claims are released there)
        self.on_commit = on_commit
        self.linger = linger
        self.batch = batch
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: dict[int, store.State] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._loop, name="imageapi-thumbnails-state", daemon=True
        )
        self._thread.start()

    def put(self, record: store.Record, state: store.State) -> threading.Event:
        """Queue ``record``; ``state`` is what readers see until it is committed.

        The returned event is set once the batch holding it has been committed.
        """
        done = threading.Event()
        with self._lock:
            self._pending[record.ref.id] = state
        self._queue.put((record, state, done))
        return done

    def pending(self, file_id: int) -> store.State | None:
        with self._lock:
            return self._pending.get(file_id)

    def wake(self) -> None:
        """Commit what is queued now instead of lingering (a client is waiting)."""
        self._queue.put(_WAKE)

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        self.wake()
        self._queue.join()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._queue.task_done()
                return
            if first is _WAKE:
                self._queue.task_done()
                continue
            batch = [first]
            stop = self._collect(batch)
            self._commit(batch)
            if stop:
                return

    def _collect(self, batch: list[Any]) -> bool:
        """Add what arrives within ``linger``; True when a stop request was met."""
        deadline = time.monotonic() + self.linger
        while len(batch) < self.batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else None
            except queue.Empty:
                item = None
            if item is None:
                return False
            if item is _WAKE or item is _STOP:
                self._queue.task_done()
                return item is _STOP
            batch.append(item)
        return False

    def _commit(self, batch: list[Any]) -> None:
        try:
            store.record_many(self.db, [record for record, _, _ in batch])
        except Exception:  # the files exist; the backlog renders them again next tick
            log.exception("thumbnails: could not record %d outcomes", len(batch))
        if self.on_commit is not None:
            try:
                self.on_commit([record.ref.id for record, _, _ in batch])
            except Exception:  # the leases then expire on their own
                log.exception("thumbnails: could not release %d claims", len(batch))
        with self._lock:
            for record, state, _ in batch:
                if self._pending.get(record.ref.id) is state:
                    del self._pending[record.ref.id]
        for _, _, done in batch:
            done.set()
            self._queue.task_done()
