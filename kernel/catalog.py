"""The catalog: the one listing service of the kernel.

``GET /photos``, ``/favorites``, ``/memories`` and the ``search_photos`` LLM tool all go
through it: ``query`` turns a client's parameters into a checked ``SearchQuery``,
``search`` runs every enabled plugin's filters and the chosen sort
(``kernel.listing``), and ``entries`` gives each file the one JSON shape every listing
uses — the kernel's fields plus every plugin's ``file_extras``.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec

from kernel.config import ConfigError
from kernel.index import listed_in
from kernel.libraries import PathRefused
from kernel.listing import Statements, kernel_sorts, list_page
from kernel.listing_cache import query_key
from kernel.tables import files
from kernel.types import (
    FileRef,
    InvalidParameter,
    SearchParam,
    SearchQuery,
    SearchSort,
    Tool,
    ToolContext,
)

if TYPE_CHECKING:
    from kernel.core import Kernel

Found = TypeVar("Found")

KERNEL_PARAMS: dict[str, SearchParam] = {
    p.name: p
    for p in (
        SearchParam("path", str, "Folder inside the library ('' for its root)."),
        SearchParam("library", str, "Library id or name (default: the first library)."),
        SearchParam("recursive", bool, "Include every subfolder's files."),
        SearchParam("sort", str, "NameAsc (default), NameDesc, Shuffle, or a plugin's sort."),
        SearchParam("media_type", str, "Photo, Video or All (default)."),
        SearchParam("limit", int, "Page size (default: every match)."),
        SearchParam("offset", int, "Matches to skip before the page."),
        SearchParam("seed", int, "Shuffle seed; the response gives one to page on with."),
    )
}
KERNEL_SORTS = ("NameAsc", "NameDesc", "Shuffle")
MEDIA_TYPES = {
    "photo": "photo",
    "photos": "photo",
    "image": "photo",
    "video": "video",
    "videos": "video",
    "all": None,
}
MAX_LIMIT = 100_000
ENTRY_FIELDS = frozenset(
    {"id", "path", "library", "name", "size", "mtime", "media_type", "content_hash"}
)


@dataclass(frozen=True)
class Listing:
    """One page of a search: the files in order, and how many match in all."""

    files: list[FileRef]
    total: int


def media_type_of(raw: str | None) -> str | None:
    lowered = (raw or "all").strip().lower()
    if lowered not in MEDIA_TYPES:
        raise InvalidParameter("media_type", f"unknown media type {raw!r} (Photo, Video or All)")
    return MEDIA_TYPES[lowered]


class Catalog:
    """Listings of the index with every plugin's filters, sorts and file fields."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @cached_property
    def params(self) -> dict[str, SearchParam]:
        """Every listing parameter: the kernel's and each plugin's declared ones."""
        declared = dict(KERNEL_PARAMS)
        owner = dict.fromkeys(declared, "kernel")
        for plugin, param in self.kernel.hooks.search_params():
            if param.name in declared:
                raise ConfigError(
                    f"search parameter {param.name!r} is declared by both"
                    f" {owner[param.name]!r} and {plugin!r}"
                )
            declared[param.name], owner[param.name] = param, plugin
        return declared

    @cached_property
    def sorts(self) -> dict[str, SearchSort]:
        """The plugins' sorts by name (the kernel's depend on the request's seed)."""
        sorts: dict[str, SearchSort] = {}
        for plugin, sort in self.kernel.hooks.search_sorts():
            if sort.name in sorts or sort.name in KERNEL_SORTS:
                raise ConfigError(f"sort {sort.name!r} of plugin {plugin!r} is offered twice")
            sorts[sort.name] = sort
        return sorts

    def sort_names(self) -> list[str]:
        return [*KERNEL_SORTS, *sorted(self.sorts)]

    def query(
        self, params: Mapping[str, str], user_id: int | None, *, recursive: bool = False
    ) -> SearchQuery:
        """Check a client's parameters: the folder through the resolver, every name
        declared by the kernel or an enabled plugin, the kernel's own values."""
        unknown = sorted(k for k in params if k not in self.params and not k.startswith("_"))
        if unknown:
            raise InvalidParameter(
                unknown[0], "unknown parameter (is the plugin that provides it enabled?)"
            )
        resolved = self.kernel.libraries.resolve(params.get("library"), params.get("path", ""))
        if not resolved.abs_path.is_dir():
            raise PathRefused(400, "path must be a folder")
        probe = SearchQuery(params, None, 0, "", False)
        deep = probe.get_bool("recursive")
        return SearchQuery(
            params,
            user_id,
            resolved.library.id,
            resolved.rel_path,
            recursive if deep is None else deep,
            media_type_of(params.get("media_type")),
        )

    def sort(self, name: str | None, seed: int | None = None) -> tuple[SearchSort, int]:
        """The sort called ``name`` (default NameAsc) and the seed a Shuffle uses."""
        seed = secrets.randbelow(2**31) if seed is None else seed
        chosen = name or "NameAsc"
        sorts = {**kernel_sorts(seed), **self.sorts}
        if chosen not in sorts:
            known = ", ".join(self.sort_names())
            raise InvalidParameter("sort", f"unknown sort {chosen!r} (known: {known})")
        return sorts[chosen], seed

    def search(
        self, query: SearchQuery, sort: SearchSort, limit: int | None, offset: int = 0
    ) -> Listing:
        """One page of the files matching the query, in the sort's order (blocking: call
        it in a worker thread). Order and page over ids alone, then read the page's rows."""
        # A Shuffle's seed is in its statements: each is built for its request alone.
        key = query_key(query, sort) if sort.name != "Shuffle" else None
        statements = self.kernel.listing_cache.statements(
            key, lambda: self._statements(query, sort)
        )
        db = self.kernel.db
        with db.read() as conn:
            version = db.data_version(conn)  # before this transaction reads anything
            page = list_page(
                conn, statements, limit, offset, cache=self.kernel.listing_cache, version=version
            )
            rows = {}
            if page.ids:
                rows = {row.id: row for row in self.kernel.index.rows_by_id(conn, page.ids)}
        ordered = [rows[i] for i in page.ids if i in rows]
        return Listing(self.kernel.index.refs(ordered), page.total)

    def _statements(self, query: SearchQuery, sort: SearchSort) -> Statements:
        """Every enabled plugin's filters (``search_filters``: from the query alone, as its
        hookspec says) and the kernel's scope, as the statements of ``kernel.listing``."""
        filters = self.kernel.hooks.search_filters(query)
        scope = listed_in(query.library_id, query.path, query.recursive)
        if query.media_type:
            scope.append(files.c.media_type == query.media_type)
        return Statements.build(scope, filters, sort, query)

    async def page(
        self, query: SearchQuery, sort: SearchSort, limit: int | None, offset: int, user_id: int
    ) -> tuple[Listing, list[dict[str, Any]]]:
        """``search`` and ``entries`` of its files in one worker-thread hop."""
        return await self.read_entries(
            lambda: self.search(query, sort, limit, offset), lambda found: found.files, user_id
        )

    async def read_entries(
        self,
        read: Callable[[], Found],
        refs_of: Callable[[Found], Sequence[FileRef]],
        user_id: int | None,
    ) -> tuple[Found, list[dict[str, Any]]]:
        """What the blocking ``read`` found, and the ``entries`` of its files
        (``refs_of``), in one worker-thread hop: reading and then asking for the extras
        waited twice for a thread and twice for the event loop, and under load each wait
        is behind every other request (two hops when a plugin's ``file_extras`` is
        async). ``read`` may raise; the request gets its error."""
        hooks = self.kernel.hooks

        def read_and_extras() -> tuple[Found, Sequence[FileRef], list[Any] | None]:
            found = read()
            refs = refs_of(found)
            if not refs or not hooks.implemented(hooks.file_extras):
                return found, refs, []
            return found, refs, hooks.file_extras_here(list(refs), user_id)

        found, refs, extras = await asyncio.to_thread(read_and_extras)
        if extras is None:
            return found, await self.entries(refs, user_id)
        ready = [await item if inspect.isawaitable(item) else item for item in extras]
        return found, self._merged(refs, [e for e in ready if e is not None])

    async def entries(self, refs: Sequence[FileRef], user_id: int | None) -> list[dict[str, Any]]:
        """Each file's JSON: the kernel's fields, then every plugin's ``file_extras``."""
        hooks = self.kernel.hooks
        if not refs or not hooks.implemented(hooks.file_extras):
            return self._merged(refs, [])
        return self._merged(refs, await hooks.file_extras(list(refs), user_id))

    @staticmethod
    def _merged(
        refs: Sequence[FileRef], extras: Sequence[Mapping[int, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        entries = [
            {
                "id": r.id,
                "path": r.rel_path,
                "library": r.library_id,
                "name": r.name,
                "size": r.size,
                "mtime": r.mtime_ns / 1e9,
                "media_type": r.media_type,
                "content_hash": r.content_hash,
            }
            for r in refs
        ]
        by_id = {entry["id"]: entry for entry in entries}
        for found in extras:
            for file_id, fields in found.items():
                entry = by_id.get(file_id)
                if entry is None:
                    continue
                if ENTRY_FIELDS.isdisjoint(fields):
                    entry.update(fields)
                else:  # never a kernel field
                    entry.update((k, v) for k, v in fields.items() if k not in ENTRY_FIELDS)
        return entries

    # --- the search_photos tool ---------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """``search_photos``: every enabled plugin's filters and sorts, for an LLM."""
        fields: list[tuple[str, Any, Any]] = [
            ("path", Annotated[str, msgspec.Meta(description="Folder ('' = library root).")], ""),
            ("library", str | int | None, None),
            ("recursive", Annotated[bool, msgspec.Meta(description="Include subfolders.")], True),
            (
                "sort",
                Annotated[str, msgspec.Meta(description=", ".join(self.sort_names()))],
                "NameAsc",
            ),
            ("media_type", Annotated[str, msgspec.Meta(description="Photo, Video or All.")], "All"),
            ("limit", Annotated[int, msgspec.Meta(ge=1, le=SEARCH_TOOL_LIMIT)], 50),
            ("offset", Annotated[int, msgspec.Meta(ge=0)], 0),
        ]
        for name, param in self.params.items():
            if name not in KERNEL_PARAMS:
                meta = msgspec.Meta(description=param.description) if param.description else None
                # A model sends numbers where text would do (Unix seconds for a date).
                kind = (str | int | float) if param.type is str else param.type
                kind = kind | None
                fields.append((name, Annotated[kind, meta] if meta else kind, None))
        params = msgspec.defstruct("SearchPhotosParams", fields, forbid_unknown_fields=True)
        description = (
            "Find photos and videos in a library folder (and below it) by any of the filters"
            " given (all must match), sorted as asked. Returns the total match count and a"
            " page of files with their metadata, tags and what other features know."
        )
        return [Tool("search_photos", description, params, self._search_tool)]

    async def _search_tool(self, params: Any, ctx: ToolContext) -> dict[str, Any]:
        raw: dict[str, str] = {}
        for name in params.__struct_fields__:
            value = getattr(params, name)
            if value is None or name in ("limit", "offset", "sort"):
                continue
            if isinstance(value, bool):
                raw[name] = "true" if value else "false"
            elif isinstance(value, list):
                raw[name] = ",".join(str(v) for v in value)
            else:
                raw[name] = str(value)
        try:
            query = self.query(raw, ctx.user_id, recursive=True)
            sort, _seed = self.sort(params.sort)
            listing = await asyncio.to_thread(self.search, query, sort, params.limit, params.offset)
        except InvalidParameter as exc:
            return {"error": f"{exc.name}: {exc.reason}"}
        except PathRefused as exc:
            return {"error": exc.detail}
        return {
            "total": listing.total,
            "offset": params.offset,
            "photos": await self.entries(listing.files, ctx.user_id),
        }


SEARCH_TOOL_LIMIT = 500
