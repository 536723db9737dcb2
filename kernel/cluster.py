"""Several processes on several machines over one PostgreSQL: who scans, who is alive.

- ``ScanLock``: exactly one process scans and watches the libraries. On PostgreSQL it is
  a session advisory lock held on a connection of its own: the server drops it when that
  connection ends, which ``kill -9`` does at once and a dead machine does once TCP
  keepalive gives up (about 25 s with the settings below). The holder checks its
  connection every few seconds and stops scanning when it is gone. On SQLite it is the
  ``flock`` of ``kernel.background`` (one machine).
- ``Heartbeat``: every process records (host, pid, what it runs, last heartbeat) in
  ``workers`` every ``heartbeat_seconds`` and renews its claims' leases in the same
  thread; ``GET /health`` lists the processes seen within three heartbeats.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.pool import NullPool

from kernel.claims import Claims
from kernel.db import Database
from kernel.tables import workers

log = logging.getLogger(__name__)
HOST = socket.gethostname()
SCAN_LOCK_KEY = 0x696D_6167_6561_7069 & 0x7FFF_FFFF_FFFF_FFFF  # "imageapi", as a bigint
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def new_owner() -> str:
    """A name for this process that no other process, here or elsewhere, ever had."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


class ScanLock:
    """A PostgreSQL session advisory lock: the right to scan and watch the libraries."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, poolclass=NullPool, connect_args=KEEPALIVE)
        self._conn: Any = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": SCAN_LOCK_KEY}
            ).scalar_one()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def alive(self) -> bool:
        """Is the lock still ours (its connection still up)? A lost one is let go."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("the scan lock's database connection is gone; scanning stops here")
            self.release()
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: the server has dropped the lock with it
                log.debug("closing a broken scan-lock connection", exc_info=True)

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


class Heartbeat:
    """The registry row of this process, and the thread renewing it and its leases."""

    def __init__(self, db: Database, claims: Claims, interval: float) -> None:
        self.db = db
        self.claims = claims
        self.interval = interval
        self.roles: list[str] = []
        self.started_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        now = time.time()
        values = {
            "host": HOST,
            "pid": os.getpid(),
            "roles": json.dumps(sorted(set(self.roles))),
            "started_at": self.started_at,
            "heartbeat_at": now,
        }
        insert = self.db.insert(workers).values(owner=self.claims.owner, **values)
        with self.db.write() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=["owner"], set_=values))
            # rows of processes silent for a long time (a day) are history, not workers
            conn.execute(delete(workers).where(workers.c.heartbeat_at < now - 86400))

    def start(self) -> None:
        """Beat now and every ``interval`` seconds (PostgreSQL only)."""
        if not self.claims.shared or self._thread is not None:
            return
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="imageapi-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        renew_every = min(self.interval, self.claims.lease_seconds / 3)
        last_beat = time.monotonic()
        while not self._stop.wait(renew_every):
            try:
                self.claims.renew()
                if time.monotonic() - last_beat >= self.interval:
                    self.beat()
                    last_beat = time.monotonic()
            except Exception:  # the database is away for a moment: try again next time
                log.warning("heartbeat failed; retrying", exc_info=True)

    def stop(self) -> None:
        """Stop beating, give the leases back and leave the registry."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        try:
            self.claims.release_all()
            with self.db.write() as conn:
                conn.execute(delete(workers).where(workers.c.owner == self.claims.owner))
        except Exception:
            log.warning("could not leave the worker registry", exc_info=True)

    def recent(self) -> list[dict[str, Any]]:
        """The processes that beat within the last three intervals, oldest first."""
        since = time.time() - 3 * self.interval
        query = select(workers).where(workers.c.heartbeat_at >= since)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(workers.c.started_at)).all()
        return [
            {
                "host": r.host,
                "pid": r.pid,
                "roles": json.loads(r.roles),
                "started_at": r.started_at,
                "heartbeat_at": r.heartbeat_at,
            }
            for r in rows
        ]
