"""``imageapi serve --workers N``: N serving processes, each listening on BIND_URL with a
socket of its own, and the small process that watches them.

uvicorn's own supervisor gives every worker one shared listening socket, and the worker
that is awake when a burst of connections arrives accepts the whole burst: under the
mixed benchmark's 64 keep-alive connections one process held 40-44 of them and the other
20-24 (each of a route's 12 on the same one), and requests on the busy one waited
twice as long. Here each worker binds a socket of its own with ``SO_REUSEPORT`` and the
operating system spreads new connections over them by address.

The supervisor is a fresh interpreter that imports no application (``serve`` loads one to
migrate and then execs into this): it starts the workers, starts a new one when one
dies, and on SIGTERM, SIGINT or SIGHUP stops them all, with SIGKILL for any still
running after ``STOP_GRACE_SECONDS``. The workers stop by themselves when it is killed
(``kernel.background.stop_with_parent``).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger("imageapi.supervisor")

WORKER_CODE = "from kernel.supervisor import serve_worker; serve_worker()"
STOP_GRACE_SECONDS = 30.0
POLL_SECONDS = 0.2
#: a worker that dies this soon after it started, this many times running, is not
#: started again: it cannot start at all (a bad setting, a port taken by another program)
QUICK_DEATH_SECONDS, QUICK_DEATHS = 10.0, 5
BACKLOG = 2048  # uvicorn's default
STARTUP_FAILURE = 3  # uvicorn's exit status when the app cannot start


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes may bind too (``SO_REUSEPORT``);
    uvicorn calls ``listen`` on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def serve_worker() -> None:
    """One serving process: its own socket on BIND_URL, the app of ``worker_app``."""
    import uvicorn

    from kernel.config import load_config

    config = load_config()
    sock = listening_socket(config.bind_host, config.bind_port)
    server = uvicorn.Server(
        uvicorn.Config(
            "kernel.cli:worker_app",
            factory=True,
            log_level=config.log_level.lower(),
            backlog=BACKLOG,
        )
    )
    # Ctrl-C reaches the whole process group; uvicorn raises it again once it has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


class Supervisor:
    def __init__(self, workers: int) -> None:
        self.size = workers
        self.running: dict[subprocess.Popen[bytes], float] = {}  # process: started at
        self.stopping = False
        self.quick_deaths = 0

    def _start_one(self) -> None:
        process = subprocess.Popen([sys.executable, "-c", WORKER_CODE])
        self.running[process] = time.monotonic()
        log.info("started serving process %d", process.pid)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("%s: stopping the serving processes", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        """Supervise until a signal says stop (0) or the processes cannot start (1)."""
        # SIGINT too even when inherited ignored (a background job of a script): the
        # serving processes stop on it whatever, and restarting them would never end.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # ``nohup`` ignores it
            signal.signal(signal.SIGHUP, self._on_signal)
        try:
            for _ in range(self.size):
                self._start_one()
            while not self.stopping:
                time.sleep(POLL_SECONDS)
                if not self._replace_ended():
                    return 1
            return 0
        finally:
            self._stop_all()

    def _replace_ended(self) -> bool:
        """Start a process for each that ended; False when they cannot start at all."""
        for process, started in list(self.running.items()):
            status = process.poll()
            if status is None or self.stopping:
                continue
            del self.running[process]
            quick = time.monotonic() - started < QUICK_DEATH_SECONDS
            self.quick_deaths = self.quick_deaths + 1 if quick else 0
            if status == STARTUP_FAILURE or self.quick_deaths >= QUICK_DEATHS:
                log.error("serving process %d could not start (exit %s); stopping",
                          process.pid, status)  # fmt: skip
                return False
            log.warning("serving process %d ended (exit %s); starting another",
                        process.pid, status)  # fmt: skip
            self._start_one()
        return True

    def _stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.running:
            try:
                status = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("serving process %d did not stop; killing it", process.pid)
                process.kill()
                process.wait()
                continue
            if status not in (0, -signal.SIGTERM):  # it had ended before it was told to
                log.warning("serving process %d had ended (exit %s)", process.pid, status)


def main(workers: int) -> None:
    """Check that BIND_URL can be listened on, then supervise ``workers`` processes."""
    from kernel.config import LOG_FORMAT, load_config

    config = load_config()
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)
    host, port = config.bind_host, config.bind_port
    if _answers(host, port):  # SO_REUSEPORT would let two servers share the port
        sys.exit(f"cannot listen on {host}:{port}: something is listening there already")
    try:
        listening_socket(host, port).close()
    except OSError as exc:
        sys.exit(f"cannot listen on {host}:{port}: {exc.strerror}")
    shown = f"[{host}]" if ":" in host else host
    log.info("serving on http://%s:%d with %d processes (Ctrl-C to stop)", shown, port, workers)
    sys.exit(Supervisor(workers).run())


def _answers(host: str, port: int) -> bool:
    """Whether something accepts connections on (host, port) already (for a wildcard
    host, on the loopback address)."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        socket.create_connection((target, port), timeout=1).close()
    except OSError:
        return False
    return True
