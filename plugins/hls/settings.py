"""``[plugins.hls]`` in plugins.toml, validated at start-up."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class HlsSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of the HLS plugin (every key is optional).

    ``max_concurrent`` bounds the ffmpeg processes that run at once. A video a client is
    waiting for does not queue behind pre-generation: it suspends a pre-generation
    process (SIGSTOP) for as long as it runs, so the bound holds and the user still gets
    the first segment within seconds.
    """

    pregenerate: bool = True
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    segment_seconds: Annotated[float, msgspec.Meta(ge=2, le=10)] = 4.0
    preset: Preset = "veryfast"
    crf: Annotated[int, msgspec.Meta(ge=0, le=51)] = 21
    #: short side of a transcoded picture at most (1080 = "1080p"); 0 keeps the size.
    max_resolution: Annotated[int, msgspec.Meta(ge=0, le=8192)] = 1080
    audio_bitrate_kbps: Annotated[int, msgspec.Meta(ge=32, le=512)] = 160
    nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 10
    #: how long playlist and segment URLs stay valid.
    token_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)] = 4 * 3600
    #: how long ``GET /video/stream`` waits for the first segment of a new job.
    stream_wait_seconds: Annotated[float, msgspec.Meta(ge=0, le=120)] = 15.0
    #: an ffmpeg run is killed after max(timeout_min_seconds, duration * timeout_ratio).
    timeout_min_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    timeout_ratio: Annotated[float, msgspec.Meta(gt=0)] = 10.0
