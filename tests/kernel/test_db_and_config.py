"""Database behaviour under concurrency, and configuration from the environment."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, insert, select

from kernel.config import ConfigError, load_config
from kernel.db import Database
from kernel.tables import users
from kernel.testing import harness

SECRET = "x" * 40


@pytest.mark.db
def test_twenty_concurrent_writers_never_see_locked(tmp_path):
    with harness(tmp_path) as h:
        db = h.kernel.db
        errors: list[Exception] = []
        start = threading.Barrier(20)

        def writer(n: int) -> None:
            start.wait()
            try:
                for i in range(15):
                    with db.write() as conn:
                        conn.execute(
                            insert(users).values(
                                username=f"w{n}-{i}", password_hash="x", created_at=time.time()
                            )
                        )
                        conn.execute(select(func.count()).select_from(users)).scalar_one()
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 301


def test_environment_names_from_the_reference(tmp_path):
    env = {
        "IMAGEAPI_DATA_DIR": str(tmp_path / "d"),
        "DATABASE_URL": str(tmp_path / "legacy.db"),
        "BASE_PATH": str(tmp_path),
        "THUMBNAILS": str(tmp_path / "t"),
        "VIDEO_PATH": str(tmp_path / "v"),
        "GIFS_DIRECTORY": str(tmp_path / "g"),
        "BIND_URL": "0.0.0.0:9090",
        "CORS_ALLOWED_ORIGINS": "http://a.example, http://b.example",
        "SECRET_KEY": SECRET,
        "EXCLUDED_DIRS": "/private,@eaDir",
        "WATCH_QUICK_INTERVAL_SECONDS": "5",
        "WATCH_FULL_INTERVAL_SECONDS": "50",
        "RUST_LOG": "debug",
    }
    config = load_config(env, env_file=None, config_file=tmp_path / "none.toml")
    assert config.database_url == f"sqlite:///{tmp_path / 'legacy.db'}"
    assert config.base_path == tmp_path
    assert config.env["THUMBNAILS"] == str(tmp_path / "t")  # for the plugins that own it
    assert not hasattr(config, "thumbnails")  # the kernel knows no plugin's folders
    assert (config.bind_host, config.bind_port) == ("0.0.0.0", 9090)
    assert config.cors_allowed_origins == ["http://a.example", "http://b.example"]
    assert config.excluded_dirs == ["/private", "@eaDir"]
    assert (config.watch_quick_interval, config.watch_full_interval) == (5, 50)
    assert config.log_level == "DEBUG"
    assert (
        load_config(
            {**env, "RUST_LOG": "image_api=warn,actix=info"},
            env_file=None,
            config_file=tmp_path / "none.toml",
        ).log_level
        == "WARNING"
    )


def test_defaults_need_no_configuration_and_keep_the_secret(tmp_path):
    env = {"IMAGEAPI_DATA_DIR": str(tmp_path / "data")}
    first = load_config(env, env_file=None, config_file=tmp_path / "none.toml")
    assert first.database_url == f"sqlite:///{tmp_path / 'data' / 'imageapi.db'}"
    assert first.data_dir == tmp_path / "data"
    assert len(first.secret_key) >= 32
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    second = load_config(env, env_file=None, config_file=tmp_path / "none.toml")
    assert second.secret_key == first.secret_key


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"SECRET_KEY={SECRET}\nBIND_URL=127.0.0.1:7000\nLOG_LEVEL=warning\n")
    env = {"IMAGEAPI_DATA_DIR": str(tmp_path), "BIND_URL": "127.0.0.1:7001"}
    config = load_config(env, env_file=dotenv, config_file=tmp_path / "none.toml")
    assert config.secret_key == SECRET
    assert config.bind_port == 7001
    assert config.log_level == "WARNING"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BIND_URL": "nonsense"}, "BIND_URL"),
        ({"WATCH_QUICK_INTERVAL_SECONDS": "soon"}, "WATCH_QUICK_INTERVAL_SECONDS"),
        ({"RUST_LOG": "loud"}, "log level"),
    ],
)
def test_bad_environment_is_a_clear_error(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(
            {"IMAGEAPI_DATA_DIR": str(tmp_path), **env},
            env_file=None,
            config_file=tmp_path / "none.toml",
        )


def test_plugins_toml_errors_name_the_section_and_key(tmp_path, library):
    cases = [
        ("[plugins.nosuch]\nenabled = true\n", "nosuch"),
        ("[kernel]\nupload_max_bytes = 'big'\n", r"\[kernel\]"),
        ("[surprise]\n", "unknown section"),
    ]
    for n, (toml, message) in enumerate(cases):
        with (
            pytest.raises(ConfigError, match=message),
            harness(tmp_path / str(n), plugins_toml=toml, library=library),
        ):
            pass


@pytest.mark.requires_plugins("hello")
def test_plugins_toml_errors_name_the_plugin_and_key(tmp_path, library):
    cases = [
        ('[plugins.hello]\ncolour = "red"\n', "plugin 'hello': unknown setting 'colour'"),
        ('[plugins.hello]\nenabled = "yes"\n', "'enabled' must be true or false"),
    ]
    for n, (toml, message) in enumerate(cases):
        with (
            pytest.raises(ConfigError, match=message),
            harness(tmp_path / str(n), ["hello"], plugins_toml=toml, library=library),
        ):
            pass


@pytest.mark.db
def test_more_libraries_from_plugins_toml(tmp_path, library):
    from kernel.testing import make_jpeg

    other = tmp_path / "family"
    make_jpeg(other / "mum.jpg")
    make_jpeg(library / "mine.jpg")
    toml = f'[[kernel.libraries]]\nid = 2\nname = "family"\npath = "{other}"\n'
    with harness(tmp_path, plugins_toml=toml) as h:
        h.scan()
        assert h.get("/libraries").json() == [
            {"id": 1, "name": "main"},
            {"id": 2, "name": "family"},
        ]
        assert h.get("/photos", params={"library": "family"}).json()["photos"] == ["mum.jpg"]
        assert h.get("/photos", params={"library": "2"}).json()["photos"] == ["mum.jpg"]
        assert h.get("/photos").json()["photos"] == ["mine.jpg"]
        assert h.get("/image", params={"path": "mum.jpg", "library": "2"}).status_code == 200
        assert h.get("/image", params={"path": "mum.jpg"}).status_code == 404


DEFAULT_MMAP_MB, DEFAULT_CACHE_MB = 0, 2


def test_the_sqlite_memory_map_and_cache_are_settings(tmp_path, library):
    """Each pooled connection maps the database file on its own (RSS counts the cached
    pages once per connection) and keeps its own page cache (private memory), so the
    operator chooses both."""

    def pragmas(kernel) -> tuple[int, int]:
        with kernel.db.read() as conn:
            mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
            return int(mapped), int(cache)

    with harness(tmp_path / "default", library=library) as h:
        assert pragmas(h.kernel) == (DEFAULT_MMAP_MB << 20, -DEFAULT_CACHE_MB * 1024)
    toml = "[kernel]\nsqlite_mmap_mb = 1024\nsqlite_cache_mb = 8\n"
    with harness(tmp_path / "set", library=library, plugins_toml=toml) as h:
        assert pragmas(h.kernel) == (1024 << 20, -8 * 1024)
    for n, bad in enumerate(("sqlite_mmap_mb = -1", "sqlite_cache_mb = 0")):
        with (
            pytest.raises(ConfigError, match=bad.split()[0]),
            harness(tmp_path / f"bad{n}", library=library, plugins_toml=f"[kernel]\n{bad}\n"),
        ):
            pass


@pytest.mark.db
def test_an_upsert_adds_or_replaces_every_other_column_and_is_built_once(tmp_path):
    """``Database.upsert``: rows whose key is new are added, rows whose key exists have
    every other column replaced, in one statement built once per database and table."""
    with harness(tmp_path) as h:
        db = h.kernel.db
        row = {"password_hash": "old", "token_version": 1, "created_at": 1.0}
        with db.write() as conn:
            conn.execute(db.upsert(users, "username"), [{"username": "ann", **row}])
        replaced = {"password_hash": "new", "token_version": 2, "created_at": 1.0}
        with db.write() as conn:
            conn.execute(
                db.upsert(users, "username"),
                [{"username": "ann", **replaced}, {"username": "bob", **row}],
            )
        with db.read() as conn:
            found = conn.execute(
                select(users.c.username, users.c.password_hash, users.c.token_version)
                .where(users.c.username.in_(["ann", "bob"]))
                .order_by(users.c.username)
            ).all()
        assert [tuple(r) for r in found] == [("ann", "new", 2), ("bob", "old", 1)]
        assert db.upsert(users, "username") is db.upsert(users, "username")


@pytest.mark.db
def test_a_prepared_statement_is_built_once_and_runs_with_each_call_s_ids(tmp_path):
    """``Database.prepared`` builds a statement once per database; with ``among`` over
    ``ids_param`` it answers any list of ids (none, one, many, unknown ones) correctly."""
    with harness(tmp_path) as h:
        db = h.kernel.db
        with db.write() as conn:
            for n in range(30):
                conn.execute(
                    insert(users).values(username=f"u{n}", password_hash="x", created_at=0.0)
                )
        with db.read() as conn:
            mine = select(users.c.id).where(users.c.username.like("u%")).order_by(users.c.id)
            ids = list(conn.execute(mine).scalars())
        built: list[object] = []

        def names_of(database):
            built.append(database)
            return select(users.c.username).where(database.among(users.c.id, db.ids_param()))

        def run(wanted: list[int]) -> list[str]:
            with db.read() as conn:
                rows = conn.execute(db.prepared(names_of), {"ids": db.ids_value(wanted)})
                return sorted(rows.scalars())

        assert run([]) == []
        assert run(ids[:1]) == ["u0"]
        assert run([*ids[5:8], 10**9]) == ["u5", "u6", "u7"]
        assert len(run(ids)) == 30
        assert built == [db]  # one statement for all four calls

        odd = 'say "cheese" \\ twice, {ok}'
        with db.write() as conn:
            conn.execute(insert(users).values(username=odd, password_hash="x", created_at=0.0))

        def ids_of(database):
            names = database.ids_param("names")
            return select(users.c.username).where(
                database.among(users.c.username, names, texts=True)
            )

        with db.read() as conn:
            wanted = {"names": db.ids_value(["u3", odd, "nobody"], texts=True)}
            assert sorted(conn.execute(db.prepared(ids_of), wanted).scalars()) == sorted(
                [odd, "u3"]
            )


def test_another_process_s_commit_moves_the_data_version_at_once(tmp_path):
    """The per-process caches follow ``Database.local_version``: a commit by another
    process (here another engine on the same file) is seen by the very next read, not up
    to a millisecond later, and reads between commits cost no query at all."""
    with harness(tmp_path) as h:
        db = h.kernel.db
        other = Database(db.url)
        try:
            for attempt in range(20):
                before = db.local_version()
                with other.write() as conn:
                    conn.execute(insert(users).values(username=f"u{attempt}", password_hash="x",
                                                      token_version=1, created_at=1.0))  # fmt: skip
                assert db.local_version() != before, f"commit {attempt} not seen"
            statements: list[str] = []
            raw = db._version_connection.driver_connection
            raw.set_trace_callback(statements.append)
            try:
                settled = db.local_version()
                time.sleep(0.01)
                assert [db.local_version() for _ in range(100)] == [settled] * 100
                assert statements == []
            finally:
                raw.set_trace_callback(None)
        finally:
            other.dispose()


def test_writers_of_every_process_queue_on_the_database_s_writers_lock(tmp_path):
    """A write waits while any imageapi process holds ``<database>-writers`` (here a
    descriptor of its own, as another process has) and goes on when it is let go: a
    writer blocked in ``flock`` wakes at once, where SQLite's busy handler naps up to
    100 ms between tries."""
    import fcntl
    import os

    with harness(tmp_path) as h:
        db = h.kernel.db
        if not db.is_sqlite:
            pytest.skip("PostgreSQL queues writers itself")
        other = os.open(f"{db.engine.url.database}-writers", os.O_RDWR | os.O_CREAT)
        done = threading.Event()

        def write() -> None:
            with db.write() as conn:
                conn.execute(insert(users).values(username="queued", password_hash="x",
                                                  token_version=1, created_at=1.0))  # fmt: skip
            done.set()

        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            writer = threading.Thread(target=write)
            writer.start()
            assert not done.wait(0.5), "wrote while another process held the writers' lock"
            fcntl.flock(other, fcntl.LOCK_UN)
            assert done.wait(30)
            writer.join()
        finally:
            os.close(other)
        with db.read() as conn:
            names = conn.execute(select(users.c.username)).scalars().all()
        assert "queued" in names


def test_a_writers_lock_held_too_long_is_waited_for_then_written_past(tmp_path, caplog):
    """A process that holds the writers' lock and stops (a command suspended with Ctrl-Z)
    is waited for as long as SQLite's busy timeout; then the write goes on under
    SQLite's own lock, with a warning, instead of waiting for ever."""
    import fcntl
    import logging
    import os

    from kernel.sqlite_files import WriterLock

    lock = WriterLock(str(tmp_path / "stuck.db"), wait_seconds=0.5)
    stuck = os.open(lock.path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(stuck, fcntl.LOCK_EX)
    wrote = threading.Event()

    def write() -> None:
        with lock.held():
            wrote.set()

    try:
        with caplog.at_level(logging.WARNING, logger="kernel.sqlite_files"):
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            assert wrote.wait(30), "still waiting for a lock nobody will let go"
            writer.join(30)
        assert "stuck.db-writers held for over 0.5 s" in caplog.text
    finally:
        os.close(stuck)
        lock.close()
