"""hls: every library video as HLS a phone can play, starting within seconds.

``POST /video/generate`` queues a rendition, ``GET /video/stream`` serves its playlist as
soon as ffmpeg has written the first segment (an EVENT playlist ffmpeg grows, ENDLIST
when done), and the segments come from ``VIDEO_PATH`` through a route that checks a
short-lived signed token in the URL, so players that cannot send headers work. Sources a
phone can already decode are remuxed (stream copy), the rest transcoded to H.264/AAC.

The ``hls_jobs`` table is the queue (see ``jobs``); the scheduler and crash recovery are
in ``worker``, ffmpeg itself in ``runner``, the on-disk layout and playlist rewriting in
``layout``, URL tokens in ``tokens``, the HTTP routes in ``routes``.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from kernel import hookimpl
from kernel.types import FileRef

from .settings import HlsSettings
from .worker import HlsService

if TYPE_CHECKING:
    from kernel.core import Kernel

_services: weakref.WeakKeyDictionary[Kernel, HlsService] = weakref.WeakKeyDictionary()
_services_lock = threading.Lock()


def service(kernel: Kernel) -> HlsService:
    """The scheduler of this kernel (tests run several kernels side by side)."""
    with _services_lock:
        found = _services.get(kernel)
        if found is None or found.closed:
            found = _services[kernel] = HlsService(kernel)
        return found


@hookimpl
def plugin_settings() -> type[msgspec.Struct]:
    return HlsSettings


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def storage_folders(kernel: Kernel) -> list[Path]:
    return [kernel.config.video_path]


@hookimpl(specname="routes")  # named apart so that ``plugins.hls.routes`` stays the module
def http_routes() -> list[object]:
    from .routes import ROUTES

    return list(ROUTES)


@hookimpl
async def on_startup(kernel: Kernel) -> None:
    """Recover interrupted jobs, queue the pre-generation backlog, start the worker."""
    kernel.spawn_background(service(kernel).run(), "hls: worker")


@hookimpl
async def on_shutdown(kernel: Kernel) -> None:
    with _services_lock:
        found = _services.pop(kernel, None)
    if found is not None:
        await found.close()


@hookimpl
async def on_hashed(file: FileRef, kernel: Kernel) -> None:
    """A video's content is confirmed: queue its rendition (pre-generation)."""
    svc = service(kernel)
    if file.media_type == "video" and svc.settings.pregenerate:
        await svc.request(file, requested=False)


@hookimpl
async def drain_backlog(kernel: Kernel, limit: int) -> int:
    return await service(kernel).drain(limit)


@hookimpl
async def on_file_changed(file: FileRef, kernel: Kernel) -> None:
    """The old rendition shows other content: stop and delete it (re-queued once hashed)."""
    if file.media_type == "video":
        await service(kernel).invalidate(file.id)


@hookimpl
async def on_file_removed(file: FileRef, kernel: Kernel) -> None:
    if file.media_type == "video":
        await service(kernel).invalidate(file.id)
