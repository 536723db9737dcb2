"""Bounded wall time per file: metadata parsing in killable worker processes.

Why processes: a thread cannot be stopped, so a parser stuck in a loop (or in native
code: libheif, libav, LibRaw) would hold its thread, and everything waiting on it,
forever. A process can be killed, and a segfault in native code kills only the worker.

Why our own small pool instead of ``concurrent.futures.ProcessPoolExecutor``: the
executor has no public way (before Python 3.14) to kill one hung worker; it can only
be shut down whole, and a crashed worker breaks the executor for every caller with
work in flight. Here each worker is one ``Process`` and one ``Pipe``: a call that
times out or crashes kills and replaces only the worker it ran on, and callers on the
other workers never notice.

Workers are started with "spawn", not "fork": the server forking while other threads
hold locks (logging, the database driver, the event loop) can deadlock the child.
Spawning costs 0.1-0.3 s per worker, paid once, since workers are reused; each is
retired after ``MAX_JOBS`` calls so leaks in native libraries stay bounded. As with
any "spawn" user, the program's main module must be safe to import (the usual
``if __name__ == "__main__"`` guard; console-script entry points already are).

If no worker can be started at all (a sandbox that forbids processes), calls run in
the caller's process without a time limit, with a warning, so ingest keeps working.

A ``Pool`` belongs to whoever made it (the exif plugin makes one per kernel and closes
it in ``on_shutdown``); nothing here is global. A worker unpickles ``_serve`` by this
module's full name and imports the parsers relative to it, so the plugin works under
whatever name its package is imported.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .model import ExifData, ExtractError

log = logging.getLogger(__name__)

MAX_WORKERS = max(1, min(2, os.cpu_count() or 1))
MAX_JOBS = 1000
STARTUP_TIMEOUT = 60.0

_CTX = multiprocessing.get_context("spawn")


def _serve(conn: Connection) -> None:
    """Worker main loop: run each requested call, send back its result or its error.

    The spawned interpreter imported this module by its full name to unpickle ``_serve``;
    the parsers are imported relative to it, once, before "ready".
    """
    from . import extract  # noqa: F401

    conn.send(("ready", None))
    while True:
        try:
            func, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", func(*args))
        except ExtractError as exc:
            reply = ("error", str(exc))
        except BaseException as exc:
            reply = ("error", f"metadata reader failed: {exc!r}")
        conn.send(reply)


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self) -> None:
        self.conn, child = _CTX.Pipe()
        self.proc = _CTX.Process(target=_serve, args=(child,), name="imageapi-exif", daemon=True)
        self.proc.start()
        child.close()
        self.jobs = 0
        if not self.conn.poll(STARTUP_TIMEOUT) or self.conn.recv()[0] != "ready":
            self.kill()
            raise RuntimeError("metadata worker did not start")

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        self.conn.send((func, args))
        if not self.conn.poll(timeout):
            raise TimeoutError
        status, value = self.conn.recv()
        self.jobs += 1
        if status == "error":
            raise ExtractError(value)
        return value

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Pool:
    """Up to ``size`` worker processes, started on first use and reused.

    ``shutdown`` stops the idle workers at once; a busy one is stopped when its call
    returns or times out. A call made after ``shutdown`` still works (on a worker started
    for it and stopped after it), so a straggler never hangs or fails a file.
    """

    def __init__(self, size: int = MAX_WORKERS) -> None:
        self.size = size
        self.idle: list[_Worker] = []
        self.live = 0
        self.cond = threading.Condition()
        self.broken = False
        self.closed = False

    def _acquire(self) -> _Worker | None:
        with self.cond:
            while not self.idle and self.live >= self.size:
                self.cond.wait()
            if self.idle:
                return self.idle.pop()
            if self.broken:
                return None
            self.live += 1
        try:
            return _Worker()
        except Exception as exc:
            log.warning("cannot start a metadata worker, parsing in-process: %r", exc)
            with self.cond:
                self.live -= 1
                self.broken = True
                self.cond.notify()
            return None

    def _release(self, worker: _Worker, keep: bool) -> None:
        keep = keep and not self.closed
        if not keep:
            worker.kill()
        with self.cond:
            if keep:
                self.idle.append(worker)
            else:
                self.live -= 1
            self.cond.notify()

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        """Run ``func(*args)`` in a worker; ``func`` must be importable (pickled by name)."""
        worker = self._acquire()
        if worker is None:
            return func(*args)
        keep = False
        try:
            result = worker.call(func, args, timeout)
            keep = worker.jobs < MAX_JOBS
            return result
        except ExtractError:
            keep = True
            raise
        except TimeoutError:
            raise ExtractError(f"timed out after {timeout:g} s") from None
        except (EOFError, OSError) as exc:
            raise ExtractError("metadata reader crashed on this file") from exc
        finally:
            self._release(worker, keep)

    def extract(self, path: Path, media_type: str, mtime: float, timeout: float) -> ExifData:
        """``extract.extract`` in a worker, abandoned (and the worker killed) after
        ``timeout`` seconds; raises ``ExtractError`` for that too."""
        from .extract import extract

        result: ExifData = self.call(extract, (Path(path), media_type, mtime), timeout)
        return result

    def pids(self) -> list[int]:
        """The idle workers' process ids (for tests and diagnostics)."""
        with self.cond:
            return [w.proc.pid for w in self.idle if w.proc.pid is not None]

    def shutdown(self) -> None:
        """Stop the idle workers; busy ones stop when their call returns or times out."""
        with self.cond:
            self.closed = True
            idle, self.idle = self.idle, []
            self.live -= len(idle)
        for worker in idle:
            worker.kill()
