"""From raw EXIF tag values to the typed, sanity-checked fields of ``ExifData``.

Each function reads a few tags and returns None for anything missing or implausible,
so one bad tag only blanks its own field. Writers get the types wrong often enough
(a SHORT array for a RATIONAL, a 0/0 rational, an ASCII "1" for a BYTE) that every
reader here accepts the variants it has a reasonable reading for.
"""

from __future__ import annotations

import math
from typing import Any

from . import dates
from .tiff import EXIF, GPS, IFD0, Tags, first_int, first_number, numbers, text

_MAX_PIXELS_SIDE = 1_000_000


def string(tags: Tags, ifd: str, tag: int) -> str | None:
    return text(tags.get(ifd, tag))


def positive(value: float | None, upper: float) -> float | None:
    return value if value is not None and 0 < value <= upper else None


def orientation(tags: Tags) -> int | None:
    value = first_int(tags.get(IFD0, 0x0112))
    return value if value is not None and 1 <= value <= 8 else None


def size_side(value: Any) -> int | None:
    side = first_int(value)
    return side if side is not None and 0 < side <= _MAX_PIXELS_SIDE else None


def exif_size(tags: Tags, allow_ifd0: bool) -> tuple[int | None, int | None]:
    """PixelX/YDimension, else IFD0's ImageWidth/Length unless IFD0 is a reduced preview."""
    width, height = size_side(tags.get(EXIF, 0xA002)), size_side(tags.get(EXIF, 0xA003))
    if width and height:
        return width, height
    subfile = first_int(tags.get(IFD0, 0x00FE)) or 0
    if allow_ifd0 and not subfile & 1:
        width, height = size_side(tags.get(IFD0, 0x0100)), size_side(tags.get(IFD0, 0x0101))
        if width and height:
            return width, height
    return None, None


def _ref(value: Any) -> str:
    """A GPS reference letter; some writers use bytes or lists of char codes."""
    return (text(value) or "").upper()[:1]


def _degrees(value: Any) -> float | None:
    """Degrees, minutes, seconds (any trailing parts may be missing) to decimal degrees."""
    parts = numbers(value)
    if not parts or any(p is None or p < 0 for p in parts[:3]):
        return None
    total = 0.0
    for part, scale in zip(parts[:3], (1.0, 60.0, 3600.0), strict=False):
        total += (part or 0.0) / scale
    return total


def gps(tags: Tags) -> tuple[float | None, float | None, float | None]:
    """Signed decimal degrees with the hemisphere refs applied; altitude below sea
    level negative. (0, 0) is what receivers without a fix write, so it is dropped.
    """
    if _ref(tags.get(GPS, 0x09)) == "V":  # GPSStatus: measurement void
        return None, None, None
    lat, lon = _degrees(tags.get(GPS, 0x02)), _degrees(tags.get(GPS, 0x04))
    if lat is None or lon is None or lat > 90 or lon > 180 or (lat == 0 and lon == 0):
        return None, None, None
    if _ref(tags.get(GPS, 0x01)) == "S":
        lat = -lat
    if _ref(tags.get(GPS, 0x03)) == "W":
        lon = -lon
    alt = first_number(tags.get(GPS, 0x06))
    if alt is not None:
        ref_raw = tags.get(GPS, 0x05)
        ref = first_int(ref_raw) if not isinstance(ref_raw, str) else None
        if ref is None:
            ref = 1 if _ref(ref_raw) == "1" else 0
        alt = -abs(alt) if ref == 1 else alt
        if abs(alt) > 100_000:
            alt = None
    return round(lat, 7), round(lon, 7), alt


def focal_length(tags: Tags) -> float | None:
    value = positive(first_number(tags.get(EXIF, 0x920A)), 10_000)
    return round(value, 2) if value else None


def aperture(tags: Tags) -> float | None:
    """FNumber, else the APEX ApertureValue (f = 2^(Av/2))."""
    value = positive(first_number(tags.get(EXIF, 0x829D)), 1000)
    if value is None:
        apex = first_number(tags.get(EXIF, 0x9202))
        if apex is not None and -2 < apex < 30:
            value = 2 ** (apex / 2)
    return round(value, 2) if value else None


def format_exposure(seconds: float) -> str:
    """Photographer's notation: "1/250" for short times, "0.4" or "30" for long ones.

    Same threshold as exiftool, so values shown next to other tools agree.
    """
    if seconds <= 0.25001:
        return f"1/{round(1 / seconds)}"
    return f"{seconds:.1f}".removesuffix(".0")


def exposure(tags: Tags) -> tuple[str | None, float | None]:
    """ExposureTime, else the APEX ShutterSpeedValue (t = 2^-Tv)."""
    seconds = positive(first_number(tags.get(EXIF, 0x829A)), 86_400)
    raw = tags.get(EXIF, 0x829A)
    if seconds is not None and isinstance(raw, list) and len(raw) == 2 and raw[1]:
        # A SHORT/LONG pair (1, 250) instead of a RATIONAL: read it as a fraction.
        pair = numbers(raw)
        if pair[0] is not None and pair[1]:
            seconds = pair[0] / pair[1]
    if seconds is None:
        apex = first_number(tags.get(EXIF, 0x9201))
        if apex is not None and -20 < apex < 30:
            seconds = 2**-apex
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None, None
    return format_exposure(seconds), round(seconds, 9)


def iso(tags: Tags) -> int | None:
    """ISOSpeedRatings; 65535 means "saturated", then the exact ISOSpeed or REI."""
    value = first_int(tags.get(EXIF, 0x8827))
    if value is not None and 0 < value < 65535:
        return value
    for tag in (0x8833, 0x8832):  # LONG tags, so they can hold the real high value
        value = first_int(tags.get(EXIF, tag))
        if value is not None and 0 < value <= 10_000_000:
            return value
    return None


def flash(tags: Tags) -> bool | None:
    value = first_int(tags.get(EXIF, 0x9209))
    return bool(value & 1) if value is not None and value >= 0 else None


# Per date tag: (ifd, tag, sub-second tag, offset tags in order of preference).
DATE_TAGS: dict[str, tuple[str, int, int, tuple[int, ...]]] = {
    "DateTimeOriginal": (EXIF, 0x9003, 0x9291, (0x9011, 0x9010, 0x9012)),
    "DateTimeDigitized": (EXIF, 0x9004, 0x9292, (0x9012, 0x9010, 0x9011)),
    "DateTime": (IFD0, 0x0132, 0x9290, (0x9010, 0x9011, 0x9012)),
}


def exif_date(tags: Tags, name: str) -> dates.Stamp | None:
    """One EXIF date tag with its sub-seconds and the best matching OffsetTime* tag."""
    ifd, tag, subsec_tag, offset_tags = DATE_TAGS[name]
    stamp = dates.parse_exif_date(text(tags.get(ifd, tag)), text(tags.get(EXIF, subsec_tag)))
    if stamp is None:
        return None
    for offset_tag in offset_tags:
        offset = dates.parse_offset(text(tags.get(EXIF, offset_tag)))
        if offset is not None:
            return dates.Stamp(stamp.when, offset)
    return stamp


def exif_epoch(tags: Tags, name: str) -> dates.Stamp | None:
    """A date tag that holds a bare Unix timestamp instead of a date string."""
    ifd, tag, _subsec, _offsets = DATE_TAGS[name]
    raw = tags.get(ifd, tag)
    if isinstance(raw, list):  # a LONG written where ASCII belongs
        value = first_int(raw)
        return dates.parse_epoch_text(str(value)) if value is not None else None
    return dates.parse_epoch_text(text(raw))
