"""exiftool as the last resort, for files none of our readers can parse at all.

Our readers cover the containers a photo library is made of; a few formats remain that
they cannot open (Minolta MRW, Sigma X3F, JPEG XL where Pillow has no plugin, ...).
When ``exiftool`` is on PATH, such a file is handed to it once, the way the thumbnails
plugin asks it for RAW previews. It is never asked about a file one of our readers
could open, even one that simply carries no metadata: that would start a Perl process
for every screenshot. Without exiftool nothing changes, and nothing here is required.

One call per file, ``-j -n -G1 -a`` (JSON; numbers unformatted; every tag with its
group, duplicates kept) for the tags below. A missing, slow, failing or garbled
exiftool means "nothing found", never an error. The run is capped at ``TIMEOUT``
seconds; it runs inside the extraction worker, whose own time limit still applies.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from . import dates
from .fields import format_exposure
from .model import ExifData

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT = 8.0
_MAX_OUTPUT = 1024 * 1024

TAGS = (
    "Make",
    "Model",
    "LensModel",
    "Software",
    "DateTimeOriginal",
    "DateCreated",
    "CreateDate",
    "ModifyDate",
    "OffsetTimeOriginal",
    "OffsetTimeDigitized",
    "OffsetTime",
    "GPSLatitude",
    "GPSLongitude",
    "GPSAltitude",
    "ISO",
    "ISOSpeed",
    "RecommendedExposureIndex",
    "FNumber",
    "Aperture",
    "ExposureTime",
    "ShutterSpeed",
    "FocalLength",
    "Flash",
    "Orientation",
    "ImageSize",
)
ARGS = ("-j", "-n", "-G1", "-a", *(f"-{tag}" for tag in TAGS))

_EXIF = ("IFD0", "ExifIFD")


def run(path: Path) -> dict[str, Any] | None:
    """exiftool's tags for one file as ``{"Group:Tag": value}``, or None."""
    exe = shutil.which("exiftool")
    if not exe:
        return None
    try:
        done = subprocess.run(
            [exe, *ARGS, str(Path(path).resolve())],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        found = json.loads(done.stdout[:_MAX_OUTPUT])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.debug("%s: exiftool gave nothing usable: %r", path, exc)
        return None
    if not isinstance(found, list) or not found or not isinstance(found[0], dict):
        return None
    return found[0]


class _Tags:
    """exiftool's grouped output, read by tag name with a group preference."""

    def __init__(self, found: dict[str, Any]) -> None:
        self.pairs = [
            (key.split(":", 1)[0], key.split(":", 1)[1], value)
            for key, value in found.items()
            if ":" in key
        ]

    def values(self, tag: str, groups: Iterable[str] | None = None) -> list[tuple[str, Any]]:
        """(group, value) of ``tag``: from ``groups`` in that order (a prefix such as
        "XMP" matches "XMP-exif"), or from every group, EXIF first, then XMP, then the
        rest, when ``groups`` is None."""
        found = [(g, v) for g, t, v in self.pairs if t == tag]
        if groups is None:
            return sorted(found, key=lambda gv: _rank(gv[0]))
        return [
            (g, v) for name in groups for g, v in found if g == name or g.startswith(name + "-")
        ]

    def first(
        self, convert: Callable[[Any], T | None], *wanted: tuple[str, Iterable[str] | None]
    ) -> T | None:
        for tag, groups in wanted:
            for _group, value in self.values(tag, groups):
                converted = convert(value)
                if converted is not None:
                    return converted
        return None


def _rank(group: str) -> int:
    if group in _EXIF or group == "GPS":
        return 0
    return 1 if group.startswith("XMP") else 2


def _text(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    return text[:255] or None


def _positive(value: Any) -> float | None:
    """A positive number; of a list such as Nikon's ISO "0 800", the last one."""
    if isinstance(value, str):
        parts = value.split()
        value = parts[-1] if parts else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _iso(value: Any) -> int | None:
    number = _positive(value)
    return round(number) if number is not None and number != 65535 else None


def _date(tags: _Tags) -> tuple[dates.Stamp | None, str]:
    """Our chain's order over exiftool's names: DateTimeOriginal (EXIF, then XMP),
    CreateDate (EXIF, then XMP), EXIF's ModifyDate, then a maker record's
    DateTimeOriginal; with the EXIF OffsetTime* that goes with the EXIF dates."""
    rungs: tuple[tuple[tuple[str, ...], tuple[str, ...] | None, str, str | None], ...] = (
        (("DateTimeOriginal",), _EXIF, "DateTimeOriginal", "OffsetTimeOriginal"),
        (("DateTimeOriginal", "DateCreated"), ("XMP",), "XMP", None),
        (("CreateDate",), _EXIF, "DateTimeDigitized", "OffsetTimeDigitized"),
        (("CreateDate",), ("XMP",), "XMP", None),
        (("ModifyDate",), _EXIF, "DateTime", "OffsetTime"),
        (("DateTimeOriginal",), None, "MakerNotes", None),
    )
    for names, groups, source, offset_tag in rungs:
        for name in names:
            for group, value in tags.values(name, groups):
                stamp = dates.parse_exif_date(_text(value))
                if stamp is None or (groups is None and _rank(group) < 2):
                    continue
                if offset_tag:
                    offset = tags.first(lambda v: dates.parse_offset(_text(v)), (offset_tag, _EXIF))
                    stamp = dates.Stamp(
                        stamp.when, stamp.offset_minutes if offset is None else offset
                    )
                return stamp, source
    return None, ""


def _size(value: Any) -> tuple[int | None, int | None]:
    parts = str(value).replace("x", " ").split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        width, height = int(parts[0]), int(parts[1])
        if 0 < width <= 1_000_000 and 0 < height <= 1_000_000:
            return width, height
    return None, None


def _coordinate(value: Any, limit: float) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 7) if math.isfinite(number) and abs(number) <= limit else None


def read(path: Path) -> tuple[ExifData, dates.Stamp | None, str] | None:
    """What exiftool reads from ``path``, as our fields; None without exiftool or when
    it found nothing of ours in the file."""
    found = run(path)
    if not found:
        return None
    tags = _Tags(found)
    lat = tags.first(lambda v: _coordinate(v, 90), ("GPSLatitude", ("Composite",)))
    lon = tags.first(lambda v: _coordinate(v, 180), ("GPSLongitude", ("Composite",)))
    if lat is None or lon is None or (lat == 0 and lon == 0):
        lat = lon = None
    alt = tags.first(lambda v: _coordinate(v, 100_000), ("GPSAltitude", ("Composite",)))
    exposure = tags.first(_positive, ("ExposureTime", _EXIF), ("ShutterSpeed", ("Composite",)))
    orientation = tags.first(
        lambda v: v if isinstance(v, int) and 1 <= v <= 8 else None, ("Orientation", ("IFD0",))
    )
    flash = tags.first(
        lambda v: bool(v & 1) if isinstance(v, int) and v >= 0 else None, ("Flash", None)
    )
    width, height = _size(tags.first(_text, ("ImageSize", ("Composite",))))
    fields = ExifData(
        camera_make=tags.first(_text, ("Make", None)),
        camera_model=tags.first(_text, ("Model", None)),
        lens=tags.first(_text, ("LensModel", None)),
        software=tags.first(_text, ("Software", None)),
        width=width,
        height=height,
        orientation=orientation,
        gps_lat=lat,
        gps_lon=lon,
        gps_alt=alt if lat is not None else None,
        focal_length=_round(tags.first(_positive, ("FocalLength", _EXIF), ("FocalLength", None))),
        aperture=_round(tags.first(_positive, ("FNumber", _EXIF), ("Aperture", ("Composite",)))),
        exposure_time=_format_exposure(exposure),
        exposure_seconds=round(exposure, 9) if exposure is not None else None,
        iso=tags.first(
            _iso,
            ("ISO", _EXIF),
            ("ISOSpeed", _EXIF),
            ("RecommendedExposureIndex", _EXIF),
            ("ISO", ("XMP", "Composite")),
            ("ISO", None),
        ),
        flash=flash,
    )
    stamp, source = _date(tags)
    if stamp is None and fields == ExifData():
        return None
    return fields, stamp, source


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None and value < 100_000 else None


def _format_exposure(seconds: float | None) -> str | None:
    return format_exposure(seconds) if seconds is not None and seconds <= 86_400 else None
