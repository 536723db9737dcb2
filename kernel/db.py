"""The database: one SQLAlchemy engine, SQLite by default, PostgreSQL by URL.

SQLite is tuned for a server with many readers and a few writers: WAL journal, a busy
timeout, foreign keys on every connection, and write transactions that start with
``BEGIN IMMEDIATE`` behind a process-wide lock, so twenty concurrent writers queue up
instead of one of them surfacing "database is locked".
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from kernel.sqlite_files import WalIndex, WriterLock

_WRITE_OPTION = "imageapi_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Reads through a memory map share the OS page cache between pooled connections instead
# of copying pages into each connection's cache: heavy listings run 15-25 % faster at
# 100,000 files. But every connection maps the file on its own, so RSS counts the same
# cached pages once per connection (1.3 GB for two serving processes after 20 s of
# listings, against 0.33 GB without), and container limits and ``top`` read RSS. Off by
# default; ``[kernel] sqlite_mmap_mb`` turns it on.
SQLITE_MMAP_MB = 0
VERSION_READ_SECONDS = 0.001
SQLITE_CACHE_MB = 2  # per connection (private memory; the OS page cache does the rest)
Built = TypeVar("Built")
POSTGRESQL_DEFAULT_RANDOM_PAGE_COST = 4.0
POSTGRESQL_RANDOM_PAGE_COST = 1.1  # what PostgreSQL's docs suggest for SSDs and cached data


def _configure_sqlite(engine: Engine, mmap_mb: int, cache_mb: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite's own
        # implicit BEGIN would defeat BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA mmap_size = {mmap_mb << 20}")
        cursor.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # PostgreSQL's default random_page_cost (4.0) models spinning disks; a photo
        # library's index lives in RAM or on SSD, and at 4.0 the planner scans all of
        # ``files`` to join 1,600 dated matches (26 ms instead of 9). An operator's own
        # setting (anything but the default) is left alone.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SHOW random_page_cost")
            if float(cursor.fetchone()[0]) == POSTGRESQL_DEFAULT_RANDOM_PAGE_COST:
                cursor.execute(f"SET random_page_cost = {POSTGRESQL_RANDOM_PAGE_COST}")
        dbapi_connection.commit()


class Database:
    """Engine plus the two ways the kernel and plugins use it: ``read()`` and ``write()``."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        mmap_mb: int = SQLITE_MMAP_MB,
        cache_mb: int = SQLITE_CACHE_MB,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        memory = False
        if self.is_sqlite:
            memory = url in ("sqlite://", "sqlite:///:memory:")
            options: dict[str, Any] = (
                {"poolclass": StaticPool} if memory else {"pool_size": 8, "max_overflow": 16}
            )
            self.engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False}, **options
            )
            _configure_sqlite(self.engine, mmap_mb, cache_mb)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)
            _configure_postgresql(self.engine)
        self._write_lock = threading.Lock()
        self._reading = threading.local()  # the read transaction open in this thread
        self._prepared: dict[Any, Any] = {}  # by build function, or (table, key) for upsert
        self._memory = memory
        self._version_lock = threading.Lock()
        self._row_sql: dict[tuple[Any, ...], str] = {}  # ``row_now``'s statements
        self._version_connection: Any = None
        self._version_read: tuple[float, int] | None = None
        database_file = self.engine.url.database if self.is_sqlite else None
        self._wal_index = WalIndex(database_file)
        self._writers = WriterLock(database_file, SQLITE_BUSY_TIMEOUT_MS / 1000)
        self._version_seen: tuple[bytes, int] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (a consistent snapshot under WAL).

        Reentrant within a thread: a ``read()`` inside another one shares its connection
        and snapshot, so the plugins answering one listing in one worker thread (see
        ``Dispatcher.acollect``) pay one ``BEGIN`` between them and see the same data."""
        open_read = getattr(self._reading, "connection", None)
        if open_read is not None:
            yield open_read
            return
        with self.engine.connect() as connection, connection.begin():
            self._reading.connection = connection
            try:
                yield connection
            finally:
                self._reading.connection = None

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error.

        On SQLite, writers in this process take turns on a lock, writers of all imageapi
        processes on the database's ``WriterLock``, and the transaction takes the
        database's write lock up front, so it cannot fail half-way with "locked".
        """
        if not self.is_sqlite:
            with self.engine.begin() as connection:
                yield connection
            return
        with self._write_lock, self.engine.connect() as connection, self._writers.held():
            connection = connection.execution_options(**{_WRITE_OPTION: True})
            transaction = self._begin_immediate(connection)
            try:
                yield connection
            except BaseException:
                transaction.rollback()
                raise
            transaction.commit()
            self._version_read = None  # this process's own commit: read the counter again

    @staticmethod
    def _begin_immediate(connection: Connection) -> Any:
        # busy_timeout covers other processes (a CLI scan beside the server); retry the
        # BEGIN itself a few times in case a long writer outlasts it.
        delay = 0.05
        for attempt in range(8):
            try:
                return connection.begin()
            except OperationalError:
                if attempt == 7:
                    raise
                connection.rollback()
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def insert(self, table: Table) -> Any:
        """A dialect INSERT supporting ``on_conflict_do_nothing/do_update``."""
        module = sqlite if self.is_sqlite else postgresql
        return module.insert(table)

    def upsert(self, table: Table, key: str) -> Any:
        """The INSERT of ``table`` rows that replaces the other columns (all but the
        primary key) of a row whose ``key`` exists already, built once per database and
        table: building it (the ``excluded`` columns) cost more than writing a batch of
        EXIF rows."""
        found = self._prepared.get((table, key))
        if found is None:
            statement = self.insert(table)
            others = {
                c.name: statement.excluded[c.name]
                for c in table.c
                if c.name != key and not c.primary_key
            }
            found = statement.on_conflict_do_update(index_elements=[key], set_=others)
            self._prepared[(table, key)] = found
        return found

    def among(
        self, column: Any, ids: Sequence[Any] | BindParameter[Any], *, texts: bool = False
    ) -> ColumnElement[bool]:
        """``column IN ids`` with the ids bound as ONE parameter (a JSON array on SQLite,
        an array on PostgreSQL), so the statement compiles once for any number of ids: a
        page of thousands (memories) spent longer rendering its ``IN`` list than running it,
        and no list of any length meets a driver's parameter limit. On PostgreSQL the array
        is bound as its text, ``{1,2,3}``: psycopg dumps a list element by element in
        Python (6 ms for the 8,000 ids of a month of memories, against 1 ms).

        ``ids`` may be ``ids_param()`` instead, in a statement built once (``prepared``)
        and given ``ids_value(ids)`` when it runs. ``texts``: the values are strings
        (content hashes), not integers."""
        if not isinstance(ids, BindParameter):
            ids = literal(self.ids_value(ids, texts=texts), Text)
        if not self.is_sqlite:
            return column == any_(cast(ids, postgresql.ARRAY(Text if texts else Integer)))
        values = func.json_each(ids).table_valued("value")
        return column.in_(select(values.c.value))

    @staticmethod
    def ids_param(name: str = "ids") -> BindParameter[str]:
        """The parameter ``among`` binds a list of ids to, for a statement built once."""
        return bindparam(name, type_=Text)

    def ids_value(self, ids: Iterable[Any], *, texts: bool = False) -> str:
        """What an ``ids_param`` is given: the values as a JSON array on SQLite, as the
        text of an array on PostgreSQL (strings quoted, for ``texts``)."""
        if texts:
            values = list(map(str, ids))
            if self.is_sqlite:
                return json.dumps(values)
            quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
            return "{" + ",".join(f'"{v}"' for v in quoted) + "}"
        listed = ",".join(map(str, map(int, ids)))  # integers: the same text in both
        return f"[{listed}]" if self.is_sqlite else f"{{{listed}}}"

    def prepared(self, build: Callable[[Database], Built]) -> Built:
        """``build(self)``, made once for this database and kept (keyed by the function).

        Building a Core statement and finding its compiled form again cost as much as
        running it: of the 520 µs the tags of a page of 100 took, 260 went to that. A
        statement whose values are all parameters (``ids_param``, ``bindparam``) is built
        once per database (the dialect decides its shape) and run with its values."""
        found = self._prepared.get(build)
        if found is None:
            found = self._prepared[build] = build(self)
        return found

    def data_version(self, conn: Connection) -> Any:
        """A token that differs once anybody — this process or another — has committed.

        Call it before the first read of a transaction whose results you keep; a result
        is good for as long as the token is equal. None means "unknown: do not keep".
        SQLite: ``PRAGMA data_version`` on a connection of its own that never writes, so
        every commit is another connection's. PostgreSQL: the transaction snapshot
        (xmin:xmax:running xids); equal snapshots see the same committed data.
        """
        if not self.is_sqlite:
            return conn.exec_driver_sql("SELECT txid_current_snapshot()::text").scalar_one()
        return self.local_version()

    def local_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version`` outside any transaction: a token that moves
        with every commit, cheap enough for the event loop, so a per-process cache can
        check it on every request. None on PostgreSQL (a snapshot is a round trip) and
        for an in-memory database (one shared connection: its own commits do not move
        the counter).

        The pragma is read again only once the wal-index header (``WalIndex``) has
        changed: any process's commit rewrites it, and reading it is a memory read where
        the pragma costs a read lock (four ``fcntl`` and four ``stat`` calls). Without
        the header (not in WAL mode), a value read less than ``VERSION_READ_SECONDS`` ago
        is given again, except after a commit of this process."""
        if self._memory or not self.is_sqlite:
            return None
        # mapped only while this process holds a connection on the file: SQLite truncates
        # the ``-shm`` file (a fault for a mapping) only when no process has it open
        header = self._wal_index.header() if self._version_connection is not None else None
        if header is not None:
            seen = self._version_seen
            if seen is not None and seen[0] == header:
                return seen[1]
            version = self._data_version_now()
            self._version_seen = (header, version)  # the header read before the pragma
            return version
        now = time.monotonic()
        read = self._version_read
        if read is not None and now - read[0] < VERSION_READ_SECONDS:
            return read[1]
        version = self._data_version_now()
        self._version_read = (now, version)
        return version

    def _data_version_now(self) -> int:
        return int(self._read_aside("PRAGMA data_version", ())[0][0])

    def row_now(
        self, columns: Sequence[Column[Any]], row_id: int, condition: str = ""
    ) -> tuple[Any, ...] | None:
        """``columns`` of the row whose ``id`` is ``row_id`` (and that meets the SQL
        ``condition``), read at once on the caller's thread through the connection
        ``local_version`` reads with: a check on the request path that costs less than
        the worker-thread hop a ``read()`` would take. It runs outside any transaction
        and, SQLite being in WAL mode, never waits for a writer. None when there is no
        such row, and where ``local_version`` is None (PostgreSQL, in-memory): unknown."""
        if self._memory or not self.is_sqlite:
            return None
        key = (tuple(columns), condition)
        sql = self._row_sql.get(key)
        if sql is None:
            names = ", ".join(column.name for column in columns)
            where = f" AND {condition}" if condition else ""
            sql = self._row_sql[key] = (
                f"SELECT {names} FROM {columns[0].table.name} WHERE id = ?{where}"
            )
        rows = self._read_aside(sql, (row_id,))
        return tuple(rows[0]) if rows else None

    def _read_aside(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._version_lock:
            if self._version_connection is None:
                self._version_connection = self.engine.raw_connection()
            cursor = self._version_connection.cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchall()
            finally:
                cursor.close()  # the statement ends: no read snapshot stays open

    def dispose(self) -> None:
        self._wal_index.close()
        self._writers.close()
        with self._version_lock:
            if self._version_connection is not None:
                self._version_connection.close()
                self._version_connection = None
        self.engine.dispose()
