"""The typed facade through which the kernel (and any plugin) calls hooks.

``kernel.hooks.on_hashed(file)``, ``kernel.hooks.render(file, size, format)``: one
method per spec in ``kernel.hookspecs``, with the spec's arguments and the combined
result's type, so every call site is typed and greppable. ``Declarations`` is the same
for the declaration hooks, which are read from plugin objects before a kernel exists.
The semantics of each kind (isolation, collection, first result) live in
``kernel.dispatch``; a meta-test checks that every spec has its method here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.dispatch import Dispatcher, HookFailure
from kernel.markers import PROJECT_NAME

if TYPE_CHECKING:
    import click
    import msgspec
    from sqlalchemy import FromClause

    from kernel.types import (
        FileRef,
        RenderResult,
        SearchFilter,
        SearchParam,
        SearchQuery,
        SearchSort,
        Tool,
    )

_IMPL_ATTRIBUTE = PROJECT_NAME + "_impl"


def implementations_on(plugin: object) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """``(attribute, hook name, function)`` for every hook a plugin object (module, class
    or instance) implements, found as pluggy finds them: attributes marked ``hookimpl``,
    named after the hook or carrying its ``specname``."""
    for attribute in dir(plugin):
        try:
            candidate = getattr(plugin, attribute)
        except Exception:  # a property that fails is no hook
            continue
        options = getattr(candidate, _IMPL_ATTRIBUTE, None)
        if isinstance(options, dict) and callable(candidate):
            yield attribute, options.get("specname") or attribute, candidate


def implementation_on(plugin: object, hook_name: str) -> Callable[..., Any] | None:
    """The function implementing ``hook_name`` on a plugin object, if any."""
    return next((f for _a, hook, f in implementations_on(plugin) if hook == hook_name), None)


class Declarations:
    """The declaration hooks of plugin objects, by plugin name."""

    def __init__(self, objects: Mapping[str, object]) -> None:
        self.objects = objects

    def plugin_settings(self, plugin: str) -> type[msgspec.Struct] | None:
        function = implementation_on(self.objects[plugin], "plugin_settings")
        return function() if function else None

    def migrations(self, plugin: str) -> Path | None:
        """The declared folder, else ``migrations/`` beside the plugin's module."""
        obj = self.objects[plugin]
        function = implementation_on(obj, "migrations")
        if function is not None:
            found = function()
            return Path(found) if found is not None else None
        if inspect.ismodule(obj):
            source: Any = obj
        else:
            source = inspect.getmodule(obj if inspect.isclass(obj) else type(obj))
        path = getattr(source, "__file__", None)
        if path is None:
            return None
        folder = Path(path).parent / "migrations"
        return folder if folder.is_dir() and any(folder.glob("*.py")) else None

    def cli_commands(self, cli: click.Group) -> None:
        for obj in self.objects.values():
            function = implementation_on(obj, "cli_commands")
            if function is not None:
                function(cli=cli)


class Hooks:
    """Every runtime hook as a typed method; ``kernel`` is passed for you."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    def implemented(self, method: Callable[..., Any]) -> bool:
        """Whether any plugin implements the hook of this facade method
        (``kernel.hooks.implemented(kernel.hooks.on_hashed)``): skip work nobody wants."""
        return self._d.has_implementations(method.__name__)

    # --- lifecycle ------------------------------------------------------------------------

    async def on_startup(self) -> list[HookFailure]:
        return await self._d.notify("on_startup")

    async def on_shutdown(self) -> list[HookFailure]:
        return await self._d.notify("on_shutdown")

    # --- contributions --------------------------------------------------------------------

    def routes(self) -> list[Any]:
        return self._d.collect_flat("routes")

    def app_plugins(self) -> list[Any]:
        return self._d.collect_flat("app_plugins")

    def job_counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {state: count}}``, every plugin's queues merged."""
        return {
            q: dict(states)
            for found in self._d.collect("job_counts")
            for q, states in found.items()
        }

    def tools(self) -> list[tuple[str, Tool]]:
        return self._d.collect_flat_by_plugin("tools")

    def search_params(self) -> list[tuple[str, SearchParam]]:
        return self._d.collect_flat_by_plugin("search_params")

    def search_filters(self, query: SearchQuery) -> list[SearchFilter]:
        found: list[SearchFilter] = []
        for result in self._d.collect("search_filters", query=query):
            found.extend(result if isinstance(result, Sequence) else [result])
        return found

    def search_sorts(self) -> list[tuple[str, SearchSort]]:
        return self._d.collect_flat_by_plugin("search_sorts")

    def storage_folders(self) -> list[tuple[str, Path]]:
        found = self._d.collect_flat_by_plugin("storage_folders")
        return [(plugin, Path(folder)) for plugin, folder in found]

    async def file_extras(
        self, files: Sequence[FileRef], user_id: int | None
    ) -> list[Mapping[int, Mapping[str, Any]]]:
        found = await self._d.acollect(
            "file_extras", files=files, user_id=user_id, in_snapshot=True
        )
        return [extras for _plugin, extras in found]

    def file_extras_here(self, files: Sequence[FileRef], user_id: int | None) -> list[Any] | None:
        """``file_extras`` called in the worker thread the caller is in (``collect_here``),
        or None when some implementation is async and only ``file_extras`` can call it.
        An item may be awaitable: await it on the event loop."""
        if not self._d.sync_only("file_extras"):
            return None
        found = self._d.collect_here("file_extras", files=files, user_id=user_id, in_snapshot=True)
        return [extras for _plugin, extras in found]

    async def photo_context(self, file: FileRef, entry: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(plugin, text)`` for each plugin with something to tell a model about the file."""
        found = await self._d.acollect("photo_context", file=file, entry=entry)
        return [(plugin, text) for plugin, text in found if isinstance(text, str) and text.strip()]

    # --- ingest -----------------------------------------------------------------------------

    async def on_file_discovered(self, file: FileRef) -> list[HookFailure]:
        return await self._d.notify("on_file_discovered", file=file)

    async def on_file_changed(self, file: FileRef) -> list[HookFailure]:
        return await self._d.notify("on_file_changed", file=file)

    async def on_hashed(self, file: FileRef) -> list[HookFailure]:
        return await self._d.notify("on_hashed", file=file)

    async def on_file_removed(self, file: FileRef) -> list[HookFailure]:
        return await self._d.notify("on_file_removed", file=file)

    async def on_files_moved(self, moves: Sequence[tuple[FileRef, FileRef]]) -> list[HookFailure]:
        return await self._d.notify("on_files_moved", moves=moves)

    async def file_user_data(self, files: Sequence[FileRef]) -> dict[int, dict[str, int]]:
        merged: dict[int, dict[str, int]] = {}
        for _plugin, found in await self._d.acollect("file_user_data", files=files):
            for file_id, counts in found.items():
                merged.setdefault(file_id, {}).update(counts)
        return merged

    async def drain_backlog(self, limit: int, *, skip: Collection[str] = ()) -> dict[str, int]:
        """Each plugin's count of files processed (0 for one that failed), but for the
        plugins named in ``skip``."""
        results = await self._d.notify_results("drain_backlog", skip=skip, limit=limit)
        return {name: int(count or 0) for name, count in results.items()}

    # --- decisions --------------------------------------------------------------------------

    async def render(self, file: FileRef, size: str, format: str) -> RenderResult | None:
        return await self._d.first("render", file=file, size=size, format=format)

    def date_taken_table(self) -> FromClause | None:
        return self._d.first_sync("date_taken_table")

    async def resolve_location(self, lat: float, lon: float, *, after: object = None) -> str | None:
        """The first answer; with ``after=plugin`` (an implementation calling from inside
        its own), the first answer of the implementations that come after it."""
        return await self._d.first("resolve_location", lat=lat, lon=lon, after=after)
