"""The few maker-note fields a camera keeps nowhere else.

The EXIF MakerNote tag is a blob in a format of the camera maker's choosing. Most of it
repeats or refines standard tags, but some cameras put a field only there:

- **Canon** compacts and early EOS models write no EXIF ISO; the ISO is in the
  CameraSettings (0x0001) and ShotInfo (0x0004) arrays of the Canon maker note, an IFD
  whose offsets count from the TIFF header. As exiftool reads it: CameraISO
  (CameraSettings[16]) when it is a number, else BaseISO x AutoISO / 100 from ShotInfo.
- **Casio** writes its ISO as a maker-note tag: 0x3014 in the "QVC" (type 2) note,
  0x0014 in the older one.
- **Reconyx** HyperFire trail cameras write no EXIF date and no Make: the capture time
  is in their binary maker note, whose header identifies the camera maker.

The IFD-shaped notes are read with exifread's IFD reader (through ``tiff._Header``,
which filters the tags to the ones below and bounds the work); the binary one from at
most a few hundred bytes. Layouts and constants follow exiftool (``Canon.pm``,
``Casio.pm``, ``Reconyx.pm``). Nothing here raises on malformed input.
"""

from __future__ import annotations

import logging
import math
import struct
from datetime import datetime
from typing import Any

from .model import CameraRecord

log = logging.getLogger(__name__)

NOTE = "MakerNote"  # the IFD name maker-note tags are stored under
CANON_SETTINGS, CANON_SHOT_INFO = 0x0001, 0x0004
CASIO_ISO, CASIO_ISO_CODE = 0x3014, 0x0014
WANTED = frozenset({CANON_SETTINGS, CANON_SHOT_INFO, CASIO_ISO, CASIO_ISO_CODE})
MAX_VALUES = 256  # CameraSettings/ShotInfo hold 30-50 shorts; newer models a few more

# Canon CameraSettings[16] codes that name an ISO (exiftool's CameraISO).
_CANON_ISO_CODES = {16: 50, 17: 100, 18: 200, 19: 400, 20: 800}
_CASIO_ISO_CODES = {3: 50, 4: 64, 6: 100, 9: 200}


def _valid_iso(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    iso = round(value)
    return iso if 0 < iso < 10_000_000 and iso != 65535 else None


def _signed(value: int) -> int:
    return value - 0x10000 if value >= 0x8000 else value


def canon_iso(settings: list[int] | None, shot_info: list[int] | None) -> int | None:
    """exiftool's Canon ISO: CameraISO when numeric, else BaseISO x AutoISO / 100."""
    if settings and len(settings) > 16:
        code = settings[16] & 0xFFFF
        if code != 0x7FFF:
            iso = code & 0x3FFF if code & 0x4000 else _CANON_ISO_CODES.get(code)
            if iso:
                return _valid_iso(iso)
    if shot_info and len(shot_info) > 2 and shot_info[2]:
        auto = 2 ** (_signed(shot_info[1]) / 32) * 100
        base = 2 ** (_signed(shot_info[2]) / 32) * 100 / 32
        return _valid_iso(base * auto / 100)
    return None


def reconyx(note: bytes, make: str | None) -> CameraRecord | None:
    """A Reconyx HyperFire maker note: the make, and the capture time at 0x0b..0x10
    (little-endian shorts: second, minute, hour, month, day, year)."""
    if note[:2] != b"\x01\xf1" or not (
        note[2:4] in (b"\x02\x00", b"\x03\x00") or make == "RECONYX"
    ):
        return None
    record = CameraRecord(make="RECONYX")
    if len(note) >= 0x11 * 2:
        values = list(struct.unpack("<6H", note[0x0B * 2 : 0x11 * 2]))
        if values[0] & 0xFF00 and not values[0] & 0xFF:  # seen written big-endian
            values = [((v >> 8) | (v << 8)) & 0xFFFF for v in values]
        second, minute, hour, month, day, year = values
        try:
            record.when = datetime(year, month, day, hour, minute, second)
        except ValueError:
            record.when = None
        if record.when is not None and not 1900 <= record.when.year <= 2100:
            record.when = None
    return record


def _values(hdr: Any, tag: int) -> list[int] | None:
    entry = hdr.tags.get(f"{NOTE} Tag 0x{tag:04X}")
    values = getattr(entry, "values", None)
    if isinstance(values, list) and values and all(isinstance(v, int) for v in values):
        return values
    return None


def _dump(hdr: Any, offset: int, swap: bool = False, base_fix: int = 0) -> None:
    """Read one maker-note IFD into ``hdr.tags`` (filtered by ``tiff._Header``), its
    value offsets moved by ``base_fix`` bytes."""
    endian, base = hdr.endian, hdr.offset
    if swap:
        hdr.endian = "M" if endian == "I" else "I"
    hdr.offset = base + base_fix
    try:
        hdr.dump_ifd(offset - base_fix, NOTE, tag_dict={})
    finally:
        hdr.endian, hdr.offset = endian, base


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def canon_base_fix(hdr: Any, offset: int, length: int) -> int:
    """How far the Canon maker note moved since the camera wrote it, by its footer.

    Canon ends the note with a TIFF-style footer holding the note's original offset;
    an editor that moved the note without rewriting its value offsets leaves them
    pointing that many bytes off. Some editors did rewrite them but not the footer: if
    the last value already ends right at the footer, the footer is stale and ignored
    (exiftool's rule).
    """
    if length <= 8:
        return 0
    hdr.file_handle.seek(hdr.offset + offset + length - 8)
    footer = hdr.file_handle.read(8)
    order = b"II*\x00" if hdr.endian == "I" else b"MM\x00*"
    if len(footer) < 8 or footer[:4] != order:
        return 0
    fix = offset - int.from_bytes(footer[4:], "little" if hdr.endian == "I" else "big")
    if not fix:
        return 0
    entries = hdr.s2n(offset, 2)
    end = 0
    for index in range(min(entries, 512)):
        entry = offset + 2 + 12 * index
        size = _TYPE_SIZES.get(hdr.s2n(entry + 2, 2), 1) * hdr.s2n(entry + 4, 4)
        if size > 4:
            end = max(end, hdr.s2n(entry + 8, 4) + size)
    return 0 if offset + length - 8 - end in (0, 1) else fix


def _plausible_ifd(hdr: Any, offset: int) -> bool:
    count = hdr.s2n(offset, 2)
    return 0 < count <= 512


def read(
    hdr: Any, make: str | None, offset: int, length: int, need_iso: bool = True
) -> CameraRecord | None:
    """The fields of the maker note at ``offset`` (from the TIFF header), ``length`` bytes;
    the ISO only when ``need_iso`` (EXIF has none).

    ``hdr`` is the exifread header reader of the TIFF structure holding the note.
    """
    hdr.file_handle.seek(hdr.offset + offset)
    head = hdr.file_handle.read(min(length, 512))
    make = (make or "").strip()
    found = reconyx(head, make)
    if found is not None:
        return found
    if not need_iso:
        return None
    if make.startswith("Canon"):
        _dump(hdr, offset, base_fix=canon_base_fix(hdr, offset, length))
        iso = canon_iso(_values(hdr, CANON_SETTINGS), _values(hdr, CANON_SHOT_INFO))
        return CameraRecord(iso=iso) if iso else None
    if head[:4] in (b"QVC\x00", b"DCI\x00") or make.upper().startswith("CASIO"):
        start = offset + 6 if head[:4] in (b"QVC\x00", b"DCI\x00") else offset
        _dump(hdr, start, swap=not _plausible_ifd(hdr, start))
        iso = _values(hdr, CASIO_ISO)
        if iso:
            return CameraRecord(iso=_valid_iso(iso[0]))
        code = _values(hdr, CASIO_ISO_CODE)
        if code and head[:4] in (b"QVC\x00", b"DCI\x00"):
            return CameraRecord(iso=_CASIO_ISO_CODES.get(code[0]))
        return CameraRecord(iso=_valid_iso(code[0])) if code else None
    return None
