"""Turning the many ways a capture date gets written down into one ``datetime``.

Cameras, phones and messengers disagree on date formats, and a fair share of files
carry placeholders ("0000:00:00 00:00:00") or garbage. Every parser here returns None
for anything it cannot vouch for, so the caller can simply move to the next rung of
the fallback chain instead of storing a nonsense date that would pin a photo to the
year 0 or 1970 on the timeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

MIN_YEAR = 1900
MAX_YEAR = 2100
# Largest UTC offset in use is +14:00; a bit of slack for odd historical zones.
_MAX_OFFSET_MINUTES = 15 * 60


@dataclass(frozen=True, slots=True)
class Stamp:
    """A date as found: naive wall-clock time plus the UTC offset when one was known."""

    when: datetime
    offset_minutes: int | None = None


def plausible(when: datetime) -> bool:
    """A date outside 1900..2100 is a placeholder or a parse of garbage, never a capture."""
    return MIN_YEAR <= when.year <= MAX_YEAR


def _build(parts: tuple[str | None, ...]) -> datetime | None:
    """Make a datetime from regex groups; None when a field is out of range (Feb 30 etc.)."""
    year, month, day, hour, minute, second, fraction = parts
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        when = datetime(
            int(year or 0),
            int(month or 0),
            int(day or 0),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except (TypeError, ValueError):
        return None
    return when if plausible(when) else None


def parse_offset(text: str | None) -> int | None:
    """'+02:00' / '-0530' / 'Z' to minutes east of UTC; None when absent or implausible."""
    if not text:
        return None
    text = text.strip().strip("\x00").strip()
    if text in ("Z", "z"):
        return 0
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if not match:
        return None
    minutes = int(match[2]) * 60 + int(match[3])
    if int(match[3]) >= 60 or minutes > _MAX_OFFSET_MINUTES:
        return None
    return -minutes if match[1] == "-" else minutes


# EXIF says "YYYY:MM:DD HH:MM:SS", but dashes, slashes, a "T", fractional seconds and
# a trailing offset all occur in the wild; accept them rather than lose the date.
_EXIF_DATE = re.compile(
    r"\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?:[.,](\d+))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_exif_date(text: str | None, subsec: str | None = None) -> Stamp | None:
    """Parse an EXIF date string; ``subsec`` is the matching SubSecTime* tag, if any."""
    if not text:
        return None
    text = text.strip("\x00 ")
    match = _EXIF_DATE.match(text)
    if not match:
        return None
    fraction = match[7]
    if fraction is None and subsec:
        digits = subsec.strip("\x00 ")
        fraction = digits if digits.isdigit() else None
    when = _build((*match.groups()[:6], fraction))
    if when is None:
        return None
    return Stamp(when, parse_offset(match[8]))


_ISO_DATE = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_iso_date(text: str | None) -> Stamp | None:
    """ISO-8601 as XMP and container metadata write it, with or without an offset.

    A bare year or year-month (legal in XMP) is too vague to place a photo, so it is
    rejected; a bare date is accepted at midnight.
    """
    if not text:
        return None
    match = _ISO_DATE.match(text.strip("\x00 "))
    if not match:
        return None
    when = _build(match.groups()[:7])
    if when is None:
        return None
    return Stamp(when, parse_offset(match[8]))


def from_epoch(seconds: float) -> Stamp | None:
    """A Unix timestamp is an absolute instant: keep it as UTC wall time, offset 0."""
    try:
        when = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return Stamp(when, 0) if plausible(when) else None


def parse_epoch_text(text: str | None) -> Stamp | None:
    """A date field or file name holding only digits: 10 = seconds, 13 = milliseconds."""
    if not text:
        return None
    text = text.strip("\x00 ")
    if re.fullmatch(r"\d{10}(?:\.\d+)?", text):
        return from_epoch(float(text))
    if re.fullmatch(r"\d{13}", text):
        return from_epoch(int(text) / 1000)
    return None


def epoch_from_filename(stem: str) -> Stamp | None:
    """``1555083012.jpg`` or ``1555083012345_edited.jpg``: an epoch leading the name."""
    match = re.match(r"(\d{10}|\d{13})(?!\d)", stem)
    return parse_epoch_text(match[1]) if match else None


# One pattern covers the phone, camera, screenshot and messenger conventions:
# IMG_20190412_153012, PXL_20210704_201512345, 2019-04-12 15.30.12,
# Screenshot_2019-04-12-15-30-12, WhatsApp Image 2019-04-12 at 15.30.12.
_FILENAME_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})([-_.]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])"
    r"(?:(?:[ _\-T.]|\s+at\s+)?([01]\d|2[0-3])([-_.:]?)([0-5]\d)\6([0-5]\d))?",
    re.IGNORECASE,
)


def date_from_filename(stem: str) -> Stamp | None:
    """The first plausible date (and time, when present) written into a file name.

    The two date separators must match (so ``2019-0412`` is not a date), and a date is
    not accepted in the middle of a longer run of digits such as a counter; trailing
    digits after the seconds (milliseconds, as in Pixel names) are allowed.
    """
    for match in _FILENAME_DATE.finditer(stem):
        year, _sep, month, day, hour, _tsep, minute, second = match.groups()
        if hour is None:
            tail = stem[match.end() : match.end() + 1]
            if tail.isdigit():
                continue
        when = _build((year, month, day, hour, minute, second, None))
        if when is not None:
            return Stamp(when, None)
    return None


def from_mtime(mtime: float) -> Stamp | None:
    """The file's modification time, an absolute instant, kept as UTC with offset 0."""
    return from_epoch(mtime)


# XMP: the MWG guidelines map exif:DateTimeOriginal and photoshop:DateCreated to the
# capture time and xmp:CreateDate to the digitising time, hence this order.
XMP_ORIGINAL = ("exif:DateTimeOriginal", "photoshop:DateCreated")
XMP_CREATED = ("xmp:CreateDate",)
_XMP_MAX = 512 * 1024


# The namespaces of those keys: a packet may bind them to other prefixes (Adobe's
# older software wrote the xmp namespace as "xap:").
_XMP_NAMESPACES = {
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}


def _names(text: str, key: str) -> list[str]:
    """``key`` and the same property under every prefix the packet binds its namespace to."""
    prefix, _, local = key.partition(":")
    uri = re.escape(_XMP_NAMESPACES.get(prefix, ""))
    bound = re.findall(rf"xmlns:([\w.-]+)\s*=\s*[\"']{uri}[\"']", text) if uri else []
    return [f"{p}:{local}" for p in dict.fromkeys([prefix, *bound])]


def date_from_xmp(
    packet: bytes | None, keys: tuple[str, ...] = XMP_ORIGINAL + XMP_CREATED
) -> Stamp | None:
    """Find a capture date in an XMP packet, as attribute or element, trying ``keys``
    in order.

    A regex over a bounded slice instead of an XML parser: packets are often not
    well-formed, and an XML parser would also open the door to entity expansion.
    """
    if not packet:
        return None
    text = packet[:_XMP_MAX].decode("utf-8", "replace")
    for key in keys:
        for name in map(re.escape, _names(text, key)):
            for pattern in (
                rf'{name}\s*=\s*["\']([^"\']{{4,40}})["\']',
                rf"<{name}>([^<]{{4,40}})<",
            ):
                match = re.search(pattern, text)
                if match:
                    stamp = parse_iso_date(match[1]) or parse_exif_date(match[1])
                    if stamp is not None:
                        return stamp
    return None
