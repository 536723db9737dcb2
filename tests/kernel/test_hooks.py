"""Every hook, exercised through a real app with an in-process test plugin.

The meta-tests at the bottom fail when a hookspec has no docstring, or no test named
``test_hook_<name>`` anywhere in the suite.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import click
import msgspec
import pytest
from click.testing import CliRunner
from litestar import get
from sqlalchemy import and_, exists, literal, select

from kernel import RenderResult, SearchFilter, SearchSort, Tool, hookimpl, hookspecs
from kernel.deps import CurrentUser
from kernel.tables import files
from kernel.testing import harness, make_jpeg
from kernel.types import InvalidParameter, ToolContext

pytestmark = pytest.mark.db
TESTS = Path(__file__).resolve().parents[1]


class Recorder:
    """A plugin that records what the kernel tells it (async and sync hooks mixed)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    async def on_file_discovered(self, file):
        self.events.append(("discovered", file.rel_path))

    @hookimpl
    def on_hashed(self, file, content_hash):
        assert file.content_hash == content_hash
        self.events.append(("hashed", file.rel_path))

    @hookimpl
    async def on_file_changed(self, file):
        self.events.append(("changed", file.rel_path))

    @hookimpl
    def on_file_removed(self, file):
        self.events.append(("removed", file.rel_path))

    @hookimpl
    async def on_startup(self, kernel):
        self.events.append(("startup", ""))

    @hookimpl
    def on_shutdown(self):
        self.events.append(("shutdown", ""))

    def of(self, kind: str) -> list[str]:
        return sorted(path for k, path in self.events if k == kind)


def test_hook_on_file_discovered(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "sub" / "b.jpg")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        assert rec.of("discovered") == ["a.jpg", "sub/b.jpg"]
        h.scan()  # nothing new: nothing announced twice
        assert rec.of("discovered") == ["a.jpg", "sub/b.jpg"]


def test_hook_on_hashed(tmp_path, library):
    make_jpeg(library / "a.jpg")
    (library / "fake.jpg").write_text("not a jpeg at all")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        report = h.scan()
        assert rec.of("hashed") == ["a.jpg"]  # the fake never reaches plugins
        assert report.failed == 1


def test_hook_on_file_changed(tmp_path, library):
    path = make_jpeg(library / "a.jpg")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        make_jpeg(path, size=(80, 60))
        h.scan()
        assert rec.of("changed") == ["a.jpg"]
        assert rec.of("hashed") == ["a.jpg", "a.jpg"]


def test_hook_on_file_removed(tmp_path, library):
    path = make_jpeg(library / "a.jpg")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        path.unlink()
        h.scan()
        assert rec.of("removed") == ["a.jpg"]
        assert h.get("/photos").json()["photos"] == []


def test_hook_on_startup(tmp_path):
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}):
        assert rec.of("startup") == [""]
    assert rec.of("shutdown") == [""]


def test_hook_on_shutdown(tmp_path):
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}):
        assert rec.of("shutdown") == []
    assert rec.of("shutdown") == [""]


def test_notification_failure_is_isolated(tmp_path, library, caplog):
    make_jpeg(library / "a.jpg")

    class Broken:
        @hookimpl
        def on_hashed(self, file):
            raise RuntimeError("boom")

    rec = Recorder()
    with harness(tmp_path, extra_plugins={"broken": Broken(), "rec": rec}) as h:
        h.scan()
    assert rec.of("hashed") == ["a.jpg"]
    assert "plugin broken failed in on_hashed" in caplog.text


def test_notification_timeout_is_isolated(tmp_path, library, caplog):
    make_jpeg(library / "a.jpg")

    class Slow:
        @hookimpl
        async def on_hashed(self, file):
            await asyncio.sleep(30)

    rec = Recorder()
    toml = "[kernel]\nhook_timeout_seconds = 0.2\n"
    with harness(tmp_path, extra_plugins={"slow": Slow(), "rec": rec}, plugins_toml=toml) as h:
        h.scan()
    assert rec.of("hashed") == ["a.jpg"]
    assert "plugin slow: on_hashed timed out" in caplog.text


def test_hook_drain_backlog(tmp_path, library):
    for n in range(5):
        make_jpeg(library / f"{n}.jpg")

    class Catcher:
        def __init__(self):
            self.done: set[int] = set()

        @hookimpl
        async def drain_backlog(self, kernel, limit):
            with kernel.db.read() as conn:
                ids = conn.execute(select(files.c.id).order_by(files.c.id)).scalars().all()
            todo = [i for i in ids if i not in self.done][:2]
            self.done.update(todo)
            return len(todo)

    catcher = Catcher()
    toml = "[kernel]\nbacklog_per_tick = 2\n"
    with harness(tmp_path, extra_plugins={"catch": catcher}, plugins_toml=toml) as h:
        h.scan()
        assert len(catcher.done) == 2
        assert h.run(h.kernel.scanner.drain_backlogs) == {"catch": 2}
        h.scan()
        assert len(catcher.done) == 5


def test_hook_routes(tmp_path):
    @get("/echo")
    async def echo(user: CurrentUser) -> dict:
        return {"user": user.username}

    class Routes:
        @hookimpl
        def routes(self):
            return [echo]

    with harness(tmp_path, extra_plugins={"routes": Routes()}) as h:
        assert h.get("/echo").json() == {"user": "tester"}
        assert h.client.get("/echo").status_code == 401


class AddParams(msgspec.Struct):
    a: int
    b: int = 1


def test_hook_tools(tmp_path):
    async def add(params: AddParams, ctx: ToolContext) -> int:
        return params.a + params.b

    class Tools:
        @hookimpl
        def tools(self):
            return [Tool("add", "Add two numbers.", AddParams, add)]

    with harness(tmp_path, extra_plugins={"tools": Tools()}) as h:
        tool = h.kernel.tools["add"]
        assert tool.plugin == "tools"
        schema = tool.json_schema()
        assert schema["required"] == ["a"] and schema["properties"]["a"]["type"] == "integer"
        ctx = ToolContext(h.kernel, None)
        assert asyncio.run(tool.invoke(b'{"a": 2, "b": 3}', ctx)) == 5
        with pytest.raises(msgspec.ValidationError):
            asyncio.run(tool.invoke({"a": "x"}, ctx))
        listed = h.get("/tools").json()
        assert listed == [{"plugin": "tools", **tool.to_openai()}]


class NameFilter:
    """A filter plugin: ``name_contains=`` and a sort by size."""

    @hookimpl
    def search_filters(self, query):
        value = query.get("name_contains")
        if query.params.get("name_contains") == "":
            raise InvalidParameter("name_contains", "may not be empty")
        if value is None:
            return None
        return SearchFilter(frozenset({"name_contains"}), [files.c.name.contains(value)])

    @hookimpl
    def search_sorts(self):
        return [
            SearchSort(
                "SizeDesc", lambda stmt, q, p: stmt.order_by(files.c.size.desc(), files.c.id)
            )
        ]

    @hookimpl
    def file_extras(self, files, user_id):
        return {f.id: {"shout": f.name.upper(), "asked_by": user_id} for f in files}


def test_hook_search_filters(tmp_path, library):
    make_jpeg(library / "cat.jpg")
    make_jpeg(library / "dog.jpg")
    with harness(tmp_path, extra_plugins={"nf": NameFilter()}) as h:
        h.scan()
        assert h.get("/photos", params={"name_contains": "do"}).json()["photos"] == ["dog.jpg"]
        bad = h.get("/photos", params={"name_contains": ""})
        assert bad.status_code == 400 and bad.json()["parameter"] == "name_contains"
        unknown = h.get("/photos", params={"colour": "red"})
        assert unknown.status_code == 400 and unknown.json()["parameter"] == "colour"


def test_hook_search_sorts(tmp_path, library):
    make_jpeg(library / "small.jpg", size=(10, 10))
    make_jpeg(library / "big.jpg", size=(400, 300))
    with harness(tmp_path, extra_plugins={"nf": NameFilter()}) as h:
        h.scan()
        assert h.get("/photos", params={"sort": "SizeDesc"}).json()["photos"] == [
            "big.jpg",
            "small.jpg",
        ]
        bad = h.get("/photos", params={"sort": "Colourful"})
        assert bad.status_code == 400 and "SizeDesc" in bad.json()["detail"]


def test_hook_file_extras(tmp_path, library):
    make_jpeg(library / "cat.jpg")
    with harness(tmp_path, extra_plugins={"nf": NameFilter()}) as h:
        h.scan()
        (entry,) = h.get("/photos").json()["files"]
        assert entry["shout"] == "CAT.JPG" and entry["asked_by"] == 1


class Renderer:
    def __init__(self, answer_size: str, tmp: Path) -> None:
        self.answer_size = answer_size
        self.tmp = tmp

    @hookimpl
    async def render(self, file, size, format):
        if size != self.answer_size:
            return None
        out = self.tmp / f"{self.answer_size}.txt"
        out.write_bytes(b"rendered " + file.name.encode())
        return RenderResult(out, "image/jpeg", cache_seconds=60)


def test_hook_render(tmp_path, library):
    make_jpeg(library / "a.jpg")
    plugins = {"first": Renderer("thumb", tmp_path), "second": Renderer("big", tmp_path)}
    with harness(tmp_path, extra_plugins=plugins) as h:
        h.scan()
        thumb = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        assert thumb.content == b"rendered a.jpg"
        assert thumb.headers["cache-control"] == "private, max-age=60"
        assert h.get("/image", params={"path": "a.jpg", "size": "big"}).status_code == 200
        missing = h.get("/image", params={"path": "a.jpg", "size": "huge"})
        assert missing.status_code == 404 and "no plugin renders" in missing.json()["detail"]


def test_hook_date_taken_table(tmp_path, library):
    make_jpeg(library / "a.jpg")

    class Dates:
        @hookimpl
        def date_taken_table(self):
            return select(
                files.c.id.label("file_id"),
                literal("2001-02-03 04:05:06").label("taken_at"),
                literal(60).label("utc_offset_minutes"),
            ).subquery()

    with harness(tmp_path, extra_plugins={"dates": Dates()}) as h:
        h.scan()
        table = h.run(h.kernel.dispatch.first, "date_taken_table")
        with h.kernel.db.read() as conn:
            row = conn.execute(select(table)).one()
        assert row.utc_offset_minutes == 60


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    colour: str = "red"
    size: int = 3


def test_hook_plugin_settings(tmp_path):
    class Configured:
        @hookimpl
        def plugin_settings(self):
            return Settings

    toml = '[plugins.conf]\ncolour = "blue"\n'
    with harness(tmp_path, extra_plugins={"conf": Configured()}, plugins_toml=toml) as h:
        assert h.kernel.settings_for("conf") == Settings(colour="blue", size=3)
    from kernel.config import ConfigError

    with pytest.raises(ConfigError, match=r"plugin 'conf': unknown setting 'shade'"):
        bad = '[plugins.conf]\nshade = "blue"\n'
        with harness(tmp_path / "2", extra_plugins={"conf": Configured()}, plugins_toml=bad):
            pass
    with pytest.raises(ConfigError, match=r"plugin 'conf'.*size"):
        bad = '[plugins.conf]\nsize = "big"\n'
        with harness(tmp_path / "3", extra_plugins={"conf": Configured()}, plugins_toml=bad):
            pass


def test_hook_migrations(tmp_path):
    from kernel import migrate

    folder = Path(__file__).parent / "migrations_fixture"

    class Migrating:
        @hookimpl
        def migrations(self):
            return folder

    with harness(tmp_path, extra_plugins={"mig": Migrating()}) as h:
        branch = next(b for b in h.kernel.migration_branches() if b.name == "mig")
        assert migrate.current(h.kernel.db, branch) == "mig_0001"
        with h.kernel.db.write() as conn:
            conn.exec_driver_sql("INSERT INTO mig_notes (note) VALUES ('kept')")
        migrate.downgrade(h.kernel.db, branch)
        assert migrate.current(h.kernel.db, branch) is None
        migrate.upgrade(h.kernel.db, branch)
        assert migrate.current(h.kernel.db, branch) == "mig_0001"


def test_hook_cli_commands(tmp_path):
    from kernel.cli import cli

    class Commands:
        @hookimpl
        def cli_commands(self, cli):
            @cli.command("wave")
            def wave() -> None:
                click.echo("waving")

    from kernel.config import load_config
    from kernel.manager import build_plugin_manager

    config = load_config(
        {"IMAGEAPI_DATA_DIR": str(tmp_path)}, env_file=None, config_file=tmp_path / "none.toml"
    )
    registry = build_plugin_manager(config, only=[], extra_plugins={"cmd": Commands()})
    registry.pm.hook.cli_commands(cli=cli)
    try:
        result = CliRunner().invoke(cli, ["wave"])
        assert result.output == "waving\n"
    finally:
        cli.commands.pop("wave", None)


# --- meta-tests ------------------------------------------------------------------------------


def _hookspec_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "imageapi_spec")
    )


@pytest.mark.parametrize("name", _hookspec_names())
def test_every_hookspec_is_documented(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc) > 80, f"hookspec {name} needs a docstring saying when it is called"
    assert re.search(r"[Cc]alled", doc), f"hookspec {name}: say when it is called"


@pytest.mark.parametrize("name", _hookspec_names())
def test_every_hookspec_has_a_test(name):
    pattern = re.compile(rf"def test_hook_{name}\b")
    found = [p for p in TESTS.rglob("test_*.py") if pattern.search(p.read_text())]
    assert found, f"no test named test_hook_{name} for hookspec {name}"


def test_exists_filter_example(tmp_path, library):
    """search_filters can use EXISTS subqueries correlated to files (how plugins filter)."""
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "b.jpg")

    class OnlyA:
        @hookimpl
        def search_filters(self, query):
            if query.get("only_a") is None:
                return None
            inner = files.alias("inner")
            clause = exists(
                select(inner.c.id).where(and_(inner.c.id == files.c.id, inner.c.name == "a.jpg"))
            )
            return SearchFilter(frozenset({"only_a"}), [clause])

    with harness(tmp_path, extra_plugins={"a": OnlyA()}) as h:
        h.scan()
        assert h.get("/photos", params={"only_a": "1"}).json()["photos"] == ["a.jpg"]
