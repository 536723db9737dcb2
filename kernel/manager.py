"""Building the plugin manager: built-ins and entry points, blocked, validated, checked.

A fresh ``pluggy.PluginManager`` is made for every app (tests build many side by side).
Built-in plugins in ``plugins/`` are registered exactly like third-party ones from the
``imageapi`` entry-point group; a plugin switched off in plugins.toml is blocked by name
before its module is imported.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from kernel import hookspecs
from kernel.config import Config, ConfigError
from kernel.markers import PROJECT_NAME

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "imageapi"
BUILTIN_PACKAGE = "plugins"


@dataclass
class PluginInfo:
    """What ``imageapi plugins list`` shows about one plugin."""

    name: str
    version: str
    source: str  # "built-in" | "entry point (DIST)" | "test"
    enabled: bool
    hooks: list[str] = field(default_factory=list)


@dataclass
class PluginRegistry:
    """The plugin manager plus what the kernel learnt while building it."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    settings: dict[str, Any]

    def enabled_names(self) -> list[str]:
        return [name for name, info in self.infos.items() if info.enabled]


def builtin_plugin_names() -> list[str]:
    """Every package in ``plugins/`` (a folder with ``__init__.py``), sorted."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    names: set[str] = set()
    for root in package.__path__:
        for child in Path(root).iterdir():
            if (child / "__init__.py").exists() and not child.name.startswith("_"):
                names.add(child.name)
    return sorted(names)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _project_version() -> str:
    try:
        return importlib.metadata.version("imageapi")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _is_enabled(name: str, section: Mapping[str, Any], only: set[str] | None) -> bool:
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"plugin {name!r}: 'enabled' must be true or false, got {enabled!r}")
    return name in only if only is not None else enabled


def _validate_settings(name: str, spec: type[msgspec.Struct] | None, section: dict) -> Any:
    """Decode a plugin's section into its Struct; unknown keys are an error naming both."""
    values = {k: v for k, v in section.items() if k != "enabled"}
    if spec is None:
        if values:
            raise ConfigError(
                f"plugin {name!r} takes no settings, but plugins.toml sets {sorted(values)}"
            )
        return None
    known = {f.encode_name for f in msgspec.structs.fields(spec)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"plugin {name!r}: unknown setting {key!r} (known: {', '.join(sorted(known))})"
            )
    try:
        return msgspec.convert(values, spec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"plugin {name!r}: {exc}") from exc


def build_plugin_manager(
    config: Config,
    *,
    only: Iterable[str] | None = None,
    extra_plugins: Mapping[str, object] | None = None,
) -> PluginRegistry:
    """Register every enabled plugin, validate its settings and check every hook name.

    ``only`` (used by tests and tools) enables exactly the named plugins; ``extra_plugins``
    registers in-process plugin objects under the given names (tests).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    only_set = set(only) if only is not None else None
    extras = dict(extra_plugins or {})
    builtins = builtin_plugin_names()
    entry_points = _entry_points()
    known = set(builtins) | set(entry_points) | set(extras)

    for name in config.plugin_sections:
        if name not in known:
            raise ConfigError(
                f"plugins.toml names plugin {name!r}, which is neither built in nor installed"
                f" (known: {', '.join(sorted(known))})"
            )
    if only_set is not None and (missing := only_set - known):
        raise ConfigError(f"unknown plugin(s) requested: {sorted(missing)}")

    infos: dict[str, PluginInfo] = {}
    version = _project_version()
    for name in sorted(known):
        section = config.plugin_sections.get(name, {})
        enabled = name in extras or _is_enabled(name, section, only_set)
        if name in builtins:
            source, plugin_version = "built-in", version
        elif name in entry_points:
            ep = entry_points[name]
            dist = ep.dist.name if ep.dist else "?"
            source = f"entry point ({dist})"
            plugin_version = ep.dist.version if ep.dist else "?"
        else:
            source, plugin_version = "test", version
        infos[name] = PluginInfo(name, plugin_version, source, enabled)
        if not enabled:
            pm.set_blocked(name)

    for name in builtins:
        if infos[name].enabled:
            pm.register(importlib.import_module(f"{BUILTIN_PACKAGE}.{name}"), name=name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name, plugin in extras.items():
        pm.register(plugin, name=name)
    pm.check_pending()

    settings: dict[str, Any] = {}
    specs = {impl.plugin_name: impl.function() for impl in pm.hook.plugin_settings.get_hookimpls()}
    for name, info in infos.items():
        if not info.enabled:
            continue
        plugin = pm.get_plugin(name)
        info.hooks = sorted(
            caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.name
        )
        settings[name] = _validate_settings(
            name, specs.get(name), config.plugin_sections.get(name, {})
        )
    return PluginRegistry(pm=pm, infos=infos, settings=settings)
