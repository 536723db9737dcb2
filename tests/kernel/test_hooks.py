"""Every hook, exercised through a real app with in-process test plugins.

The ingest, lifecycle, route, tool and decision hooks are here; the search hooks (params,
filters, sorts, file extras) are in ``test_hooks_search.py``; start-up checks, plugin
classes, declarations and storage folders in ``test_hooks_contract.py``. The meta-tests
at the bottom fail when a hookspec has no kind, no facade method, no docstring saying
when it is called, or no test named ``test_hook_<name>`` anywhere in the suite.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import blake3
import msgspec
import pytest
from litestar import Router, get
from litestar.di import NamedDependency, Provide
from sqlalchemy import literal, select

from kernel import Plugin, RenderResult, Tool, hookimpl, hookspecs
from kernel.config import ConfigError
from kernel.core import Kernel
from kernel.deps import CurrentUser
from kernel.hooks import Declarations, Hooks
from kernel.markers import contract_of
from kernel.tables import files
from kernel.testing import harness, make_jpeg
from kernel.types import InvalidParameter, ToolContext

pytestmark = pytest.mark.db
TESTS = Path(__file__).resolve().parents[1]


class Recorder:
    """A plugin that records what the kernel tells it (async and sync hooks mixed)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []
        self.kernels: list[object] = []

    @hookimpl
    async def on_file_discovered(self, file):
        self.events.append(("discovered", file.rel_path, file.content_hash))

    @hookimpl
    def on_hashed(self, file, kernel):
        self.kernels.append(kernel)
        self.events.append(("hashed", file.rel_path, file.content_hash))

    @hookimpl
    async def on_file_changed(self, file):
        self.events.append(("changed", file.rel_path, file.content_hash))

    @hookimpl
    def on_file_removed(self, file):
        self.events.append(("removed", file.rel_path, file.content_hash))

    @hookimpl
    async def on_startup(self, kernel):
        self.kernels.append(kernel)
        self.events.append(("startup", "", None))

    @hookimpl
    def on_shutdown(self):
        self.events.append(("shutdown", "", None))

    def of(self, kind: str) -> list[str]:
        return sorted(path for k, path, _ in self.events if k == kind)

    def hashes(self, kind: str) -> list[str | None]:
        return [content_hash for k, _, content_hash in self.events if k == kind]


def test_hook_on_file_discovered(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "sub" / "b.jpg")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        assert rec.of("discovered") == ["a.jpg", "sub/b.jpg"]
        assert rec.hashes("discovered") == [None, None]  # announced before hashing
        h.scan()  # nothing new: nothing announced twice
        assert rec.of("discovered") == ["a.jpg", "sub/b.jpg"]


def test_hook_on_hashed(tmp_path, library):
    photo = make_jpeg(library / "a.jpg")
    (library / "fake.jpg").write_text("not a jpeg at all")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        report = h.scan()
        assert rec.of("hashed") == ["a.jpg"]  # the fake never reaches plugins
        assert report.failed == 1
        assert rec.hashes("hashed") == [blake3.blake3(photo.read_bytes()).hexdigest()]
        assert rec.kernels[-1] is h.kernel


def test_hook_on_file_changed(tmp_path, library):
    path = make_jpeg(library / "a.jpg")
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        h.scan()
        make_jpeg(path, size=(80, 60))
        h.scan()
        assert rec.of("changed") == ["a.jpg"]
        assert rec.hashes("changed") == [None]  # cleared, to be recomputed
        assert rec.of("hashed") == ["a.jpg", "a.jpg"]
        first, second = rec.hashes("hashed")
        assert second == blake3.blake3(path.read_bytes()).hexdigest() != first


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
    with harness(tmp_path, extra_plugins={"rec": rec}) as h:
        assert rec.of("startup") == [""] and rec.kernels == [h.kernel]
        assert rec.of("shutdown") == []


def test_hook_on_shutdown(tmp_path):
    rec = Recorder()
    with harness(tmp_path, extra_plugins={"rec": rec}):
        assert rec.of("shutdown") == []
    assert rec.of("shutdown") == [""]


class Stubborn:
    """A plugin whose background task catches the first cancellation and goes on (what
    Python 3.11's ``asyncio.wait_for`` does when a wake-up lands with the cancellation)."""

    def __init__(self) -> None:
        self.shut_down = False

    @hookimpl
    async def on_startup(self, kernel):
        kernel.spawn_background(self._forever(), "stubborn loop")

    @hookimpl
    def on_shutdown(self):
        self.shut_down = True

    async def _forever(self):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # the second cancellation (the loop closing) ends it


def test_a_task_that_ignores_its_cancellation_does_not_stop_the_shutdown(tmp_path, caplog):
    stubborn = Stubborn()
    with harness(tmp_path, extra_plugins={"stubborn": stubborn}):
        pass
    assert stubborn.shut_down  # the plugins were still told, and the app stopped
    assert "background task stubborn loop ignored its cancellation" in caplog.text


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
        ref = h.kernel.index.get(1, "a.jpg")
        (failure,) = h.run(h.kernel.hooks.on_hashed, ref)  # the facade reports, never raises
        assert (failure.plugin, failure.hook) == ("broken", "on_hashed")
        assert "boom" in failure.error and rec.of("hashed") == ["a.jpg", "a.jpg"]


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
            todo = [i for i in ids if i not in self.done][:limit]
            self.done.update(todo)
            return len(todo)

    class Failing:
        @hookimpl
        def drain_backlog(self):
            raise RuntimeError("backlog broken")

    plugins = {"catch": Catcher(), "failing": Failing()}
    toml = "[kernel]\nbacklog_per_tick = 2\n"
    with harness(tmp_path, extra_plugins=plugins, plugins_toml=toml) as h:
        h.scan()
        assert len(plugins["catch"].done) == 2
        assert h.run(h.kernel.scanner.drain_backlogs) == {"catch": 2, "failing": 0}
        h.scan()
        assert len(plugins["catch"].done) == 5


class Echo(msgspec.Struct):
    user: str
    times: int


@get("/echo")
async def echo(user: CurrentUser, plugin: NamedDependency[Greeter]) -> Echo:
    plugin.times += 1
    return Echo(user.username, plugin.times)


class Greeter(Plugin[None]):
    """A plugin class whose route reaches its own instance through a dependency."""

    def __init__(self, kernel, settings):
        super().__init__(kernel, settings)
        self.times = 0

    @hookimpl
    def routes(self):
        provide = Provide(lambda: self, sync_to_thread=False)
        return [Router("/", route_handlers=[echo], dependencies={"plugin": provide})]


def test_hook_routes(tmp_path):
    with harness(tmp_path, extra_plugins={"greeter": Greeter}) as h:
        assert h.get("/echo").json() == {"user": "tester", "times": 1}
        assert h.get("/echo").json() == {"user": "tester", "times": 2}
        assert h.kernel.plugin("greeter").times == 2
        assert h.client.get("/echo").status_code == 401
        operation = h.get("/schema/openapi.json").json()["paths"]["/echo"]["get"]
        assert [p["name"] for p in operation.get("parameters", [])] == []
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema or schema.get("properties")  # typed, not {"type": "object"}


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
        assert [t["function"]["name"] for t in listed] == ["search_photos", "add"]
        assert listed[0]["plugin"] == "kernel"
        assert listed[1] == {"plugin": "tools", **tool.to_openai()}

    # One name offered twice (here: the kernel's own) stops start-up, naming both.
    class Clash:
        @hookimpl
        def tools(self):
            return [Tool("search_photos", "Another search.", AddParams, add)]

    with pytest.raises(ConfigError, match="offered by both 'kernel' and 'clash'"):
        Kernel(h.kernel.config, only=[], extra_plugins={"clash": Clash()})


class Renderer:
    def __init__(self, answer_size: str, tmp: Path) -> None:
        self.answer_size = answer_size
        self.tmp = tmp

    @hookimpl
    async def render(self, file, size, format):
        if size == "bad":
            raise InvalidParameter("size", "this renderer refuses it")
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
        assert missing.status_code == 404 and "no enabled plugin renders" in missing.text
        bad = h.get("/image", params={"path": "a.jpg", "size": "bad"})
        assert bad.status_code == 400 and bad.json()["parameter"] == "size"


def test_hook_date_taken_table(tmp_path, library):
    make_jpeg(library / "a.jpg")

    class Undecided:
        @hookimpl
        def date_taken_table(self):
            return None

    class Dates:
        @hookimpl
        def date_taken_table(self, kernel):
            return select(
                files.c.id.label("file_id"),
                literal("2001-02-03 04:05:06").label("taken_at"),
                literal(60).label("utc_offset_minutes"),
            ).subquery()

    plugins = {"a_undecided": Undecided(), "dates": Dates(), "z_undecided": Undecided()}
    with harness(tmp_path, extra_plugins=plugins) as h:
        h.scan()
        assert h.kernel.hooks.implemented(h.kernel.hooks.date_taken_table)
        table = h.kernel.hooks.date_taken_table()
        with h.kernel.db.read() as conn:
            row = conn.execute(select(table)).one()
        assert row.utc_offset_minutes == 60
    with harness(tmp_path / "none", extra_plugins={"u": Undecided()}) as h:
        assert h.kernel.hooks.date_taken_table() is None


def test_hook_resolve_location(tmp_path):
    """First non-None answer wins, async and sync implementations alike; None when nobody
    knows the place."""
    asked: list[tuple[str, float, float]] = []

    class Personal:
        @hookimpl(tryfirst=True)
        async def resolve_location(self, lat, lon):
            asked.append(("personal", lat, lon))
            return "Home" if (round(lat), round(lon)) == (42, -71) else None

    class Geocoder:
        @hookimpl
        def resolve_location(self, lat, lon, kernel):
            asked.append(("geocoder", lat, lon))
            return None if lat == 0 else f"near {lat:.1f},{lon:.1f}"

    plugins = {"geocoder": Geocoder(), "personal": Personal()}
    with harness(tmp_path, extra_plugins=plugins) as h:
        hooks = h.kernel.hooks
        assert hooks.implemented(hooks.resolve_location)
        assert h.run(hooks.resolve_location, 42.37, -71.11) == "Home"
        assert asked == [("personal", 42.37, -71.11)]
        assert h.run(hooks.resolve_location, 48.85, 2.35) == "near 48.9,2.4"
        assert h.run(hooks.resolve_location, 0.0, 0.0) is None
    with harness(tmp_path / "none") as h:
        assert not h.kernel.hooks.implemented(h.kernel.hooks.resolve_location)
        assert h.run(h.kernel.hooks.resolve_location, 1.0, 2.0) is None


def test_hook_resolve_location_after_a_plugin_asks_the_ones_behind_it(tmp_path):
    """``after=self``: an implementation refines the answer of those after it, and only
    theirs (it is not asked again, nor is anyone before it)."""
    asked: list[str] = []

    class Middle:
        @hookimpl
        def resolve_location(self, lat, lon):
            asked.append("middle")

    class Personal:
        @hookimpl(tryfirst=True)
        async def resolve_location(self, lat, lon, kernel):
            asked.append("personal")
            near = await kernel.hooks.resolve_location(lat, lon, after=self)
            return "Home" + (f" — near {near}" if near else "")

    class Geocoder:
        @hookimpl(trylast=True)
        def resolve_location(self, lat, lon):
            asked.append("geocoder")
            return None if lat == 0 else "Cambridge, MA"

    personal = Personal()
    plugins = {"geocoder": Geocoder(), "personal": personal}
    with harness(tmp_path, extra_plugins=plugins) as h:
        hooks = h.kernel.hooks
        assert h.run(hooks.resolve_location, 42.37, -71.11) == "Home — near Cambridge, MA"
        assert asked == ["personal", "geocoder"]
        assert h.run(hooks.resolve_location, 0.0, 0.0) == "Home"
        asked.clear()
        assert h.run(lambda: hooks.resolve_location(1.0, 2.0, after=personal)) == "Cambridge, MA"
        assert asked == ["geocoder"]
        assert h.run(lambda: hooks.resolve_location(1.0, 2.0, after=object())) is None
    with harness(tmp_path / "two", extra_plugins={**plugins, "middle": Middle()}) as h:
        asked.clear()
        assert h.run(h.kernel.hooks.resolve_location, 1.0, 2.0) == "Home — near Cambridge, MA"
        assert asked == ["personal", "middle", "geocoder"]  # all after it, in order


def test_hook_photo_context(tmp_path, library):
    """Every plugin's text about a photo, in plugin order, with the file's entry; None and
    blank answers are left out."""
    make_jpeg(library / "a.jpg")
    seen: list[tuple[str, object]] = []

    class Messages:
        @hookimpl
        async def photo_context(self, file, entry):
            seen.append((file.rel_path, entry.get("shout")))
            return "Messages that day:\n- Alice: see you at the lake"

    class Calendar:
        @hookimpl
        def photo_context(self, file, entry, kernel):
            return f"Calendar: nothing on {file.rel_path}"

    class Quiet:
        @hookimpl
        def photo_context(self, file):
            return None if file.rel_path == "a.jpg" else "  "

    class Extras:
        @hookimpl
        def file_extras(self, files):
            return {f.id: {"shout": f.rel_path.upper()} for f in files}

    plugins = {"calendar": Calendar(), "messages": Messages(), "quiet": Quiet(), "x": Extras()}
    with harness(tmp_path, extra_plugins=plugins) as h:
        h.scan()
        hooks = h.kernel.hooks
        assert hooks.implemented(hooks.photo_context)
        ref = h.kernel.index.get(next(iter(h.kernel.libraries)).id, "a.jpg")
        (entry,) = h.run(h.kernel.catalog.entries, [ref], None)
        found = h.run(hooks.photo_context, ref, entry)
        assert sorted(found) == [
            ("calendar", "Calendar: nothing on a.jpg"),
            ("messages", "Messages that day:\n- Alice: see you at the lake"),
        ]
        assert seen == [("a.jpg", "A.JPG")]
    with harness(tmp_path / "none") as h:
        assert not h.kernel.hooks.implemented(h.kernel.hooks.photo_context)


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
    assert re.search(r"\b([Cc]alled|[Rr]ead)\b", doc), f"hookspec {name}: say when it is called"


@pytest.mark.parametrize("name", _hookspec_names())
def test_every_hookspec_has_a_test(name):
    pattern = re.compile(rf"def test_hook_{name}\b")
    found = [p for p in TESTS.rglob("test_*.py") if pattern.search(p.read_text())]
    assert found, f"no test named test_hook_{name} for hookspec {name}"


@pytest.mark.parametrize("name", _hookspec_names())
def test_every_hookspec_has_a_kind(name):
    contract = contract_of(getattr(hookspecs, name))
    assert contract is not None, f"hookspec {name}: declare its kind (kernel.markers)"
    assert contract.kind in ("declaration", "notification", "contribution", "decision")
    if contract.kind == "declaration":
        assert (
            contract.sync and "kernel" not in inspect.signature(getattr(hookspecs, name)).parameters
        )


@pytest.mark.parametrize("name", _hookspec_names())
def test_every_hookspec_has_a_facade_method(name):
    """Declarations on ``Declarations``, the rest on ``Hooks`` with the spec's arguments but
    ``kernel`` (the facade passes it), async exactly when the spec allows async plugins.
    Keyword-only parameters of a facade method are its own options (``after`` of
    ``resolve_location``, ``skip`` of ``drain_backlog``), with defaults, never passed to
    plugins."""
    spec = getattr(hookspecs, name)
    contract = contract_of(spec)
    facade = Declarations if contract.kind == "declaration" else Hooks
    method = getattr(facade, name, None)
    assert callable(method), f"hookspec {name}: no method {facade.__name__}.{name}"
    if facade is Hooks:
        wanted = [p for p in inspect.signature(spec).parameters if p != "kernel"]
        parameters = list(inspect.signature(method).parameters.values())[1:]
        passed = [p.name for p in parameters if p.kind is not p.KEYWORD_ONLY]
        assert passed == wanted
        assert all(p.default is not p.empty for p in parameters if p.kind is p.KEYWORD_ONLY)
        assert inspect.iscoroutinefunction(method) == (not contract.sync), name


def test_the_facade_has_no_method_without_a_spec():
    specs = set(_hookspec_names())
    public = {n for n, _ in inspect.getmembers(Hooks, inspect.isfunction) if not n.startswith("_")}
    # ``NAME_here``: the same hook, called in the worker thread the caller is already in
    variants = {n for n in public if n.endswith("_here") and n.removesuffix("_here") in specs}
    assert public - specs - variants == {"implemented"}
    declared = {
        n for n, _ in inspect.getmembers(Declarations, inspect.isfunction) if not n.startswith("_")
    }
    assert declared <= specs
