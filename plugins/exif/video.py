"""Video metadata from the container header via PyAV (libavformat).

Opening a container with PyAV parses the header and probes the streams; the only frame
decoded is the first one, and only when the display rotation is not in a tag: PyAV
hands out a stream's display matrix on its frames alone (a phone's portrait clip is
stored landscape and says so there). The cost does not grow with the video's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from kernel.media.ffmpeg import input_url, main_video_stream, open_options, stream_rotation

from . import dates

# ISO 6709 as phones and ffmpeg write it: "+59.9139+010.7522+023.000/", altitude optional.
_ISO6709 = re.compile(r"\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?(?:CRS.*)?/?")
# QuickTime's epoch (1904) and the Unix epoch are what muxers write for "unknown".
_PLACEHOLDERS = {(1904, 1, 1), (1970, 1, 1)}
# Clockwise display rotation to the EXIF orientation a viewer applies.
_ROTATE_TO_ORIENTATION = {0: 1, 90: 6, 180: 3, 270: 8}


@dataclass
class VideoMeta:
    date: dates.Stamp | None = None
    gps: tuple[float, float, float | None] | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None


def parse_iso6709(text: str | None) -> tuple[float, float, float | None] | None:
    """Decimal-degree ISO 6709 to (lat, lon, alt); None when malformed or out of range."""
    if not text:
        return None
    match = _ISO6709.match(text)
    if not match:
        return None
    lat, lon = float(match[1]), float(match[2])
    alt = float(match[3]) if match[3] else None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon, alt


def _creation(tags: dict[str, str]) -> dates.Stamp | None:
    """The capture time: Apple's local-time-with-offset key first, else UTC creation_time.

    ``com.apple.quicktime.creationdate`` carries the wall clock and offset where the
    clip was shot; ``creation_time`` is UTC (offset 0), as the container stores it.
    """
    apple = dates.parse_iso_date(tags.get("com.apple.quicktime.creationdate"))
    if apple is not None and apple.offset_minutes is not None:
        return apple
    raw = tags.get("creation_time")
    stamp = dates.parse_iso_date(raw)
    if stamp is None or (stamp.when.year, stamp.when.month, stamp.when.day) in _PLACEHOLDERS:
        return None
    if stamp.offset_minutes not in (None, 0):
        # An explicit offset: convert to UTC so the rule "container dates are UTC" holds.
        stamp = dates.Stamp(stamp.when - timedelta(minutes=stamp.offset_minutes), 0)
    return dates.Stamp(stamp.when, 0)


def read_video(path: Path) -> VideoMeta:
    """Container tags plus the picture stream's stored size and display rotation (as an
    EXIF orientation); raises whatever PyAV raises."""
    import av

    meta = VideoMeta()
    options = open_options()  # local files only: no protocol a playlist could name
    with av.open(input_url(path), options=options, metadata_errors="replace") as container:
        tags: dict[str, str] = {}
        stream_tags: dict[str, str] = {}
        video = main_video_stream(container)  # not cover art
        if video is not None:
            stream_tags = {k.lower(): v for k, v in dict(video.metadata).items()}
            ctx = video.codec_context
            if ctx.width and ctx.height:
                meta.width, meta.height = int(ctx.width), int(ctx.height)
            meta.orientation = _ROTATE_TO_ORIENTATION[stream_rotation(container, video)]
        tags = {k.lower(): v for k, v in dict(container.metadata).items()}
    meta.date = _creation(tags) or _creation(stream_tags)
    for key in ("com.apple.quicktime.location.iso6709", "location", "location-eng"):
        meta.gps = parse_iso6709(tags.get(key))
        if meta.gps is not None:
            break
    meta.make = tags.get("com.apple.quicktime.make") or tags.get("make")
    meta.model = tags.get("com.apple.quicktime.model") or tags.get("model")
    meta.software = tags.get("com.apple.quicktime.software")
    return meta
