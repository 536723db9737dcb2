"""Reading the TIFF/EXIF tag structure with exifread, defensively.

Every container (JPEG APP1, PNG eXIf, WebP EXIF, HEIC Exif item, CR3 CMT boxes, and
TIFF-based RAW files themselves) ends up as a TIFF header plus IFDs; the container
modules find those bytes and this module reads them.

exifread's ``process_file`` is all-or-nothing: one malformed entry (say, a tag whose
value list comes back empty) raises out of the whole parse and loses every other tag.
So we drive exifread's ``ExifHeader`` ourselves and override its per-entry hook to

* skip every tag we do not use, which keeps hostile files cheap (no 999-value arrays
  read for tags nobody looks at) and shrinks the surface exifread's printers touch;
* only locate the MakerNote (``makernotes`` then reads the few fields it needs from
  it, through the same filter);
* isolate failures per entry, so one bad tag costs only that tag;
* cap the total number of entries processed and the values per entry, bounding the
  work on IFDs that claim tens of thousands of entries of hundreds of values each.

If a future exifread renames the hook, the override is simply not called: parsing
still works, just without the filter, and the per-IFD ``try`` still bounds the damage.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO

import exifread

from . import makernotes
from .model import CameraRecord

log = logging.getLogger(__name__)

IFD0, EXIF, GPS = "Image", "EXIF", "GPS"

# Tags this plugin reads, per IFD. ExifOffset/GPSInfo are the pointers to the sub-IFDs.
WANTED: Mapping[str, frozenset[int]] = {
    IFD0: frozenset(
        {
            0x00FE,
            0x0100,
            0x0101,
            0x010F,
            0x0110,
            0x0112,
            0x0131,
            0x0132,
            0x8769,
            0x8825,
        }
    ),
    EXIF: frozenset(
        {
            0x829A,
            0x829D,
            0x8827,
            0x8832,
            0x8833,
            0x9003,
            0x9004,
            0x9010,
            0x9011,
            0x9012,
            0x9201,
            0x9202,
            0x9209,
            0x920A,
            0x9290,
            0x9291,
            0x9292,
            0xA002,
            0xA003,
            0xA433,
            0xA434,
        }
    ),
    GPS: frozenset(range(0x00, 0x0A)),
    makernotes.NOTE: makernotes.WANTED,
}
MAKER_NOTE = 0x927C  # located in the EXIF IFD, then read by ``makernotes``
# The filter admits about 40 distinct tags; the budget leaves room for duplicates while
# bounding a hostile IFD to a few hundred entries of at most 999 values each.
_ENTRY_BUDGET = 256
_ASCII = 2
_MAX_VALUES = 64
# No tag we read is longer than this; larger reads only feed hostile ASCII counts.
_READ_CAP = 64 * 1024

# exifread logs every oddity of a corrupt file at WARNING; for a library scanning
# thousands of files that is noise, and we report what matters ourselves. Only quieten
# it when nobody has configured that logger explicitly.
_exifread_log = logging.getLogger("exifread")
if _exifread_log.level == logging.NOTSET:
    _exifread_log.setLevel(logging.ERROR)


@dataclass
class Tags:
    """Raw tag values by IFD name and tag id, as exifread decoded them."""

    ifds: dict[str, dict[int, Any]] = field(default_factory=dict)
    maker: CameraRecord | None = None  # what the maker note adds (``makernotes``)

    def get(self, ifd: str, tag: int) -> Any:
        return self.ifds.get(ifd, {}).get(tag)

    def merge(self, other: Tags) -> None:
        for name, tags in other.ifds.items():
            self.ifds.setdefault(name, {}).update(tags)
        self.maker = (self.maker or CameraRecord()).fill(other.maker) if other.maker else self.maker


class _BudgetSpent(Exception):
    """Raised inside exifread's loop to stop an IFD that claims absurdly many entries."""


class _Header(exifread.ExifHeader):
    """exifread's header reader with a tag filter, per-entry isolation and a budget."""

    budget = _ENTRY_BUDGET
    maker_note: tuple[int, int] | None = None  # (offset, length) of the EXIF MakerNote

    def _process_tag(
        self,
        ifd: int,
        ifd_name: str,
        tag_entry: Any,
        entry: int,
        tag: int,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if tag == MAKER_NOTE and ifd_name == EXIF:
            # Only located here: exifread would read it byte by byte into a list.
            self.budget -= 1
            if self.budget < 0:
                raise _BudgetSpent
            length = self.s2n(entry + 4, 4)
            self.maker_note = (self.s2n(entry + 8, 4) if length > 4 else entry + 8, length)
            return
        if tag not in WANTED.get(ifd_name, ()):
            return
        cap = makernotes.MAX_VALUES if ifd_name == makernotes.NOTE else _MAX_VALUES
        if self.s2n(entry + 2, 2) != _ASCII and self.s2n(entry + 4, 4) > cap:
            return  # no tag we read has more values; exifread would read up to 999
        self.budget -= 1
        if self.budget < 0:
            raise _BudgetSpent
        try:
            super()._process_tag(ifd, ifd_name, tag_entry, entry, tag, *args, **kwargs)
        except _BudgetSpent:
            raise
        except Exception as exc:  # one bad entry must not cost the others
            log.debug("skipping malformed tag 0x%04X in %s: %r", tag, ifd_name, exc)


class CappedReader(io.RawIOBase):
    """A read-only view of a file whose single reads are capped.

    exifread reads an ASCII tag's full claimed count in one call; against a real file a
    hostile count would pull the whole file (hundreds of MB for a RAW) into memory.
    """

    def __init__(self, fh: BinaryIO, cap: int = _READ_CAP) -> None:
        self._fh = fh
        self._cap = cap

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(self._cap if size < 0 else min(size, self._cap))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


def _dump(hdr: _Header, ifd: int, name: str, tag_dict: dict[int, Any] | None) -> None:
    """Read one IFD; a failure loses what is left of that IFD and nothing else."""
    if ifd <= 0:
        return
    try:
        hdr.dump_ifd(ifd, name, tag_dict)
    except _BudgetSpent:
        log.debug("entry budget spent in %s", name)
    except Exception as exc:
        log.debug("aborted IFD %s: %r", name, exc)


def read_tiff(fh: BinaryIO, layout: str = "tiff") -> Tags:
    """Read tags from a stream positioned anywhere that starts (at 0) with a TIFF header.

    ``layout`` says what the first IFD is: "tiff" (IFD0 with pointers to the EXIF and
    GPS IFDs, the normal case), "exif" or "gps" (CR3 stores each IFD in its own
    TIFF-shaped box). Never raises on malformed input: returns what it could read.
    """
    try:
        fh.seek(0)
        head = fh.read(8)
    except (OSError, ValueError):
        return Tags()
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return Tags()
    endian = head[:1].decode()
    first = struct.unpack("<I" if endian == "I" else ">I", head[4:8])[0]
    # detailed=True only stops exifread skipping MakerNote itself; our filter decides.
    hdr = _Header(fh, endian, 0, 0, False, False, True, True)
    if layout == "exif":
        _dump(hdr, first, EXIF, {})
    elif layout == "gps":
        _dump(hdr, first, GPS, {})
    else:
        _dump(hdr, first, IFD0, None)  # GPS is followed from inside IFD0 by exifread
        pointer = hdr.tags.get(f"{IFD0} ExifOffset")
        offset = first_int(pointer.values) if pointer is not None else None
        if offset and offset != first:
            _dump(hdr, offset, EXIF, None)
    tags = Tags()
    for key, value in hdr.tags.items():
        name = key.split(" ", 1)[0]
        tag_id = getattr(value, "tag", None)
        if isinstance(tag_id, int):
            tags.ifds.setdefault(name, {})[tag_id] = getattr(value, "values", None)
    tags.maker = _maker_note(hdr, tags)
    return tags


def _maker_note(hdr: _Header, tags: Tags) -> CameraRecord | None:
    """The maker note's own fields, when it has any we read; its failure costs only it."""
    if hdr.maker_note is None:
        return None
    iso = first_int(tags.get(EXIF, 0x8827))
    has_iso = (iso is not None and 0 < iso < 65535) or any(
        first_int(tags.get(EXIF, tag)) for tag in (0x8833, 0x8832)
    )
    try:
        make = text(tags.get(IFD0, 0x010F))
        return makernotes.read(hdr, make, *hdr.maker_note, need_iso=not has_iso)
    except _BudgetSpent:
        log.debug("entry budget spent in the maker note")
    except Exception as exc:
        log.debug("maker note unreadable: %r", exc)
    return None


def read_tiff_bytes(blob: bytes | None, layout: str = "tiff") -> Tags:
    """``read_tiff`` over an in-memory blob; tolerates a leading ``Exif\\0\\0``."""
    if not blob:
        return Tags()
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    return read_tiff(CappedReader(io.BytesIO(blob)), layout)


# --- value coercion: exifread hands back str, bytes, lists of int/Ratio/1-tuples ---


def text(values: Any, limit: int = 255) -> str | None:
    """A clean string from an ASCII or UNDEFINED tag; None when empty or not text."""
    if isinstance(values, list) and all(isinstance(v, int) and 0 <= v < 256 for v in values):
        values = bytes(values)
    if isinstance(values, bytes):
        values = values.split(b"\x00", 1)[0].decode("utf-8", "replace")
    if not isinstance(values, str):
        return None
    cleaned = values.split("\x00", 1)[0].strip()
    if any(ch < " " or ch == "\ufffd" for ch in cleaned):
        return None  # binary garbage read through a corrupt offset, not text
    return cleaned[:limit] or None


def number(value: Any) -> float | None:
    """One numeric value as float; None for 0/0 rationals, NaN and non-numbers."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, Fraction):
        num, den = value.numerator, value.denominator
        if not den:
            return None
        return num / den
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if result == result and abs(result) != float("inf") else None


def numbers(values: Any) -> list[float | None]:
    if isinstance(values, list | tuple):
        return [number(v) for v in values]
    return [number(values)]


def first_number(values: Any) -> float | None:
    found = numbers(values)
    return found[0] if found else None


def first_int(values: Any) -> int | None:
    value = first_number(values)
    return int(value) if value is not None and value.is_integer() else None
