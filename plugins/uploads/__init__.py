"""uploads: ``POST /image`` — a photo or video sent by a client, added to a library folder.

The upload is streamed to a staging file (never held in memory), checked (a photo or
video by extension and magic bytes, within ``max_bytes``), linked into its folder under
a name that never overwrites, indexed at once and hashed in the background. Staging
files a killed server left are swept on start-up and on the full-scan cadence, with the
``.imageapi-upload-*.part`` temporaries older versions left in photo folders. Parsing:
``form``; staging, placing and sweeping: ``staging``; names: ``names``; the route:
``routes``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec
from litestar.handlers import HTTPRouteHandler

from kernel import hookimpl
from kernel.plugin import Plugin as KernelPlugin

from . import staging
from .settings import UploadSettings

if TYPE_CHECKING:
    from pathlib import Path

    from kernel.core import Kernel

log = logging.getLogger(__name__)
#: the request around the file: the other fields and the multipart framing
FORM_OVERHEAD = 1 << 20


class Plugin(KernelPlugin[UploadSettings]):
    """The uploads plugin of one kernel: its limit and the staging folder of each library
    (known from construction: the kernel asks for them while it is built)."""

    def __init__(self, kernel: Kernel, settings: UploadSettings) -> None:
        super().__init__(kernel, settings)
        self.max_bytes = settings.file_limit(kernel.config.kernel.upload_max_bytes)
        self.staging = staging.staging_folders(kernel.config.data_dir, kernel.libraries)

    def sweep(self) -> tuple[int, int]:
        """Delete abandoned staging files, then abandoned temporaries in photo folders
        (a walk of every library: names only). Returns (staged, temporaries) removed."""
        staged = staging.sweep_staging(self.staging.values())
        roots = [library.root for library in self.kernel.libraries]
        return staged, staging.sweep_temporaries(roots, self.kernel.skip_dirs)

    async def _sweep_periodically(self) -> None:
        """The photo-folder walk now, then both sweeps at the full-scan cadence."""
        while True:
            try:
                staged, temporaries = await asyncio.to_thread(self.sweep)
                if staged or temporaries:
                    log.info("removed %d staged and %d abandoned uploads", staged, temporaries)
            except Exception:
                log.exception("sweeping abandoned uploads failed; retrying later")
            await asyncio.sleep(self.kernel.config.watch_full_interval)

    # --- declarations ----------------------------------------------------------------------

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return UploadSettings

    @hookimpl
    def storage_folders(self) -> list[Path]:
        return sorted(set(self.staging.values()))

    @hookimpl
    def routes(self) -> list[HTTPRouteHandler]:
        from .routes import route  # the handlers import this module's ``Plugin``

        return [route(self, self.max_bytes + FORM_OVERHEAD)]

    # --- lifecycle -------------------------------------------------------------------------

    @hookimpl
    async def on_startup(self) -> None:
        """Before the first request: the staging folders are emptied of what a killed
        server left (cheap); the photo folders are walked in the background."""
        removed = await asyncio.to_thread(staging.sweep_staging, self.staging.values())
        if removed:
            log.info("removed %d staged uploads a stopped server left", removed)
        self.kernel.spawn_background(self._sweep_periodically(), "uploads: sweep")
