"""Which process does the background work when several serve one data directory.

``imageapi serve --workers N`` runs N processes on one port. Exactly one of them scans,
watches and catches up on every plugin's backlog; the others only serve (their
``Kernel.serve_only`` is True, which plugins with background work of their own read).
The one holding an exclusive ``flock`` on ``DATA_DIR/background.lock`` is it: the
operating system drops the lock with its process however that ends (``kill -9``
included), and each serving process tries to take it every ``TAKEOVER_SECONDS``, so
another one takes the work over within that time of its death.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)
TAKEOVER_SECONDS = 5.0
PARENT_CHECK_SECONDS = 1.0


class BackgroundLock:
    """An exclusive lock on a file, held from ``try_acquire`` until the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def stop_with_parent() -> None:
    """Shut this serving process down (SIGTERM to itself) once the process that started
    it is gone: a supervisor killed with ``kill -9`` cannot stop its children, which would
    go on holding the port and the background lock, so a restarted server could not
    start."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        log.warning("the supervising process %d is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="imageapi-parent-watch", daemon=True).start()
