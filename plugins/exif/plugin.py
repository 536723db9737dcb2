"""The exif plugin's class: hooks, settings and the resources of one kernel (see the
package docstring for what the plugin does)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, select

import kernel
from kernel import SearchFilter, SearchQuery, SearchSort, Tool, hookimpl
from kernel.types import FileRef, SearchParam

from . import ingest, search, store

if TYPE_CHECKING:
    from sqlalchemy import FromClause

    from kernel.core import Kernel


class ExifSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.exif]`` in plugins.toml."""

    timeout_seconds: float = 10.0  # per file; a file that takes longer is marked failed
    batch_size: int = 64  # backlog rows committed per transaction

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be above 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


class Plugin(kernel.Plugin[ExifSettings]):
    """The exif plugin of one kernel."""

    def __init__(self, kernel: Kernel, settings: ExifSettings) -> None:
        super().__init__(kernel, settings)
        # Worker processes and threads start on first use, so a kernel that never
        # ingests (a CLI command, a test of something else) costs nothing.
        self.ingest = ingest.Ingester(kernel, settings.timeout_seconds, settings.batch_size)

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return ExifSettings

    @hookimpl
    def routes(self) -> list[object]:
        """``GET /image/metadata``; its handler receives this instance as ``plugin``.

        The web modules are imported here rather than at the top: the extraction workers
        import this package too, and starting one should not load the web stack."""

        from .routes import ROUTES

        return [self.router(ROUTES)]

    @hookimpl
    def tools(self) -> list[Tool]:
        from .tools import TOOLS

        return list(TOOLS)

    @hookimpl
    async def on_hashed(self, file: FileRef) -> None:
        await self.ingest.on_hashed(file)

    @hookimpl
    async def drain_backlog(self, limit: int) -> int:
        return await self.ingest.drain(limit)

    @hookimpl
    def job_counts(self) -> dict[str, dict[str, int]]:
        """Hashed files whose metadata is not read yet (the backlog's anti-join, counted)."""
        pending = select(func.count()).select_from(ingest.backlog_query(None).subquery())
        with self.kernel.db.read() as conn:
            return {"exif": {"pending": int(conn.execute(pending).scalar_one())}}

    @hookimpl
    async def on_file_changed(self, file: FileRef) -> None:
        """New content: the old metadata is wrong now; the row comes back once it is hashed."""
        await asyncio.to_thread(store.forget, self.kernel, file.id)

    @hookimpl
    def on_shutdown(self) -> None:
        """Stop the worker processes and threads (runs in a worker thread: it joins them)."""
        self.ingest.close()

    @hookimpl
    def search_params(self) -> list[SearchParam]:
        return list(search.PARAMS_DECLARED)

    @hookimpl
    def search_filters(self, query: SearchQuery) -> SearchFilter | None:
        return search.search_filter(query)

    @hookimpl
    def search_sorts(self) -> list[SearchSort]:
        return list(search.SORTS)

    @hookimpl
    def file_extras(self, files: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
        """``date_taken`` and a compact ``exif`` object for each file of a page (one query)."""
        return store.listing_extras(self.kernel, [ref.id for ref in files])

    @hookimpl
    def date_taken_table(self) -> FromClause:
        return search.date_taken_table()
