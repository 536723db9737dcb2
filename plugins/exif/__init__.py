"""exif: capture date, camera, lens, exposure and GPS of every photo and video.

The extraction core (``extract``, ``pool``, the container and tag readers) is pure and
tested on its own; this module wires it into imageapi: the ``image_exif`` table, ingest
on ``on_hashed`` and from the backlog, ``GET /image/metadata``, camera / lens / GPS /
date filters and date-taken sorts for ``/photos``, the ``date_taken_table`` answer that
memories and other features group by, and two LLM tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from kernel import SearchFilter, SearchQuery, SearchSort, Tool, hookimpl
from kernel.core import Kernel
from kernel.types import FileRef, SearchParam

from . import ingest, search, store
from .routes import ROUTES
from .tools import TOOLS


class ExifSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.exif]`` in plugins.toml."""

    timeout_seconds: float = 10.0  # per file; a file that takes longer is marked failed
    batch_size: int = 64  # backlog rows committed per transaction

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be above 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


def settings(kernel: Kernel) -> ExifSettings:
    return kernel.settings_for("exif") or ExifSettings()


@hookimpl
def plugin_settings() -> type[msgspec.Struct]:
    return ExifSettings


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def routes() -> list[object]:
    return list(ROUTES)


@hookimpl
def tools() -> list[Tool]:
    return list(TOOLS)


@hookimpl
async def on_hashed(file: FileRef, kernel: Kernel) -> None:
    assert file.content_hash is not None
    await ingest.on_hashed(kernel, file, file.content_hash, settings(kernel).timeout_seconds)


@hookimpl
async def drain_backlog(kernel: Kernel, limit: int) -> int:
    config = settings(kernel)
    return await ingest.drain(kernel, limit, config.timeout_seconds, config.batch_size)


@hookimpl
async def on_file_changed(file: FileRef, kernel: Kernel) -> None:
    """New content: the old metadata is wrong now; the row comes back once it is hashed."""
    await asyncio.to_thread(store.forget, kernel, file.id)


@hookimpl
def search_params() -> list[SearchParam]:
    return list(search.PARAMS_DECLARED)


@hookimpl
def search_filters(query: SearchQuery) -> SearchFilter | None:
    return search.search_filter(query)


@hookimpl
def search_sorts() -> list[SearchSort]:
    return list(search.SORTS)


@hookimpl
def file_extras(files: Sequence[FileRef], kernel: Kernel) -> dict[int, dict[str, Any]]:
    """``date_taken`` and a compact ``exif`` object for each file of a page (one query)."""
    rows = store.load_compact(kernel, [ref.id for ref in files])
    extras: dict[int, dict[str, Any]] = {}
    for ref in files:
        row = rows.get(ref.id)
        if row is None or row.status != "ok":
            extras[ref.id] = {"date_taken": None, "exif": None}
        else:
            extras[ref.id] = {
                "date_taken": store.iso_date(row.date_taken, row.utc_offset_minutes),
                "exif": store.compact_json(row),
            }
    return extras


@hookimpl
def date_taken_table() -> Any:
    return search.date_taken_table()
