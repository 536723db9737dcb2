"""insights: photo stories written by an LLM — a local Ollama, or OpenRouter — with an
agentic tool loop over every enabled plugin's tools.

Inert until a backend is configured (``OLLAMA_PRIMARY_URL`` / ``OLLAMA_URL``,
``OPENROUTER_API_KEY``): the routes answer 503 naming the variable, and nothing is sent
anywhere. The pieces: ``settings`` (environment and plugins.toml), ``ollama`` and
``openrouter`` (the two wire protocols), ``wire`` (their errors and bounded reading),
``context`` (a photo's facts and picture, through hooks), ``agent`` (the tool loop),
``service`` (generation), ``chat``/``history``/``chat_routes`` (chat continuation),
``store``/``tables`` (``photo_insights``), ``geocode``
(Nominatim behind the ``resolve_location`` hook), ``tools``, ``routes``, ``cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

import kernel
from kernel import hookimpl
from kernel.types import Tool

from .geocode import Nominatim
from .locks import FileLocks
from .settings import Environment, InsightsSettings
from .wire import redact

if TYPE_CHECKING:
    import click

    from kernel.core import Kernel

    from .service import InsightService

__all__ = ["InsightsSettings", "Plugin"]


class Plugin(kernel.Plugin[InsightsSettings]):
    """The insights plugin of one kernel: its environment, its backends (made on first
    use, in the server's event loop) and the per-file locks chat continuation shares."""

    def __init__(self, kernel: Kernel, settings: InsightsSettings) -> None:
        super().__init__(kernel, settings)
        self.env = Environment.read(kernel.config.env)
        self.locks = FileLocks()
        self._service: InsightService | None = None
        self._geocoder: Nominatim | None = None

    @property
    def configured(self) -> bool:
        return self.env.ollama_configured or self.env.openrouter_configured

    @property
    def geocoding(self) -> bool:
        """Nominatim is asked only once the operator opted in: a backend configured, or
        ``NOMINATIM_URL`` set (an unconfigured install sends nothing anywhere)."""
        return self.configured or bool((self.kernel.config.env.get("NOMINATIM_URL") or "").strip())

    @property
    def service(self) -> InsightService:
        if self._service is None:
            from .service import InsightService

            self._service = InsightService(self.kernel, self.settings, self.env, self.locks)
        return self._service

    @property
    def geocoder(self) -> Nominatim:
        if self._geocoder is None:
            self._geocoder = Nominatim(
                self.env.nominatim_url,
                self.service.http,
                user_agent=self.settings.nominatim_user_agent,
                precision=self.settings.geocode_precision,
                cache_size=self.settings.geocode_cache_size,
            )
        return self._geocoder

    def redact(self, text: str) -> str:
        return redact(text, [self.env.openrouter_key])

    # --- declarations ----------------------------------------------------------------------

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return InsightsSettings

    @staticmethod
    @hookimpl
    def cli_commands(cli: click.Group) -> None:
        from .cli import insights_group

        cli.add_command(insights_group)

    @hookimpl
    def routes(self) -> list[object]:
        from .chat_routes import CHAT_ROUTES  # the handlers import this module's ``Plugin``
        from .routes import ROUTES

        return [self.router([*ROUTES, *CHAT_ROUTES])]

    @hookimpl
    def tools(self) -> list[Tool]:
        from .tools import GEOCODE_TOOL, INSIGHT_TOOL

        return [INSIGHT_TOOL, GEOCODE_TOOL] if self.geocoding else [INSIGHT_TOOL]

    # --- decisions ---------------------------------------------------------------------------

    @hookimpl(trylast=True)
    async def resolve_location(self, lat: float, lon: float) -> str | None:
        """The general geocoder: last, so a personal place answers first."""
        if not self.geocoding:
            return None
        return await self.geocoder.lookup(lat, lon)

    # --- lifecycle ---------------------------------------------------------------------------

    @hookimpl
    async def on_shutdown(self) -> None:
        service, self._service = self._service, None
        self._geocoder = None
        if service is not None:
            await service.close()
