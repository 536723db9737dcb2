"""``[plugins.thumbnails]`` in plugins.toml, validated at start-up."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Positive = Annotated[int, msgspec.Meta(gt=0, le=16384)]


class ThumbnailSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of the thumbnails plugin (every key is optional).

    ``workers`` 0 means one render thread per CPU: Pillow and PyAV release the GIL
    while they decode, so threads use every core.
    """

    workers: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    pregenerate_sizes: list[Literal["thumb", "preview"]] = msgspec.field(
        default_factory=lambda: ["thumb"]
    )
    thumb_size: Positive = 200
    preview_size: Positive = 1440
    gif: bool = True
    gif_frames: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    gif_fps: Annotated[float, msgspec.Meta(gt=0, le=50)] = 2.0
    cache_seconds: Annotated[int, msgspec.Meta(ge=0)] = 86400
    #: the largest picture decoded, in megapixels; bigger ones are refused as decompression
    #: bombs. Pillow's own default is 89.5 (it errors at twice that); 100 MP medium-format
    #: cameras and panoramas need more. Process-wide (Pillow's MAX_IMAGE_PIXELS).
    max_megapixels: Annotated[float, msgspec.Meta(gt=0, le=2000)] = 179.0
    #: the pixels all render threads may hold decoded at once, in megapixels (about 3.3
    #: bytes each while decoding): bigger pictures wait for each other instead of taking
    #: workers x 550 MiB. A picture above the budget still renders, alone.
    render_budget_megapixels: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 256.0
