"""Building the plugin registry: built-ins and entry points, blocked, validated, checked.

A fresh registry is made for every kernel (tests build many side by side). Built-in
plugins in ``plugins/`` are found exactly like third-party ones from the ``imageapi``
entry-point group; a plugin switched off in plugins.toml is never imported. Building
happens in two steps: ``build_plugin_manager`` loads the plugin objects, validates their
settings and checks every hook implementation against its spec's kind (no kernel
needed: the CLI uses it as it is); ``PluginRegistry.activate(kernel)`` then builds the
plugin classes with their settings and registers everything with pluggy.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

from kernel import hookspecs
from kernel.config import Config, ConfigError
from kernel.hooks import Declarations, implementations_on
from kernel.markers import PROJECT_NAME, contract_of

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "imageapi"
BUILTIN_PACKAGE = "plugins"
CLASS_ATTRIBUTE = "Plugin"  # a built-in package's plugin class, when it has one


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
    """The enabled plugin objects, their validated settings, and (once activated) pluggy."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    settings: dict[str, Any]
    objects: dict[str, object] = field(default_factory=dict)
    instances: dict[str, object] = field(default_factory=dict)

    def enabled_names(self) -> list[str]:
        return [name for name, info in self.infos.items() if info.enabled]

    @property
    def declarations(self) -> Declarations:
        return Declarations(self.objects)

    def activate(self, kernel: Kernel) -> None:
        """Build each plugin class as ``cls(kernel, settings)`` and register every plugin."""
        for name, obj in self.objects.items():
            if inspect.isclass(obj):
                try:
                    obj = obj(kernel, self.settings.get(name))
                except ConfigError:
                    raise
                except Exception as exc:
                    raise ConfigError(f"plugin {name!r} could not start: {exc!r}") from exc
            self.instances[name] = obj
            try:
                self.pm.register(obj, name=name)
            except pluggy.PluginValidationError as exc:
                raise ConfigError(f"plugin {name!r}: {exc}") from exc
        self.pm.check_pending()


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


def _plugin_object(loaded: object) -> object:
    """A module, its ``Plugin`` class when it names one, or a class or object as given."""
    if inspect.ismodule(loaded):
        cls = getattr(loaded, CLASS_ATTRIBUTE, None)
        if inspect.isclass(cls) and getattr(cls, "__module__", "").startswith(loaded.__name__):
            return cls
    return loaded


SPECS = {
    name: contract_of(getattr(hookspecs, name))
    for name in dir(hookspecs)
    if contract_of(getattr(hookspecs, name)) is not None
}


def check_kinds(name: str, obj: object) -> list[str]:
    """Every hook ``obj`` implements, each checked against its spec's kind: an unknown
    hook, an ``async def`` where the spec is synchronous, a wrapper, or a declaration on
    a class that is not a staticmethod stop start-up, naming the plugin and the hook."""
    implemented: list[str] = []
    for attribute, hook, candidate in implementations_on(obj):
        options = getattr(candidate, PROJECT_NAME + "_impl")
        contract = SPECS.get(hook)
        where = f"plugin {name!r}, hook {hook!r}"
        if contract is None:
            raise ConfigError(f"{where}: no such hook (known: {', '.join(sorted(SPECS))})")
        if options.get("hookwrapper") or options.get("wrapper"):
            raise ConfigError(f"{where}: hook wrappers are not supported")
        function = inspect.unwrap(candidate)
        if inspect.isasyncgenfunction(function):
            raise ConfigError(f"{where}: an async generator cannot implement a hook")
        if contract.sync and inspect.iscoroutinefunction(function):
            raise ConfigError(f"{where}: this hook is synchronous only; write it as a plain def")
        if contract.kind == "declaration" and inspect.isclass(obj):
            static = inspect.getattr_static(obj, attribute)
            if not isinstance(static, staticmethod | classmethod):
                raise ConfigError(f"{where}: a declaration on a plugin class is a @staticmethod")
        implemented.append(hook)
    return sorted(implemented)


def build_plugin_manager(
    config: Config,
    *,
    only: Iterable[str] | None = None,
    extra_plugins: Mapping[str, object] | None = None,
) -> PluginRegistry:
    """Load every enabled plugin, check its hooks' kinds and validate its settings.

    ``only`` (used by tests and tools) enables exactly the named plugins; ``extra_plugins``
    adds in-process plugin objects or classes under the given names (tests).
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
    objects: dict[str, object] = {}
    version = _project_version()
    for name in sorted(known):
        section = config.plugin_sections.get(name, {})
        enabled = name in extras or _is_enabled(name, section, only_set)
        if name in extras:
            source, plugin_version = "test", version
        elif name in builtins:
            source, plugin_version = "built-in", version
        else:
            ep = entry_points[name]
            source = f"entry point ({ep.dist.name if ep.dist else '?'})"
            plugin_version = ep.dist.version if ep.dist else "?"
        infos[name] = PluginInfo(name, plugin_version, source, enabled)
        if not enabled:
            pm.set_blocked(name)  # never imported, and nothing registers under its name
            continue
        if name in extras:
            loaded = extras[name]
        elif name in builtins:
            loaded = importlib.import_module(f"{BUILTIN_PACKAGE}.{name}")
        else:
            loaded = entry_points[name].load()
        objects[name] = _plugin_object(loaded)
        infos[name].hooks = check_kinds(name, objects[name])

    declarations = Declarations(objects)
    settings = {
        name: _validate_settings(
            name, declarations.plugin_settings(name), config.plugin_sections.get(name, {})
        )
        for name in objects
    }
    return PluginRegistry(pm=pm, infos=infos, settings=settings, objects=objects)
