"""thumbnails: thumbnails, large previews and animated GIFs of every photo and video.

Served through the kernel's ``render`` hook (``GET /image?path=&size=thumb|preview|gif
&format=jpeg|webp``), made ahead of time on ingest and on demand when missing. The
``thumbnails`` table is the queue: a crash, or the plugin switched off and on, is caught
up by ``drain_backlog``; a file that cannot be rendered is recorded with the reason and
left alone until it changes. Storage layout: see ``layout``; rendering: ``render``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from litestar.exceptions import NotFoundException
from PIL import Image

from kernel import InvalidParameter, RenderResult, hookimpl
from kernel.types import FileRef

from . import layout, store
from .settings import ThumbnailSettings
from .worker import Thumbnailer, Unrenderable

if TYPE_CHECKING:
    import click

    from kernel.core import Kernel

#: One render pool per running kernel (tests run several side by side); made on first
#: use, closed and dropped by ``on_shutdown``.
_services: dict[Kernel, Thumbnailer] = {}
_services_lock = threading.Lock()


def service(kernel: Kernel) -> Thumbnailer:
    """The render pool of this kernel."""
    with _services_lock:
        found = _services.get(kernel)
        if found is None:
            found = _services[kernel] = Thumbnailer(kernel)
        return found


def _discard(kernel: Kernel, file: FileRef) -> None:
    """Delete a file's renditions and its state row (it goes back into the backlog)."""
    store.forget(kernel.db, [file.id])
    config = kernel.config
    layout.remove(
        layout.all_paths(config, file.library_id, file.rel_path),
        stop_at=[config.thumbnails, config.gifs_directory],
    )


# --- declarations --------------------------------------------------------------------------


@hookimpl
def plugin_settings() -> type[msgspec.Struct]:
    return ThumbnailSettings


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def storage_folders(kernel: Kernel) -> list[Path]:
    return [kernel.config.thumbnails, kernel.config.gifs_directory]


@hookimpl
def cli_commands(cli: click.Group) -> None:
    from .cli import thumbnails_group

    cli.add_command(thumbnails_group)


# --- lifecycle -------------------------------------------------------------------------------


@hookimpl
async def on_startup(kernel: Kernel) -> None:
    settings: ThumbnailSettings = kernel.settings_for("thumbnails")
    Image.MAX_IMAGE_PIXELS = int(settings.max_megapixels * 1_000_000)
    service(kernel)
    roots = [kernel.config.thumbnails, kernel.config.gifs_directory]
    kernel.spawn_background(
        asyncio.to_thread(layout.sweep_temporaries, roots), "thumbnails: sweep temporaries"
    )


@hookimpl
async def on_shutdown(kernel: Kernel) -> None:
    with _services_lock:
        found = _services.pop(kernel, None)
    if found is not None:
        await asyncio.to_thread(found.close)


# --- ingest ----------------------------------------------------------------------------------


@hookimpl
async def on_file_discovered(file: FileRef, kernel: Kernel) -> None:
    """Put idle render threads to work while the scanner is still hashing (returns at
    once; when every thread is busy the file waits for ``on_hashed`` as usual)."""
    thumbnailer = service(kernel)
    variants = thumbnailer.pregenerated(file)
    if variants:
        thumbnailer.submit_if_idle(file, variants)


@hookimpl
async def on_hashed(file: FileRef, kernel: Kernel) -> None:
    """Hand the file to the pool and return: the scanner hashes on meanwhile."""
    thumbnailer = service(kernel)
    variants = thumbnailer.pregenerated(file)
    if variants:
        await thumbnailer.submit_bounded(file, variants)


@hookimpl
async def drain_backlog(kernel: Kernel, limit: int) -> int:
    """Wait for the ingest work in flight, then render what the table says is missing."""
    budget = kernel.config.kernel.hook_timeout_seconds / 2
    return await service(kernel).drain(limit, budget)


@hookimpl
def on_file_changed(file: FileRef, kernel: Kernel) -> None:
    _discard(kernel, file)


@hookimpl
def on_file_removed(file: FileRef, kernel: Kernel) -> None:
    _discard(kernel, file)


# --- serving ---------------------------------------------------------------------------------


@hookimpl(specname="render")  # named apart so that ``plugins.thumbnails.render`` stays the module
async def render_rendition(
    file: FileRef, size: str, format: str, kernel: Kernel
) -> RenderResult | None:
    """``size=thumb|preview`` (``format=jpeg|webp``) of any file, ``size=gif`` of a video."""
    thumbnailer = service(kernel)
    v = layout.variant(thumbnailer.settings, size, format)
    if v is None:
        return None
    if v.is_gif and file.media_type != "video":
        raise InvalidParameter("size", "gif (an animated preview) is only made of videos")
    try:
        path = await thumbnailer.serve(file, v)
    except Unrenderable as exc:
        raise NotFoundException(f"no {v.size} of {file.rel_path}: {exc}") from None
    return RenderResult(path, v.media_type, thumbnailer.settings.cache_seconds)
