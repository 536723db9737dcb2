"""Suite-wide test set-up; the helpers themselves live in kernel.testing for plugin authors too.

``@pytest.mark.requires_plugins("exif", "tags")`` skips a test when a named plugin is not
available here: neither a built-in package in ``plugins/`` nor an installed ``imageapi``
entry point. Every plugin can be removed (its folder, its tests, its plugins.toml section)
and the rest of the suite still collects and passes; CI proves it
(``.ci/without-each-plugin``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from pathlib import Path

import pytest

logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("httpx").setLevel(logging.WARNING)

pytest_plugins = ("pytester",)  # tests/kernel/test_requires_plugins.py runs pytest itself
REQUIRES_PLUGINS = "requires_plugins"


@functools.cache
def available_plugins() -> frozenset[str]:
    """The plugins a test may enable: built-in packages and installed entry points."""
    from kernel.manager import ENTRY_POINT_GROUP, builtin_plugin_names

    installed = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return frozenset(builtin_plugin_names()) | installed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every test whose ``requires_plugins`` names a plugin that is not available."""
    for item in items:
        wanted: list[str] = []
        for marker in item.iter_markers(REQUIRES_PLUGINS):
            if not marker.args or not all(isinstance(a, str) for a in marker.args):
                raise pytest.UsageError(
                    f"{item.nodeid}: requires_plugins takes plugin names, got {marker.args!r}"
                )
            wanted.extend(marker.args)
        missing = sorted(set(wanted) - available_plugins())
        if missing:
            reason = f"needs plugin(s) not available here: {', '.join(missing)}"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions sent to a worker thread with ``asyncio.to_thread`` from now on: under
    load each hop waits once for a thread and once more for the event loop, behind every
    other request, so a route that reads and then asks every plugin for its extras does
    it in one. Left out: the lookups every request makes in a thread of their own on
    PostgreSQL (the bearer's user, the data version), which SQLite answers without one."""
    import asyncio

    hops: list[str] = []
    real = asyncio.to_thread

    def counted(function, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = getattr(function, "__qualname__", repr(function))
        if name not in ("user_for_token", "read_version"):
            hops.append(name)
        return real(function, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return hops
