"""LLM tool: read one photo's metadata (finding photos is the kernel's ``search_photos``,
which takes this plugin's camera, date and place filters).

Errors a model can act on (a bad path, a bad date) come back as ``{"error": ...}``
rather than exceptions, so the model can correct itself and call again.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.exceptions import NotFoundException

from kernel.libraries import PathRefused
from kernel.types import InvalidParameter, Tool, ToolContext

from .routes import file_metadata


class MetadataParams(msgspec.Struct, forbid_unknown_fields=True):
    """One file, by its path inside a library."""

    path: str
    library: str | int | None = None


def _error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidParameter):
        return {"error": f"{exc.name}: {exc.reason}"}
    if isinstance(exc, PathRefused):
        return {"error": exc.detail}
    return {"error": str(getattr(exc, "detail", exc))}


async def get_photo_metadata(params: MetadataParams, ctx: ToolContext) -> dict[str, Any]:
    try:
        return await file_metadata(ctx.kernel, params.library, params.path, ctx.user_id)
    except (PathRefused, NotFoundException) as exc:
        return _error(exc)


TOOLS = [
    Tool(
        name="get_photo_metadata",
        description=(
            "Read the metadata of one photo or video by its library path: capture date"
            " (with UTC offset when known), camera, lens, exposure, size, GPS position,"
            " and what other features know about it (tags, favourite)."
        ),
        params=MetadataParams,
        call=get_photo_metadata,
    ),
]
