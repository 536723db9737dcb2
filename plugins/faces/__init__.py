"""faces: faces found by Apollo's inference service, keyed by content; persons; manual
boxes that survive re-runs.

Every photo (by content hash, so a copy in a second library costs no call) is sent once
to Apollo's ``detect`` endpoint as an upright JPEG; its faces are stored with boxes
normalised to the upright original and 512-float embeddings. Persons are named
identities faces are bound to: by hand, or automatically when the photo carries a tag
with the person's name and the face looks like them. ``GET /photos?person_ids=`` and each
photo's ``persons`` field come from here.

Without ``APOLLO_FACE_API_BASE_URL`` (or ``APOLLO_API_BASE_URL``) the plugin is inert:
its ingest hooks do nothing, face routes answer 503, persons routes still work. Modules:
``apollo`` (the client), ``pipeline`` (what is sent when), ``store`` and ``persons``
(the tables), ``images`` (upright pictures and crops), ``search`` (listings), ``routes``
and ``person_routes`` (HTTP), ``tools`` (LLM), ``cli``. numpy is imported where
embeddings are handled, not with the modules: a serving process that never touches a
face does not load it (5 MB each).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.exceptions import HTTPException

import kernel
from kernel import hookimpl
from kernel.types import FileRef, SearchFilter, SearchParam, SearchQuery, Tool

from . import search
from .apollo import Apollo
from .pipeline import Pipeline
from .settings import FaceSettings, effective

if TYPE_CHECKING:
    import click

    from kernel.core import Kernel

__all__ = ["FaceSettings", "Plugin"]
log = logging.getLogger(__name__)
NOT_CONFIGURED = "face detection is not configured (set APOLLO_FACE_API_BASE_URL)"


class Plugin(kernel.Plugin[FaceSettings]):
    """The faces plugin of one kernel: its settings with the operator's variables
    applied, and, while the kernel runs with an Apollo URL, its client and pipeline."""

    def __init__(self, kernel: Kernel, settings: FaceSettings) -> None:
        super().__init__(kernel, effective(settings, kernel.config.env))
        self.crops = kernel.config.data_dir / "faces" / "crops"
        self._apollo: Apollo | None = None
        self._pipeline: Pipeline | None = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_base_url)

    @property
    def pipeline(self) -> Pipeline:
        """The detection pipeline; 503 (the documented message) when inert."""
        if self._pipeline is None:
            if not self.configured:
                raise HTTPException(status_code=503, detail=NOT_CONFIGURED)
            raise RuntimeError("the faces plugin is not started")
        return self._pipeline

    def start(self) -> Pipeline | None:
        """Build the Apollo client and the pipeline (once; None when inert). Called by
        ``on_startup`` and the command line, in the event loop that will use them."""
        if self._pipeline is None and self.configured:
            s = self.settings
            self._apollo = Apollo(
                s.api_base_url or "",
                timeout=s.detect_timeout_sec,
                concurrency=s.detect_concurrency,
                max_response_bytes=s.max_response_bytes,
            )
            self._pipeline = Pipeline(self.kernel, s, self._apollo)
        return self._pipeline

    async def stop(self) -> None:
        pipeline, apollo = self._pipeline, self._apollo
        self._pipeline = self._apollo = None
        if pipeline is not None:
            await pipeline.close()
        if apollo is not None:
            await apollo.close()

    # --- declarations ----------------------------------------------------------------------

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return FaceSettings

    @staticmethod
    @hookimpl
    def cli_commands(cli: click.Group) -> None:
        from .cli import faces_group

        cli.add_command(faces_group)

    @hookimpl
    def storage_folders(self) -> list[Path]:
        return [self.crops]

    @hookimpl
    def routes(self) -> list[Any]:
        from .person_routes import ROUTES as PERSON_ROUTES  # web modules load with the app
        from .routes import ROUTES

        return [self.router([*ROUTES, *PERSON_ROUTES])]

    @hookimpl
    def tools(self) -> list[Tool]:
        from .tools import TOOLS

        return list(TOOLS)

    @hookimpl
    def search_params(self) -> list[SearchParam]:
        return list(search.PARAMS)

    @hookimpl
    def search_filters(self, query: SearchQuery) -> list[SearchFilter]:
        return search.person_filter(query)

    @hookimpl
    def file_extras(self, files: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
        return search.person_extras(self.kernel.db, files)

    # --- lifecycle -------------------------------------------------------------------------

    @hookimpl
    async def on_startup(self) -> None:
        if self.start() is None:
            log.info("faces: inert (%s)", NOT_CONFIGURED)
        else:
            log.info("faces: Apollo at %s", self.settings.api_base_url)

    @hookimpl
    async def on_shutdown(self) -> None:
        await self.stop()

    # --- ingest ----------------------------------------------------------------------------

    @hookimpl
    async def on_hashed(self, file: FileRef) -> None:
        if self._pipeline is not None:
            await self._pipeline.on_hashed(file)

    @hookimpl
    async def drain_backlog(self, limit: int) -> int:
        if self._pipeline is None:
            return 0
        budget = self.kernel.config.kernel.hook_timeout_seconds / 2
        return await self._pipeline.drain(limit, budget)
