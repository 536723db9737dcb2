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

from typing import TYPE_CHECKING

import msgspec
from litestar import Router

from kernel import hookimpl
from kernel.plugin import Plugin as KernelPlugin
from kernel.types import FileRef

from . import jobs, layout
from .settings import HlsSettings
from .worker import HlsService

if TYPE_CHECKING:
    from pathlib import Path

    from kernel.core import Kernel


class Plugin(KernelPlugin[HlsSettings]):
    """The HLS plugin of one kernel: its settings, its ``VIDEO_PATH`` and, while the
    kernel runs, its scheduler (``HlsService``).

    The folder is known from construction (the kernel asks for it while it is built); the
    scheduler lives from ``on_startup`` to ``on_shutdown``, which kills its runs and puts
    their jobs back in the queue. Routes reach this instance as the ``plugin``
    dependency of the Router ``routes`` returns, never by the plugin's name.
    """

    def __init__(self, kernel: Kernel, settings: HlsSettings) -> None:
        super().__init__(kernel, settings)
        self.root = layout.video_root(kernel.config)
        self._service: HlsService | None = None

    @property
    def service(self) -> HlsService:
        """The scheduler; only between ``on_startup`` and ``on_shutdown``."""
        if self._service is None:
            raise RuntimeError("the hls plugin is not started")
        return self._service

    # --- declarations ----------------------------------------------------------------------

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return HlsSettings

    @hookimpl
    def storage_folders(self) -> list[Path]:
        return [self.root]

    @hookimpl
    def routes(self) -> list[Router]:
        from .routes import ROUTES  # the handlers import this module's ``Plugin``

        return [self.router(ROUTES)]

    # --- lifecycle -------------------------------------------------------------------------

    @hookimpl
    async def on_startup(self) -> None:
        """Recover interrupted jobs, queue the pre-generation backlog, start the worker."""
        if self._service is None:
            self._service = HlsService(self.kernel, self.settings, self.root)
        self.kernel.spawn_background(self._service.run(), "hls: worker")

    @hookimpl
    async def on_shutdown(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            await service.close()

    # --- ingest ----------------------------------------------------------------------------

    @hookimpl
    async def on_hashed(self, file: FileRef) -> None:
        """A video's content is confirmed: queue its rendition (pre-generation)."""
        if file.media_type == "video" and self.settings.pregenerate:
            await self.service.request(file, requested=False)

    @hookimpl
    async def drain_backlog(self, limit: int) -> int:
        return await self.service.drain(limit)

    @hookimpl
    def job_counts(self) -> dict[str, dict[str, int]]:
        """Jobs by status; ``pending`` is the queued ones."""
        counts = jobs.counts(self.kernel.db)
        counts["pending"] = counts.get("queued", 0)
        return {"hls": counts}

    @hookimpl
    async def on_file_changed(self, file: FileRef) -> None:
        """The old rendition shows other content: stop and delete it (re-queued once hashed)."""
        if file.media_type == "video":
            await self.service.invalidate(file.id)

    @hookimpl
    async def on_file_removed(self, file: FileRef) -> None:
        if file.media_type == "video":
            await self.service.invalidate(file.id)
