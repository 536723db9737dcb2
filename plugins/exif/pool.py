"""Bounded wall time per file: metadata parsing in killable worker processes.

Why processes: a thread cannot be stopped, so a parser stuck in a loop (or in native
code: libheif, libav, LibRaw) would hold its thread, and everything waiting on it,
forever. A process can be killed, and a segfault in native code kills only the worker.

Why our own small pool instead of ``concurrent.futures.ProcessPoolExecutor``: the
executor has no public way (before Python 3.14) to kill one hung worker; it can only
be shut down whole, and a crashed worker breaks the executor for every caller with
work in flight. Here each worker is one process and one pipe pair: a call that times
out or crashes kills and replaces only the worker it ran on, and callers on the other
workers never notice.

Workers are fresh interpreters running ``python -c`` that import this module and the
parsers, nothing else: not forked (the server forking while other threads hold locks
can deadlock the child), and not ``multiprocessing``'s "spawn", which re-imports the
program's main module, the whole server, in every worker (55 MB each). Starting one
costs about 0.1 s, paid once since workers are reused; each is retired after
``MAX_JOBS`` calls, so leaks in native libraries stay bounded, and after
``IDLE_SECONDS`` without work, so an idle server keeps no workers.

If no worker can be started at all (a sandbox that forbids processes), calls run in
the caller's process without a time limit, with a warning, so ingest keeps working.

A ``Pool`` belongs to whoever made it (the exif plugin makes one per kernel and closes
it in ``on_shutdown``); nothing here is global. A worker imports this module by its
full name (``__name__``) and the parsers relative to it, so the plugin works under
whatever name its package is imported.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .model import ExifData, ExtractError

log = logging.getLogger(__name__)

#: One worker per eight cores, one or two in all. A worker reads a 24 MP JPEG's metadata
#: in 0.4 ms, a HEIC's in 6.5, a NEF's in 20 and a 1080p clip's in 32, while a render
#: thread takes 60-70 ms for the JPEG's thumbnail alone: one worker keeps up with eight
#: render threads. A second one on a small machine only held 20 MB more during ingest
#: and took a core's share from the renders (``imageapi scan --full`` of 200 JPEGs on two
#: cores: 9.9 s with one worker, 10.6 s with two).
MAX_WORKERS = max(1, min(2, (os.cpu_count() or 1) // 8))
MAX_JOBS = 1000
IDLE_SECONDS = 60.0
STARTUP_TIMEOUT = 60.0


def worker_main(read_fd: int, write_fd: int) -> None:
    """A worker's main loop: run each requested call, send back its result or its error.

    The parsers are imported once, before "ready"; the calls arrive pickled by name.
    """
    conn = Connection(read_fd, writable=False)
    out = Connection(write_fd, readable=False)
    from . import extract  # noqa: F401

    out.send(("ready", None))
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
        out.send(reply)


class _Worker:
    """One worker process and the two pipes to it."""

    def __init__(self) -> None:
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        code = f"import {__name__} as pool; pool.worker_main({child_reads}, {child_writes})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=(child_reads, child_writes),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
        self.conn = Connection(parent_writes, readable=False)
        self.replies = Connection(parent_reads, writable=False)
        self.jobs = 0
        self.idle_since = 0.0
        if not self.replies.poll(STARTUP_TIMEOUT) or self.replies.recv()[0] != "ready":
            self.kill()
            raise RuntimeError("metadata worker did not start")

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        self.conn.send((func, args))
        if not self.replies.poll(timeout):
            raise TimeoutError
        status, value = self.replies.recv()
        self.jobs += 1
        if status == "error":
            raise ExtractError(value)
        return value

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        self.conn.close()
        self.replies.close()


class Pool:
    """Up to ``size`` worker processes, started on first use and reused.

    A worker left idle for ``idle_seconds`` is stopped (a timer thread runs only while
    some worker is idle). ``shutdown`` stops the idle workers at once; a busy one is
    stopped when its call returns or times out. A call made after ``shutdown`` still
    works (on a worker started for it and stopped after it), so a straggler never hangs
    or fails a file.
    """

    def __init__(self, size: int = MAX_WORKERS, idle_seconds: float = IDLE_SECONDS) -> None:
        self.size = size
        self.idle_seconds = idle_seconds
        self.idle: list[_Worker] = []
        self.live = 0
        self.cond = threading.Condition()
        self.broken = False
        self.closed = False
        self._timer: threading.Timer | None = None

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
                worker.idle_since = time.monotonic()
                self.idle.append(worker)
                self._schedule_retirement(self.idle_seconds)
            else:
                self.live -= 1
            self.cond.notify()

    def _schedule_retirement(self, delay: float) -> None:
        """Called with ``cond`` held: make sure a timer will look at the idle workers."""
        if self._timer is None:
            self._timer = threading.Timer(max(delay, 0.01), self._retire_idle)
            self._timer.daemon = True
            self._timer.start()

    def _retire_idle(self) -> None:
        now = time.monotonic()
        with self.cond:
            self._timer = None
            stale = [w for w in self.idle if now - w.idle_since >= self.idle_seconds]
            self.idle = [w for w in self.idle if w not in stale]
            self.live -= len(stale)
            if self.idle:
                oldest = min(w.idle_since for w in self.idle)
                self._schedule_retirement(oldest + self.idle_seconds - now)
            self.cond.notify_all()
        for worker in stale:
            worker.kill()

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
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for worker in idle:
            worker.kill()
