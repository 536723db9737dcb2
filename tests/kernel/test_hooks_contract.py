"""The contract's checks at start-up, plugin classes, their declarations, storage folders.

A plugin that does not fit its hooks' kinds never starts: the error names the plugin and
the hook, instead of a 500 on every request later (an ``async def search_filters`` used
to start fine and then fail every ``/photos``).
"""

from __future__ import annotations

import io
from pathlib import Path

import click
import msgspec
import pytest
from click.testing import CliRunner
from watchfiles import Change

from kernel import Plugin, hookimpl
from kernel.config import ConfigError
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db
FIXTURE_MIGRATIONS = Path(__file__).parent / "migrations_fixture"


# --- refused at start-up -----------------------------------------------------------------------


class AsyncFilters:
    @hookimpl
    async def search_filters(self, query):
        return None


class AsyncRoutes:
    @hookimpl
    async def routes(self):
        return []


class AsyncDates:
    @hookimpl
    async def date_taken_table(self):
        return None


class Wrapper:
    @hookimpl(hookwrapper=True)
    def on_hashed(self, file):
        yield


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def on_hashed(self, file):
        return (yield)


class UnknownHook:
    @hookimpl
    def on_photo_taken(self, file):
        pass


class AsyncGenerator:
    @hookimpl
    async def on_hashed(self, file):
        yield


class FirstEditionOnHashed:
    @hookimpl
    def on_hashed(self, file, content_hash):
        pass


class MethodDeclaration(Plugin[None]):
    @hookimpl
    def plugin_settings(self):
        return None


class BrokenConstructor(Plugin[None]):
    def __init__(self, kernel, settings):
        raise OSError("the cache folder is read-only")


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (AsyncFilters(), r"plugin 'bad', hook 'search_filters': .*synchronous only"),
        (AsyncRoutes(), r"plugin 'bad', hook 'routes': .*synchronous only"),
        (AsyncDates(), r"plugin 'bad', hook 'date_taken_table': .*synchronous only"),
        (Wrapper(), r"plugin 'bad', hook 'on_hashed': hook wrappers are not supported"),
        (NewStyleWrapper(), r"plugin 'bad', hook 'on_hashed': hook wrappers are not supported"),
        (UnknownHook(), r"plugin 'bad', hook 'on_photo_taken': no such hook"),
        (AsyncGenerator(), r"plugin 'bad', hook 'on_hashed': an async generator"),
        (FirstEditionOnHashed(), r"(?s)plugin 'bad'.*on_hashed.*content_hash"),
        (MethodDeclaration, r"plugin 'bad', hook 'plugin_settings': .*@staticmethod"),
        (BrokenConstructor, r"plugin 'bad' could not start: .*read-only"),
    ],
    ids=lambda value: (
        value if isinstance(value, str) else getattr(value, "__name__", "") or type(value).__name__
    ),
)
def test_a_plugin_that_does_not_fit_the_contract_stops_start_up(tmp_path, plugin, message):
    with (
        pytest.raises(ConfigError, match=message),
        harness(tmp_path, extra_plugins={"bad": plugin}),
    ):
        pytest.fail("the app started")


def test_async_search_filters_never_reach_a_request(tmp_path, library):
    """The measured case of issue 9: it used to start, then answer 500 on every /photos."""
    make_jpeg(library / "a.jpg")
    with (
        pytest.raises(ConfigError) as refused,
        harness(tmp_path, extra_plugins={"fancy": AsyncFilters()}),
    ):
        pytest.fail("the app started")
    assert "'fancy'" in str(refused.value) and "'search_filters'" in str(refused.value)
    with harness(tmp_path / "fixed", library=library) as h:  # without it: a listing again
        h.scan()
        assert h.get("/photos").json()["photos"] == ["a.jpg"]


# --- plugin classes ----------------------------------------------------------------------------


class Journal(msgspec.Struct, forbid_unknown_fields=True):
    prefix: str = "seen"


class Journaling(Plugin[Journal]):
    """A plugin with a resource: a journal opened by its constructor, closed at shutdown."""

    built: list[Journaling] = []

    def __init__(self, kernel, settings: Journal) -> None:
        super().__init__(kernel, settings)
        self.journal = io.StringIO()
        Journaling.built.append(self)

    @staticmethod
    @hookimpl
    def plugin_settings():
        return Journal

    @hookimpl
    def on_hashed(self, file):
        self.journal.write(f"{self.settings.prefix} {file.rel_path}\n")

    @hookimpl
    async def on_shutdown(self):
        self.closed_with = self.journal.getvalue()
        self.journal.close()


def test_a_plugin_class_is_built_once_per_kernel_with_its_settings(tmp_path, library):
    make_jpeg(library / "a.jpg")
    Journaling.built.clear()
    toml = '[plugins.journal]\nprefix = "hashed"\n'
    with harness(tmp_path, extra_plugins={"journal": Journaling}, plugins_toml=toml) as h:
        (plugin,) = Journaling.built
        assert h.kernel.plugin("journal") is plugin and h.kernel.pm.get_plugin("journal") is plugin
        assert plugin.kernel is h.kernel and plugin.settings == Journal(prefix="hashed")
        h.scan()
        h.scan()
        assert plugin.journal.getvalue() == "hashed a.jpg\n"
        assert len(Journaling.built) == 1  # scans, requests: still the one instance
    assert plugin.journal.closed and plugin.closed_with == "hashed a.jpg\n"
    with harness(tmp_path / "second", extra_plugins={"journal": Journaling}) as other:
        assert len(Journaling.built) == 2 and Journaling.built[1] is other.kernel.plugin("journal")
        assert Journaling.built[1].kernel is other.kernel is not h.kernel
        assert Journaling.built[1].settings == Journal()


# --- storage folders ---------------------------------------------------------------------------


def test_hook_storage_folders(tmp_path, library):
    inside = library / "derived"
    outside = tmp_path / "cache" / "renders"

    class Storing(Plugin[None]):
        @hookimpl
        def storage_folders(self, kernel):
            assert kernel is self.kernel
            return [inside, str(outside)]  # a str is a path too

    make_jpeg(library / "a.jpg")
    make_jpeg(library / "other" / "derived" / "b.jpg")  # same name elsewhere: a library folder
    with harness(tmp_path, extra_plugins={"storing": Storing}) as h:
        assert inside.is_dir() and outside.is_dir()  # the kernel created them
        assert {inside.resolve(), outside.resolve()} <= set(h.kernel.storage_folders)
        make_jpeg(inside / "a.thumb.jpg")
        make_jpeg(inside / "deep" / "c.jpg")
        h.scan()
        listed = h.get("/photos", params={"recursive": "true"}).json()["photos"]
        assert listed == ["a.jpg", "other/derived/b.jpg"]
        fresh = make_jpeg(inside / "fresh.jpg")  # the watcher does not enter them either
        h.run(h.kernel.watcher.handle, {(Change.added, str(fresh))})
        h.run(h.kernel.watcher.handle, {(Change.added, str(inside / "deep"))})
        assert h.get("/photos", params={"recursive": "true"}).json()["photos"] == listed


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    colour: str = "red"
    size: int = 3


class Plain(Plugin[None]):
    """No plugin_settings: any key but ``enabled`` is an error."""


class Configured(Plugin[Settings]):
    @staticmethod
    @hookimpl
    def plugin_settings():
        return Settings


def test_hook_plugin_settings(tmp_path):
    toml = '[plugins.conf]\ncolour = "blue"\n'
    with harness(tmp_path, extra_plugins={"conf": Configured}, plugins_toml=toml) as h:
        assert h.kernel.plugin("conf").settings == Settings(colour="blue", size=3)
        assert h.kernel.settings_for("conf") == Settings(colour="blue", size=3)
    with harness(tmp_path / "1", extra_plugins={"conf": Configured}) as h:
        assert h.kernel.plugin("conf").settings == Settings()  # no section: the defaults
    with pytest.raises(ConfigError, match=r"plugin 'conf': unknown setting 'shade'"):
        bad = '[plugins.conf]\nshade = "blue"\n'
        with harness(tmp_path / "2", extra_plugins={"conf": Configured}, plugins_toml=bad):
            pass
    with pytest.raises(ConfigError, match=r"plugin 'conf'.*size"):
        bad = '[plugins.conf]\nsize = "big"\n'
        with harness(tmp_path / "3", extra_plugins={"conf": Configured}, plugins_toml=bad):
            pass
    with pytest.raises(ConfigError, match=r"plugin 'plain' takes no settings"):
        bad = "[plugins.plain]\ncolour = 1\n"
        with harness(tmp_path / "4", extra_plugins={"plain": Plain}, plugins_toml=bad):
            pass


CONVENTION_PLUGIN = """
from kernel import Plugin


class Plugin(Plugin[None]):
    \"\"\"No migrations hook: the migrations/ folder beside this module is found.\"\"\"
"""

CONVENTION_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "conv_0001"
down_revision = None
branch_labels = ("conv",)
depends_on = None


def upgrade() -> None:
    op.create_table("conv_notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("conv_notes")
"""


def test_hook_migrations(tmp_path, monkeypatch):
    from kernel import migrate

    class Migrating(Plugin[None]):
        @staticmethod
        @hookimpl
        def migrations():
            return FIXTURE_MIGRATIONS

    with harness(tmp_path, extra_plugins={"mig": Migrating}) as h:
        branch = next(b for b in h.kernel.migration_branches() if b.name == "mig")
        assert migrate.current(h.kernel.db, branch) == "mig_0001"
        with h.kernel.db.write() as conn:
            conn.exec_driver_sql("INSERT INTO mig_notes (note) VALUES ('kept')")
        migrate.downgrade(h.kernel.db, branch)
        assert migrate.current(h.kernel.db, branch) is None
        migrate.upgrade(h.kernel.db, branch)
        assert migrate.current(h.kernel.db, branch) == "mig_0001"

    # By convention: a package whose plugin class has a migrations/ folder beside it.
    package = tmp_path / "packages" / "conv_plugin"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(CONVENTION_PLUGIN)
    (package / "migrations" / "conv_0001_notes.py").write_text(CONVENTION_REVISION)
    monkeypatch.syspath_prepend(str(package.parent))
    import conv_plugin

    with harness(tmp_path / "conv", extra_plugins={"conv": conv_plugin}) as h:
        assert isinstance(h.kernel.plugin("conv"), conv_plugin.Plugin)
        branch = next(b for b in h.kernel.migration_branches() if b.name == "conv")
        assert branch.versions == package / "migrations"
        assert migrate.current(h.kernel.db, branch) == "conv_0001"
        names = [b.name for b in h.kernel.migration_branches()]
        assert names == ["kernel", "conv"]  # no folder, no branch: the test plugins here


def test_hook_cli_commands(tmp_path):
    from kernel.cli import cli
    from kernel.config import load_config
    from kernel.manager import build_plugin_manager

    class Commands(Plugin[None]):
        @staticmethod
        @hookimpl
        def cli_commands(cli):
            @cli.command("wave")
            def wave() -> None:
                click.echo("waving")

    config = load_config(
        {"IMAGEAPI_DATA_DIR": str(tmp_path)}, env_file=None, config_file=tmp_path / "none.toml"
    )
    registry = build_plugin_manager(config, only=[], extra_plugins={"cmd": Commands})
    registry.declarations.cli_commands(cli)
    try:
        result = CliRunner().invoke(cli, ["wave"])
        assert result.output == "waving\n"
    finally:
        cli.commands.pop("wave", None)
