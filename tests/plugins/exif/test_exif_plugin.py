"""The exif plugin as a class: one instance per kernel with the settings of the section it
is registered under, its own worker processes (stopped at shutdown), and a route that
reaches the instance without any lookup by name."""

from __future__ import annotations

import ast
import os
from datetime import datetime
from pathlib import Path

import pytest

from kernel.testing import harness, make_jpeg
from plugins import exif
from plugins.exif import Plugin

pytestmark = pytest.mark.db


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_kernel_builds_its_own_plugin_with_the_settings_of_its_section(
    tmp_path: Path, library: Path
) -> None:
    make_jpeg(library / "a.jpg", taken=datetime(2019, 4, 12, 15, 30), make="Canon")
    # Registered under another name, the plugin reads that name's section: nothing in it
    # looks its settings up as "exif".
    toml = "[plugins.photo_facts]\ntimeout_seconds = 7.5\nbatch_size = 3\n"
    with (
        harness(
            tmp_path / "one", [], extra_plugins={"photo_facts": Plugin}, plugins_toml=toml,
            library=library,
        ) as one,
        harness(tmp_path / "two", ["exif"], library=library) as two,
    ):  # fmt: skip
        facts = one.kernel.plugin("photo_facts")
        default = two.kernel.plugin("exif")
        assert isinstance(facts, Plugin) and isinstance(default, Plugin)
        assert (facts.settings.timeout_seconds, facts.settings.batch_size) == (7.5, 3)
        assert (facts.ingest.timeout, facts.ingest.batch) == (7.5, 3)
        assert (default.settings.timeout_seconds, default.settings.batch_size) == (10.0, 64)
        assert facts.ingest.workers is not default.ingest.workers
        assert facts.ingest.writer is not default.ingest.writer

        one.scan()
        body = one.get("/image/metadata", params={"path": "a.jpg"}).json()
        assert (body["exif_status"], body["exif"]["camera_make"]) == ("ok", "Canon")
        assert body["date_taken"] == "2019-04-12T15:30:00"
        workers = facts.ingest.workers.pids()
        assert workers and all(alive(pid) for pid in workers)
        assert default.ingest.workers.pids() == []  # two has not read anything yet
    # Shutting the app down stopped this kernel's worker processes.
    assert not any(alive(pid) for pid in workers)


def test_the_route_dependency_is_not_a_query_parameter(tmp_path: Path) -> None:
    with harness(tmp_path, ["exif"]) as h:
        schema = h.get("/schema/openapi.json").json()
    parameters = schema["paths"]["/image/metadata"]["get"]["parameters"]
    assert sorted(p["name"] for p in parameters) == ["library", "path"]


def test_the_package_imports_itself_relatively() -> None:
    """Absolute imports of its own modules would break the plugin under another import
    path (a vendored copy, an entry point), and the spawned workers with it."""
    folder = Path(exif.__file__).parent
    absolute = [
        f"{path.name}:{node.lineno}"
        for path in sorted(folder.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom | ast.Import)
        for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [alias.name for alias in node.names])
        if getattr(node, "level", 0) == 0 and name.split(".")[0] == "plugins"
    ]  # fmt: skip
    assert absolute == []
