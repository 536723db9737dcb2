"""The out-of-tree example plugin (contrib/hello, installed from its own pyproject) and the
command line that lists plugins and manages migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from kernel.cli import cli
from kernel.testing import harness, make_jpeg
from kernel.types import ToolContext

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("hello")]


def test_entry_point_plugin_is_discovered_and_answers(tmp_path):
    toml = '[plugins.hello]\ngreeting = "Hei"\n'
    with harness(tmp_path, ["hello"], plugins_toml=toml) as h:
        info = h.kernel.registry.infos["hello"]
        assert info.source == "entry point (imageapi-hello)" and info.enabled
        plugin = h.kernel.plugin("hello")
        assert type(plugin).__name__ == "Plugin" and plugin.settings.greeting == "Hei"
        assert h.get("/hello").json() == {"message": "Hei, tester!", "times": 1}
        assert h.get("/hello").json()["times"] == 2
        assert h.client.get("/hello").status_code == 401
        tool = h.kernel.tools["greet"]
        result = asyncio.run(tool.invoke({"name": "Ola"}, ToolContext(h.kernel, None)))
        assert result == {"message": "Hei, Ola!", "times": 1}
        operation = h.get("/schema/openapi.json").json()["paths"]["/hello"]["get"]
        assert operation.get("parameters", []) == []  # the plugin dependency is no parameter


def test_hello_greets_photos_filters_and_sorts_by_it(tmp_path, library):
    for name in ("beach.jpg", "dog.jpg", "snow.jpg", "tree.jpg"):
        make_jpeg(library / name)
    with harness(tmp_path, ["hello"]) as h:
        h.scan()
        for name, times in (("snow.jpg", 3), ("beach.jpg", 1), ("tree.jpg", 3)):
            for n in range(times):
                answer = h.post("/hello/photo", json={"path": name})
                assert answer.json() == {"message": f"Hello, {name}!", "times": n + 1}
        missing = h.post("/hello/photo", json={"path": "nowhere.jpg"})
        assert missing.status_code == 404
        escape = h.post("/hello/photo", json={"path": "../outside.jpg"})
        assert escape.status_code == 400  # the kernel's resolver refuses it

        def listed(**params):
            response = h.get("/photos", params=params)
            assert response.status_code == 200, response.text
            return response.json()["photos"]

        ids = {e["name"]: e["id"] for e in h.get("/photos").json()["files"]}
        tied = sorted(("snow.jpg", "tree.jpg"), key=ids.get, reverse=True)  # ties: higher id first
        assert listed(min_greetings="2") == ["snow.jpg", "tree.jpg"]
        assert listed(min_greetings="1", sort="MostGreeted") == [*tied, "beach.jpg"]
        assert listed(sort="MostGreeted") == [*tied, "beach.jpg", "dog.jpg"]  # never greeted: last
        assert listed(sort="MostGreeted", limit="2", offset="2") == ["beach.jpg", "dog.jpg"]
        bad = h.get("/photos", params={"min_greetings": "many"})
        assert bad.status_code == 400 and bad.json()["parameter"] == "min_greetings"
        tool = h.kernel.tools["search_photos"]
        schema = tool.json_schema()["properties"]
        assert "min_greetings" in schema and "MostGreeted" in str(schema["sort"])
        found = h.run(
            tool.invoke, {"min_greetings": 3, "sort": "MostGreeted"}, ToolContext(h.kernel, None)
        )
        assert found["total"] == 2 and [p["path"] for p in found["photos"]] == tied


def test_disabled_entry_point_plugin_is_gone(tmp_path, library):
    with harness(tmp_path, plugins_toml="[plugins.hello]\nenabled = false\n") as h:
        assert h.kernel.pm.is_blocked("hello")
        assert h.get("/hello").status_code == 404
        assert "greet" not in h.kernel.tools
        with h.kernel.db.read() as conn:  # its migration never ran
            tables = conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_name = 'hello_greetings'"
                if h.kernel.db.dialect == "postgresql"
                else "SELECT count(*) FROM sqlite_master WHERE name = 'hello_greetings'"
            ).scalar_one()
        assert tables == 0


@pytest.fixture
def cli_env(tmp_path, monkeypatch, library):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASE_PATH", str(library))
    monkeypatch.setenv("IMAGEAPI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = tmp_path / "plugins.toml"
    config.write_text("")
    monkeypatch.setenv("IMAGEAPI_CONFIG", str(config))
    return config


def test_plugins_list_shows_source_state_and_hooks(cli_env):
    cli_env.write_text("[plugins.hello]\nenabled = true\n")
    result = CliRunner().invoke(cli, ["plugins", "list"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("hello"))
    assert "0.2.0" in line and "entry point (imageapi-hello)" in line and "enabled" in line
    hooks = "plugin_settings, routes, search_filters, search_params, search_sorts, tools"
    assert hooks in line  # its migrations/ folder is found by convention: no hook
    cli_env.write_text("[plugins.hello]\nenabled = false\n")
    result = CliRunner().invoke(cli, ["plugins", "list"])
    line = next(line for line in result.output.splitlines() if line.startswith("hello"))
    assert "disabled" in line


def test_db_commands_per_plugin_branch(cli_env):
    runner = CliRunner()
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "kernel: k0004" in upgraded.output and "hello: hello_0002" in upgraded.output
    current = runner.invoke(cli, ["db", "current"]).output
    assert "hello" in current and "hello_0002" in current
    down = runner.invoke(cli, ["db", "downgrade", "hello"])
    assert down.exit_code == 0 and "hello: base" in down.output
    again = runner.invoke(cli, ["db", "upgrade", "hello"])
    assert "hello: hello_0002" in again.output
    unknown = runner.invoke(cli, ["db", "downgrade", "nosuch"])
    assert unknown.exit_code != 0 and "no migration branch" in unknown.output


def test_bad_plugins_toml_stops_the_cli_with_a_clear_message(cli_env):
    cli_env.write_text("[plugins.hello]\nshout = true\n")
    result = CliRunner().invoke(cli, ["plugins", "list"])
    assert result.exit_code != 0
    assert "plugin 'hello': unknown setting 'shout'" in result.output


def test_the_walkthroughs_test_passes(tmp_path):
    """contrib/hello/README.md teaches a test; it must pass as written."""
    readme = (Path(__file__).resolve().parents[2] / "contrib/hello/README.md").read_text()
    section = readme.split("## 8. A test", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "contrib/hello/README.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0](tmp_path)
