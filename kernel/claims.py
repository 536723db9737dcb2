"""Claims: one unit of background work, one process, on PostgreSQL.

Several worker processes (``imageapi worker``, on any number of machines) share one
PostgreSQL and the same library. Each plugin's state table stays the queue — a file is
in a plugin's backlog while its row is missing or stale — and this module adds who is
working on it: a row of ``claims`` (queue, key, owner, expires_at), the lease.

``take(queue, query, limit)`` picks up to ``limit`` rows of a plugin's backlog query
that nobody holds a live lease on, in one transaction: the candidate ``files`` rows are
read ``FOR UPDATE SKIP LOCKED`` (two workers claiming at the same moment get different
files instead of queueing behind each other), and the leases are written with
``INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now`` (a lease is taken over only
once it has expired). The claimer does the work, commits the plugin's row, then
``release``s the claim — in that order, so a claim anybody can take again is always
backed by a committed row that takes the file out of the backlog. Every process renews
all of its leases in one statement every third of the lease (``renew``, run by
``kernel.cluster``); a process killed with ``kill -9`` stops renewing and its files come
back to everybody after ``lease_seconds``. Expiry is the database server's clock, so
the machines' clocks do not have to agree.

On SQLite (one machine, one background process) nothing is written: ``take`` is the
backlog query with its limit, ``release`` and ``renew`` do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, literal_column, text

from kernel.db import Database
from kernel.tables import claims, files

log = logging.getLogger(__name__)
NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


class Claims:
    """The leases of one process (``owner``) on units of work, by queue name."""

    def __init__(
        self, db: Database, owner: str, lease_seconds: float, library_ids: Iterable[int] = ()
    ) -> None:
        self.db = db
        self.owner = owner
        self.lease_seconds = lease_seconds
        #: the configured libraries: rows of any other (a library taken out of the
        #: configuration keeps its rows) are nobody's work
        self.library_ids = sorted(library_ids)
        #: True on PostgreSQL: several processes may take work, so work is claimed
        self.shared = not db.is_sqlite

    def unclaimed(self, queue: str, key: Any = files.c.id) -> ColumnElement[bool]:
        """``key`` has no live lease in ``queue`` (a filter for a backlog query)."""
        live = exists().where(
            claims.c.queue == queue,
            claims.c.key == key,
            claims.c.expires_at > literal_column(NOW),
        )
        return ~live

    def take(
        self, queue: str, query: Select[Any], limit: int, *, key: Any = files.c.id
    ) -> list[Any]:
        """Rows of ``query`` (its ``key`` column names the unit) now leased to this process.

        ``query`` is the plugin's backlog query without its limit; on SQLite it is only
        run with ``limit``. ``key``'s table is the one locked ``SKIP LOCKED``. A query of
        ``files`` rows is kept to the configured libraries: the rows of a library taken
        out of the configuration would otherwise head every backlog, be claimed, dropped
        by ``FileIndex.refs`` and never released — and on SQLite fill every limit.
        """
        if self.library_ids and any(f is files for f in query.columns_clause_froms):
            query = query.where(files.c.library_id.in_(self.library_ids))
        if not self.shared:
            with self.db.read() as conn:
                return list(conn.execute(query.limit(limit)).all())
        candidates = (
            query.where(self.unclaimed(queue, key))
            .limit(limit)
            .with_for_update(of=key.table, skip_locked=True)
        )
        with self.db.write() as conn:
            rows = list(conn.execute(candidates).all())
            if not rows:
                return []
            wanted = [getattr(row, key.name) for row in rows]
            taken = set(
                conn.execute(
                    text(
                        "INSERT INTO claims (queue, key, owner, expires_at)"
                        f" SELECT :queue, k, :owner, {NOW} + :lease FROM unnest(:keys) AS k"
                        " ON CONFLICT (queue, key) DO UPDATE"
                        " SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at"
                        f" WHERE claims.expires_at <= {NOW}"
                        " RETURNING key"
                    ),
                    {
                        "queue": queue,
                        "owner": self.owner,
                        "lease": self.lease_seconds,
                        "keys": wanted,
                    },
                ).scalars()
            )
        return [row for row in rows if getattr(row, key.name) in taken]

    def take_one(self, queue: str, query: Select[Any], key_value: int) -> Any | None:
        """The row of ``query`` for one unit (``files.id == key_value``) if it is still in
        the backlog and now leased here; on SQLite, the row without a lease."""
        rows = self.take(queue, query.where(files.c.id == key_value), 1)
        return rows[0] if rows else None

    def release(self, queue: str, keys: Iterable[int]) -> None:
        """Drop this process's leases on ``keys`` (after their results are committed)."""
        if not self.shared:
            return
        wanted: Sequence[int] = list(keys)
        if not wanted:
            return
        with self.db.write() as conn:
            conn.execute(
                delete(claims).where(
                    claims.c.queue == queue,
                    claims.c.owner == self.owner,
                    self.db.among(claims.c.key, wanted),
                )
            )

    def renew(self) -> int:
        """Extend every lease this process holds; returns how many it holds."""
        if not self.shared:
            return 0
        with self.db.write() as conn:
            result = conn.execute(
                text(
                    f"UPDATE claims SET expires_at = {NOW} + :lease WHERE owner = :owner"
                ).bindparams(lease=self.lease_seconds, owner=self.owner)
            )
        return int(result.rowcount or 0)

    def release_all(self) -> None:
        """Give every lease back (an orderly shutdown: others need not wait for expiry)."""
        if self.shared:
            with self.db.write() as conn:
                conn.execute(delete(claims).where(claims.c.owner == self.owner))
