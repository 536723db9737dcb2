"""The metadata of cameras from before EXIF was universal, found in JPEG segments that
EXIF readers skip.

- **Canon CIFF** (APP0, ``II\\x1a\\0\\0\\0HEAPJPGM``): the "camera image file format" of
  Canon's CRW raw files, which early PowerShots (the A5, 1998) also wrote into their
  JPEGs instead of EXIF. A heap of records; a record holds a value or a nested heap.
- **APP12 picture info** (Olympus, Agfa, Polaroid, late 1990s): ``key=value`` text lines
  in ``[sections]``, after a NUL-terminated maker name.

Without these a file from such a camera reads as "no metadata at all" and lands on the
timeline at its file date, decades off. The field layouts follow exiftool's
``CanonRaw.pm`` and ``APP12.pm``. Both parsers work on the segment bytes only (at most
64 KiB), bound every loop and never raise on malformed input (they return what they
could read).
"""

from __future__ import annotations

import math
import re
import struct
from datetime import UTC, datetime

from . import dates
from .model import CameraRecord

CIFF_SIGNATURE = b"HEAPJPGM"
_MAX_DEPTH = 8
_MAX_RECORDS = 1024

# CIFF record ids (the type bits included, the two location bits masked off).
_MAKE_MODEL = 0x080A  # "Canon\0Canon PowerShot A5\0"
_FOCAL_LENGTH = 0x1029  # int16u[4]: focal type, focal length (mm), sensor x, sensor y
_TIMESTAMP = 0x180E  # int32u[3]: seconds as if UTC (the camera's wall clock), zone, flag
_IMAGE_INFO = 0x1810  # int32u width, height, ...
_EXPOSURE_INFO = 0x1818  # float[3]: compensation, APEX shutter speed, APEX aperture
_WANTED = {_MAKE_MODEL, _FOCAL_LENGTH, _TIMESTAMP, _IMAGE_INFO, _EXPOSURE_INFO}


def _wall_clock(seconds: float) -> datetime | None:
    """A count of seconds that encodes the camera's clock (no zone) as a naive datetime."""
    try:
        when = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return when if dates.plausible(when) else None


def _clean(raw: bytes) -> str | None:
    text = raw.decode("latin-1").strip()
    return text[:255] if text and text.isprintable() else None


def is_ciff(segment: bytes) -> bool:
    return segment[:2] in (b"II", b"MM") and segment[6:14] == CIFF_SIGNATURE


def read_ciff(segment: bytes) -> CameraRecord:
    """Make, model, capture time, exposure, aperture, focal length and size of a CIFF
    APP0 segment (the bytes after the marker and length)."""
    if not is_ciff(segment):
        return CameraRecord()
    endian = "<" if segment[:2] == b"II" else ">"
    header = struct.unpack(endian + "I", segment[2:6])[0]
    found: dict[int, bytes] = {}
    _walk(segment[header:], endian, 0, found, [_MAX_RECORDS])
    record = CameraRecord()
    if _MAKE_MODEL in found:
        parts = found[_MAKE_MODEL].split(b"\x00")
        record.make = _clean(parts[0])
        record.model = _clean(parts[1]) if len(parts) > 1 else None
    if len(found.get(_TIMESTAMP, b"")) >= 4:
        record.when = _wall_clock(struct.unpack(endian + "I", found[_TIMESTAMP][:4])[0])
    if len(found.get(_FOCAL_LENGTH, b"")) >= 4:
        focal = struct.unpack(endian + "H", found[_FOCAL_LENGTH][2:4])[0]
        record.focal_length = float(focal) if focal else None
    if len(found.get(_EXPOSURE_INFO, b"")) >= 12:
        _comp, tv, av = struct.unpack(endian + "3f", found[_EXPOSURE_INFO][:12])
        if math.isfinite(tv) and abs(tv) < 100:
            record.exposure_seconds = 2.0**-tv
        if math.isfinite(av) and -2 < av < 30:
            record.f_number = 2 ** (av / 2)
    if len(found.get(_IMAGE_INFO, b"")) >= 8:
        width, height = struct.unpack(endian + "II", found[_IMAGE_INFO][:8])
        if 0 < width <= 1_000_000 and 0 < height <= 1_000_000:
            record.width, record.height = width, height
    return record


def _walk(heap: bytes, endian: str, depth: int, found: dict[int, bytes], budget: list[int]) -> None:
    """Collect the wanted records of one heap and of the heaps nested in it.

    A heap ends with the offset of its record table; each record is (tag, size, offset)
    relative to the heap, or holds its 8-byte value in place of size and offset.
    """
    if depth > _MAX_DEPTH or len(heap) < 6:
        return
    table = struct.unpack(endian + "I", heap[-4:])[0]
    if table + 2 > len(heap) - 4:
        return
    count = struct.unpack(endian + "H", heap[table : table + 2])[0]
    for index in range(count):
        budget[0] -= 1
        start = table + 2 + 10 * index
        if budget[0] < 0 or start + 10 > len(heap) - 4:
            return
        tag, size, offset = struct.unpack(endian + "HII", heap[start : start + 10])
        if tag & 0x8000:
            return  # not a CIFF record: a corrupt table
        ident, kind, in_place = tag & 0x3FFF, (tag >> 8) & 0x38, tag & 0x4000
        if in_place:
            value = heap[start + 2 : start + 10]
        elif offset + size > len(heap) or size > len(heap):
            continue
        else:
            value = heap[offset : offset + size]
        if kind in (0x28, 0x30) and not in_place:
            _walk(value, endian, depth + 1, found, budget)
        elif ident in _WANTED and ident not in found:
            found[ident] = value


# --- APP12 picture info ---------------------------------------------------------

_LINE = re.compile(rb"([A-Za-z#][\w#]*)=([^\r\n\x00]*)")


def is_picture_info(segment: bytes) -> bool:
    return b"[picture info]" in segment[:256]


def _number(text: str) -> float | None:
    """A number, after any leading letters ("F2.8" as Agfa writes an f-number)."""
    try:
        value = float(text.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def read_picture_info(segment: bytes) -> CameraRecord:
    """Capture time, exposure and f-number of an APP12 picture-info segment, and the
    maker it names in front of its text (``OLYMPUS OPTICAL CO.,LTD.\\0 ...``)."""
    if not is_picture_info(segment):
        return CameraRecord()
    head, _, _rest = segment.partition(b"\x00")
    values: dict[str, str] = {}
    for match in _LINE.finditer(segment):
        key = match[1].decode("ascii")
        values.setdefault(key, match[2].decode("latin-1").strip())
    record = CameraRecord()
    if not head.lstrip().startswith(b"["):
        record.make = _clean(head)
    stamp = values.get("TimeDate", "")
    if stamp.isdigit():
        record.when = _wall_clock(int(stamp))
    else:
        parsed = dates.parse_exif_date(stamp)
        record.when = parsed.when if parsed else None
    shutter = _number(values.get("Shutter") or values.get("shtr") or "")
    record.exposure_seconds = shutter * 1e-6 if shutter else None
    record.f_number = _number(values.get("FNumber", ""))
    return record
