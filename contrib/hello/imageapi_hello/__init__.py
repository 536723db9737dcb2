"""hello: an example imageapi plugin that greets visitors and photos, and counts it.

The whole plugin contract in one page (``README.md`` walks through it): a plugin class
built once per kernel with its validated settings, its own tables (``migrations/``,
found by convention), routes that reach the plugin instance, an LLM tool, and a search
parameter with a filter and a sort that ``GET /photos`` and the ``search_photos`` tool
offer as if they were the kernel's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)

import kernel
from kernel import SearchFilter, SearchParam, SearchQuery, SearchSort, Tool, hookimpl
from kernel.deps import CurrentUser
from kernel.tables import files
from kernel.types import InvalidParameter, ToolContext

metadata = MetaData()
greetings = Table(
    "hello_greetings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("greeted_at", Float, nullable=False),
)
photo_greetings = Table(
    "hello_photo_greetings",
    metadata,
    Column("file_id", Integer, ForeignKey(files.c.id, ondelete="CASCADE"), primary_key=True),
    Column("times", Integer, nullable=False),
    Column("last_greeted_at", Float, nullable=False),
)


class HelloSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.hello]`` in plugins.toml."""

    greeting: str = "Hello"


class Greeting(msgspec.Struct):
    message: str
    times: int


class PhotoToGreet(msgspec.Struct):
    path: str
    library: str | None = None


class GreetParams(msgspec.Struct):
    name: str


class Plugin(kernel.Plugin[HelloSettings]):
    """Built by the kernel as ``Plugin(kernel, settings)``; ``self.settings`` is typed."""

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[HelloSettings]:
        return HelloSettings

    # --- what the plugin does --------------------------------------------------------------

    def greet(self, name: str) -> Greeting:
        """Record a greeting and say how many times this name was greeted."""
        with self.kernel.db.write() as conn:
            conn.execute(insert(greetings).values(name=name, greeted_at=time.time()))
            count = conn.execute(
                select(func.count()).select_from(greetings).where(greetings.c.name == name)
            ).scalar_one()
        return Greeting(f"{self.settings.greeting}, {name}!", count)

    def greet_photo(self, library: str | None, path: str) -> Greeting:
        """Greet an indexed photo (the client's path goes through the kernel's resolver)."""
        resolved = self.kernel.libraries.resolve(library, path)
        ref = self.kernel.index.get(resolved.library.id, resolved.rel_path)
        if ref is None:
            raise NotFoundException(f"{resolved.rel_path} is not an indexed file")
        with self.kernel.db.write() as conn:  # one transaction: the count is this greeting's
            conn.execute(
                text(
                    "INSERT INTO hello_photo_greetings (file_id, times, last_greeted_at)"
                    " VALUES (:file_id, 1, :now) ON CONFLICT (file_id) DO UPDATE"
                    " SET times = hello_photo_greetings.times + 1, last_greeted_at = :now"
                ),  # SQLite and PostgreSQL both speak this upsert
                {"file_id": ref.id, "now": time.time()},
            )
            times = conn.execute(
                select(photo_greetings.c.times).where(photo_greetings.c.file_id == ref.id)
            ).scalar_one()
        return Greeting(f"{self.settings.greeting}, {ref.name}!", times)

    # --- routes and tools ------------------------------------------------------------------

    @hookimpl
    def routes(self) -> list[Router]:
        # Handlers declare ``plugin: HelloDep``; the router provides this very instance.
        return [self.router(ROUTES)]

    @hookimpl
    def tools(self) -> list[Tool]:
        async def greet(params: GreetParams, ctx: ToolContext) -> dict[str, Any]:
            return msgspec.to_builtins(await asyncio.to_thread(self.greet, params.name))

        description = "Greet someone by name and say how often they were greeted."
        return [Tool("greet", description, GreetParams, greet)]

    # --- search: a parameter, its filter, a sort ---------------------------------------------

    @hookimpl
    def search_params(self) -> list[SearchParam]:
        return [SearchParam("min_greetings", int, "Files greeted at least this many times.")]

    @hookimpl
    def search_filters(self, query: SearchQuery) -> SearchFilter | None:
        raw = query.get("min_greetings")
        if raw is None:
            return None
        if not raw.isdigit():
            raise InvalidParameter("min_greetings", f"not a count: {raw!r}")
        return SearchFilter.on(photo_greetings, photo_greetings.c.times >= int(raw))

    @hookimpl
    def search_sorts(self) -> list[SearchSort]:
        return [
            SearchSort.keyed(
                "MostGreeted",
                photo_greetings,
                photo_greetings.c.times,
                "ix_hello_photo_greetings_times",
                descending=True,
                description="Most greeted first; files never greeted last.",
            )
        ]


HelloDep = NamedDependency[Plugin]


@get("/hello", summary="Greet the caller")
async def hello_route(plugin: HelloDep, user: CurrentUser) -> Greeting:
    return await asyncio.to_thread(plugin.greet, user.username)


@post("/hello/photo", summary="Greet a photo", status_code=200)
async def hello_photo(plugin: HelloDep, data: JSONBody[PhotoToGreet]) -> Greeting:
    return await asyncio.to_thread(plugin.greet_photo, data.library, data.path)


ROUTES = [hello_route, hello_photo]
