"""thumbnails: thumbnails, large previews and animated GIFs of every photo and video.

Served through the kernel's ``render`` hook (``GET /image?path=&size=thumb|preview|gif
&format=jpeg|webp``), made ahead of time on ingest and on demand when missing. The
``thumbnails`` table is the queue: a crash, or the plugin switched off and on, is caught
up by ``drain_backlog``; a file that cannot be rendered is recorded with the reason and
left alone until it changes. Storage folders and layout: ``layout``; which decoder a file
goes through: ``dispatch``, built on the primitives of ``imaging``; the render pool:
``worker``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec
from litestar.exceptions import NotFoundException
from PIL import Image

from kernel import InvalidParameter, RenderResult, hookimpl
from kernel.plugin import Plugin as KernelPlugin
from kernel.types import FileRef

from . import layout, store
from .settings import ThumbnailSettings
from .worker import Thumbnailer, Unrenderable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import click

    from kernel.core import Kernel


class Plugin(KernelPlugin[ThumbnailSettings]):
    """The thumbnails plugin of one kernel: its settings, its storage folders and, while
    the kernel runs, its render pool.

    The folders are known from construction (the kernel asks for them while it is built);
    the pool (threads) exists between ``on_startup`` and ``on_shutdown``, so a kernel that
    is built and never started (a command that only migrates) starts no thread.
    """

    def __init__(self, kernel: Kernel, settings: ThumbnailSettings) -> None:
        super().__init__(kernel, settings)
        self.storage = layout.Storage.from_config(kernel.config)
        self._thumbnailer: Thumbnailer | None = None

    @property
    def thumbnailer(self) -> Thumbnailer:
        """The render pool; only between ``on_startup`` (or ``start``) and shutdown."""
        if self._thumbnailer is None:
            raise RuntimeError("the thumbnails plugin is not started")
        return self._thumbnailer

    def start(self) -> Thumbnailer:
        """Apply the process-wide picture limit and build the render pool (once).

        Called by ``on_startup`` and by the command line, which renders without a server.
        """
        Image.MAX_IMAGE_PIXELS = int(self.settings.max_megapixels * 1_000_000)
        if self._thumbnailer is None:
            self._thumbnailer = Thumbnailer(self.kernel, self.settings, self.storage)
        return self._thumbnailer

    def stop(self) -> None:
        """Finish the renders under way, commit their rows, stop the threads."""
        thumbnailer, self._thumbnailer = self._thumbnailer, None
        if thumbnailer is not None:
            thumbnailer.close()

    def _discard(self, file: FileRef) -> None:
        """Delete a file's renditions and its state row (it goes back into the backlog)."""
        store.forget(self.kernel.db, [file.id])
        paths = layout.all_paths(self.storage, file.library_id, file.rel_path)
        layout.remove(paths, stop_at=self.storage.roots)

    # --- declarations ----------------------------------------------------------------------

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return ThumbnailSettings

    @staticmethod
    @hookimpl
    def cli_commands(cli: click.Group) -> None:
        from .cli import thumbnails_group

        cli.add_command(thumbnails_group)

    @hookimpl
    def storage_folders(self) -> list[Path]:
        return self.storage.roots

    # --- lifecycle -------------------------------------------------------------------------

    @hookimpl
    async def on_startup(self) -> None:
        self.start()
        self.kernel.spawn_background(
            asyncio.to_thread(layout.sweep_temporaries, self.storage.roots),
            "thumbnails: sweep temporaries",
        )

    @hookimpl
    async def on_shutdown(self) -> None:
        await asyncio.to_thread(self.stop)

    # --- ingest ----------------------------------------------------------------------------

    @hookimpl
    async def on_file_discovered(self, file: FileRef) -> None:
        """Put idle render threads to work while the scanner is still hashing (returns at
        once; when every thread is busy the file waits for ``on_hashed`` as usual)."""
        variants = self.thumbnailer.pregenerated(file)
        if variants and not self.kernel.claims.shared:  # scale-out: renders are claimed
            self.thumbnailer.submit_if_idle(file, variants)

    @hookimpl
    async def on_hashed(self, file: FileRef) -> None:
        """Hand the file to the pool and return: the scanner hashes on meanwhile."""
        variants = self.thumbnailer.pregenerated(file)
        if not variants:
            return
        if not self.kernel.claims.shared or await asyncio.to_thread(self.thumbnailer.claim, file):
            await self.thumbnailer.submit_bounded(file, variants)

    @hookimpl
    async def drain_backlog(self, limit: int) -> int:
        """Wait for the ingest work in flight, then render what the table says is missing."""
        budget = self.kernel.config.kernel.hook_timeout_seconds / 2
        return await self.thumbnailer.drain(limit, budget)

    @hookimpl
    def job_counts(self) -> dict[str, dict[str, int]]:
        """Present files by state: ``pending`` (no row yet), ``done``, ``failed``."""
        counts = store.counts(self.kernel.db)
        counts["pending"] = counts.pop("none", 0)
        return {"thumbnails": counts}

    @hookimpl
    def on_file_changed(self, file: FileRef) -> None:
        self._discard(file)

    @hookimpl
    def on_file_removed(self, file: FileRef) -> None:
        self._discard(file)

    @hookimpl
    def on_files_moved(self, moves: Sequence[tuple[FileRef, FileRef]]) -> None:
        """Renditions are stored under the path: rename them along (no render). The state
        row is keyed by the file's id, which a move keeps."""
        for old, new in moves:
            layout.move(
                self.storage, (old.library_id, old.rel_path), (new.library_id, new.rel_path)
            )

    # --- serving ---------------------------------------------------------------------------

    @hookimpl
    async def render(self, file: FileRef, size: str, format: str) -> RenderResult | None:
        """``size=thumb|preview`` (``format=jpeg|webp``) of any file, ``size=gif`` of a video."""
        v = layout.variant(self.settings, size, format)
        if v is None:
            return None
        if v.is_gif and file.media_type != "video":
            raise InvalidParameter("size", "gif (an animated preview) is only made of videos")
        try:
            path = await self.thumbnailer.serve(file, v)
        except Unrenderable as exc:
            raise NotFoundException(f"no {v.size} of {file.rel_path}: {exc}") from None
        return RenderResult(path, v.media_type, self.settings.cache_seconds)
