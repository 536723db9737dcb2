"""Files beside a SQLite database that imageapi's processes share: the wal-index header
SQLite keeps in ``<database>-shm`` (read to see a commit by anyone), and
``<database>-writers``, the lock imageapi's writers queue on.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

# The two copies of the wal-index header at the start of ``<database>-shm`` (48 bytes
# each; https://www.sqlite.org/walformat.html): every commit rewrites them.
WAL_INDEX_HEADERS = 96
# A writer waiting for another process's write tries again after this long, doubling
# the pause up to the longest: most writes hold the lock a millisecond or two.
FIRST_PAUSE, LONGEST_PAUSE = 0.0001, 0.002


def _file_of(database: str | None) -> str | None:
    in_memory = not database or database == ":memory:" or database.startswith("file:")
    return None if in_memory else database


class WalIndex:
    """The wal-index header of a SQLite database in WAL mode, mapped read-only from its
    ``-shm`` file: every commit, by any connection of any process, rewrites it before the
    commit is visible to readers, so while its bytes are unchanged the data is too.

    A header read while a commit writes it reads as changed (its two copies are written
    one after the other), and a changed header only costs a read of the pragma. Mapped
    on first use, once SQLite has made the file; ``header()`` is None until then and for
    a database that is not in WAL mode."""

    def __init__(self, database: str | None) -> None:
        file = _file_of(database)
        self._path = None if file is None else f"{file}-shm"
        self._map: mmap.mmap | None = None
        self._tried = 0.0

    def header(self) -> bytes | None:
        if self._map is None:
            if self._path is None or time.monotonic() - self._tried < 1.0:
                return None
            self._tried = time.monotonic()
            try:
                fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                return None
            try:
                if os.fstat(fd).st_size < WAL_INDEX_HEADERS:
                    return None
                self._map = mmap.mmap(fd, WAL_INDEX_HEADERS, access=mmap.ACCESS_READ)
            finally:
                os.close(fd)
        try:
            return self._map[:WAL_INDEX_HEADERS]
        except ValueError:  # closed meanwhile (``close``)
            return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class WriterLock:
    """An exclusive ``flock`` on ``<database>-writers``, held by every imageapi process
    around a write transaction on SQLite.

    SQLite's own write lock makes a second process's writer poll: its busy handler
    sleeps 1, 2, 5, 10 ... up to 100 ms between tries, however soon the lock is free.
    Two serving processes under a mixed load waited in ``BEGIN IMMEDIATE`` up to 109 ms
    (p99 20-55 ms) for transactions that held the lock about a millisecond, and every
    other writer of the waiting process queued behind it. Here a waiting writer tries
    again after 0.1 ms, then twice as long each time up to 2 ms. Writers that do not take
    it (the ``sqlite3`` shell) still meet SQLite's lock and busy timeout as before. A
    process that dies holding it lets it go with its descriptors; one that holds it and
    stops (a command suspended with Ctrl-Z, a debugger) is waited for ``wait_seconds``,
    then writers go on without it, under SQLite's lock and busy timeout alone.
    """

    def __init__(self, database: str | None, wait_seconds: float) -> None:
        file = _file_of(database)
        self.path = None if file is None else f"{file}-writers"
        self.wait_seconds = wait_seconds
        self._fd: int | None = None
        self._pid = 0  # the process that opened ``_fd`` (a forked child opens its own)
        self._state = threading.Lock()
        self._holding = False
        self._closed = False

    def _descriptor(self) -> int | None:
        with self._state:
            if self._fd is not None and self._pid == os.getpid():
                return self._fd
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # type: ignore[arg-type]
            except OSError as exc:  # a read-only folder: SQLite's lock alone, as before
                log.debug("no writers' lock at %s: %s", self.path, exc)
                self.path = None
                return None
            self._fd, self._pid, self._closed = fd, os.getpid(), False
            return fd

    def _take(self, fd: int) -> bool:
        """Take the lock, waiting at most ``wait_seconds``; False when it stayed taken."""
        deadline = time.monotonic() + self.wait_seconds
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.warning("%s held for over %g s; writing under SQLite's lock alone",
                                self.path, self.wait_seconds)  # fmt: skip
                    return False
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block (a no-op for an in-memory database). Callers hold
        their process's own writer lock first: threads share one descriptor, and a
        ``flock`` does not keep them from each other."""
        fd = None if self.path is None else self._descriptor()
        if fd is None or not self._take(fd):
            yield
            return
        self._holding = True
        try:
            yield
        finally:
            with self._state:
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._holding = False
                if self._closed:  # ``close`` came while this block ran
                    self._close_descriptor()

    def _close_descriptor(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def close(self) -> None:
        """Close the descriptor now, or when the write holding the lock ends."""
        with self._state:
            self._closed = True
            if not self._holding:
                self._close_descriptor()
