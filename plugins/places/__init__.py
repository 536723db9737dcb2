"""places: the household's own places (Home, Work, the cabin) from Apollo, for LLMs.

With ``APOLLO_API_BASE_URL`` set, the plugin answers the kernel's ``resolve_location``
hook ahead of the general geocoder: "Home — near Cambridge, Massachusetts, United
States", the place from Apollo (the smallest containing the point) and the "near" part
from the implementations after it (``kernel.hooks.resolve_location(..., after=self)``:
the insights plugin's Nominatim). It also offers the LLM tool ``get_personal_place_at``.
Without the variable it is inert: no hook answer, no tool, nothing sent. Apollo failing
is a warning in the log and the geocoder's answer alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

import kernel
from kernel import hookimpl
from kernel.types import Tool, ToolContext

from .apollo import Apollo

if TYPE_CHECKING:
    from kernel.core import Kernel

__all__ = ["PlacesSettings", "Plugin"]
URL_VARIABLE = "APOLLO_API_BASE_URL"


class PlacesSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[plugins.places]`` (optional); ``APOLLO_API_BASE_URL`` wins over ``api_base_url``."""

    api_base_url: str | None = None
    #: one Apollo call, connect to last byte, in seconds.
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0


class PlaceParams(msgspec.Struct, forbid_unknown_fields=True):
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90, description="Degrees north.")]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180, description="Degrees east.")]


class Plugin(kernel.Plugin[PlacesSettings]):
    def __init__(self, kernel: Kernel, settings: PlacesSettings) -> None:
        url = (kernel.config.env.get(URL_VARIABLE) or "").strip() or settings.api_base_url
        super().__init__(kernel, msgspec.structs.replace(settings, api_base_url=url or None))
        base = self.settings.api_base_url
        self.apollo = Apollo(base, timeout=settings.timeout_seconds) if base else None

    @property
    def configured(self) -> bool:
        return self.apollo is not None

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return PlacesSettings

    @hookimpl(tryfirst=True)
    async def resolve_location(self, lat: float, lon: float) -> str | None:
        """A personal place first, with the geocoder's answer as its "near" part."""
        if self.apollo is None:
            return None
        places = await self.apollo.places_at(lat, lon)
        if not places:
            return None  # the geocoder answers alone
        near = await self.kernel.hooks.resolve_location(lat, lon, after=self)
        label = places[0].label()
        return f"{label} — near {near}" if near else label

    @hookimpl
    def tools(self) -> list[Tool]:
        if self.apollo is None:
            return []
        return [
            Tool(
                name="get_personal_place_at",
                description=(
                    "The household's own named places (Home, Work, a cabin...) that contain"
                    " a latitude and longitude, smallest first, one a line."
                ),
                params=PlaceParams,
                call=self.get_personal_place_at,
            )
        ]

    async def get_personal_place_at(self, params: PlaceParams, ctx: ToolContext) -> str:
        assert self.apollo is not None
        places = await self.apollo.places_at(params.latitude, params.longitude)
        if places is None:
            return "The personal places service did not answer; no personal place is known."
        if not places:
            return "No personal place contains this position."
        return "\n".join(place.line() for place in places)

    @hookimpl
    async def on_shutdown(self) -> None:
        if self.apollo is not None:
            await self.apollo.close()
