"""Finding the EXIF, XMP and pixel size inside each image container, header-only.

Each reader walks only the container structure (JPEG markers, PNG/WebP chunks, ISO-BMFF
boxes) and reads nothing but small metadata payloads, so the cost per file is a few
reads no matter how large the image is. Every loop has a hard cap on iterations and
every payload a hard cap on size: a corrupt length field can make a reader stop early,
never loop or allocate without bound.

We walk JPEG/PNG/WebP ourselves rather than asking Pillow because it also gives us
the XMP packet and the true pixel size in the same pass, and because Pillow refuses
to even open images above its decompression-bomb limit, which a legitimate 200 MP
panorama crosses; we only read headers, so that limit does not concern us.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import legacy
from .model import CameraRecord

log = logging.getLogger(__name__)

MAX_EXIF = 4 * 1024 * 1024  # far above any real EXIF block; caps hostile lengths
MAX_XMP = 2 * 1024 * 1024
_MAX_SEGMENTS = 1024
_MAX_CHUNKS = 20000
_MAX_BOXES = 4096

CANON_CR3_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")


@dataclass
class Found:
    """What a container reader located; any field may be missing."""

    exif: bytes | None = None  # TIFF structure, optionally prefixed with Exif\0\0
    xmp: bytes | None = None
    width: int | None = None
    height: int | None = None
    cr3: dict[str, bytes] | None = None  # CMT1..CMT4 payloads of a Canon CR3
    orientation_applied: bool = False  # the decoder already rotates (HEIF irot/imir)
    record: CameraRecord | None = None  # a pre-EXIF camera record (Canon CIFF, APP12)


def _read(fh: BinaryIO, size: int, cap: int) -> bytes | None:
    """Read a payload whose declared size is trusted only up to ``cap``."""
    if size < 0 or size > cap:
        return None
    return fh.read(size)


def _dims(width: int, height: int) -> tuple[int | None, int | None]:
    if width > 0 and height > 0:
        return width, height
    return None, None


# --- JPEG ---------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def _legacy_record(marker: int, data: bytes) -> CameraRecord | None:
    """A Canon CIFF (APP0) or picture-info (APP12) segment; a bad one is skipped."""
    try:
        if marker == 0xE0 and legacy.is_ciff(data):
            return legacy.read_ciff(data)
        if marker == 0xEC and legacy.is_picture_info(data):
            return legacy.read_picture_info(data)
    except (struct.error, ValueError, IndexError) as exc:
        log.debug("unreadable camera record in APP%d: %r", marker - 0xE0, exc)
    return None


def read_jpeg(fh: BinaryIO) -> Found:
    """Walk the marker segments up to the start of scan: APP1 Exif/XMP, the SOF size,
    and the camera records of cameras from before EXIF (APP0 CIFF, APP12)."""
    found = Found()
    fh.seek(2)
    for _ in range(_MAX_SEGMENTS):
        byte = fh.read(1)
        if byte != b"\xff":
            break
        marker = 0xFF
        for _pad in range(64):  # fill bytes: 0xFF may repeat before the marker code
            raw = fh.read(1)
            if not raw:
                return found
            marker = raw[0]
            if marker != 0xFF:
                break
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # standalone markers carry no length
        if marker in (0xD9, 0xDA):
            break  # end of image / start of scan: no metadata beyond this point for us
        head = fh.read(2)
        if len(head) < 2:
            break
        length = struct.unpack(">H", head)[0] - 2
        if length < 0:
            break
        start = fh.tell()
        if marker == 0xE1 and (found.exif is None or found.xmp is None):
            data = fh.read(length)  # at most 64 KiB by construction
            if data.startswith(b"Exif\x00") and found.exif is None:
                found.exif = data[6:]
            elif data.startswith(_XMP_APP1) and found.xmp is None:
                found.xmp = data[len(_XMP_APP1) :]
        elif marker in (0xE0, 0xEC) and found.record is None and length >= 16:
            found.record = _legacy_record(marker, fh.read(length))
        elif marker in _SOF and found.width is None:
            data = fh.read(5)
            if len(data) == 5:
                height, width = struct.unpack(">HH", data[1:5])
                found.width, found.height = _dims(width, height)
        fh.seek(start + length)
    return found


# --- PNG ----------------------------------------------------------------------


def _png_itxt_xmp(data: bytes) -> bytes | None:
    """The XMP packet of an ``iTXt`` chunk keyed XML:com.adobe.xmp, inflated with a cap."""
    keyword, sep, rest = data.partition(b"\x00")
    if not sep or keyword != b"XML:com.adobe.xmp" or len(rest) < 2:
        return None
    compressed, body = rest[0], rest[2:]
    _lang, _, body = body.partition(b"\x00")
    _translated, _, body = body.partition(b"\x00")
    if not compressed:
        return body
    try:
        return zlib.decompressobj().decompress(body, MAX_XMP)
    except zlib.error:
        return None


def read_png(fh: BinaryIO) -> Found:
    """Walk the chunk list: IHDR size, eXIf payload, iTXt XMP.

    eXIf may legally follow the image data, so the walk goes to IEND, seeking over
    IDAT without reading it.
    """
    found = Found()
    fh.seek(8)
    for _ in range(_MAX_CHUNKS):
        head = fh.read(8)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        start = fh.tell()
        if kind == b"IEND":
            break
        if kind == b"IHDR":
            data = fh.read(8)
            if len(data) == 8:
                found.width, found.height = _dims(*struct.unpack(">II", data))
        elif kind == b"eXIf" and found.exif is None:
            found.exif = _read(fh, size, MAX_EXIF)
        elif kind == b"iTXt" and found.xmp is None:
            data = _read(fh, size, MAX_XMP)
            found.xmp = _png_itxt_xmp(data) if data else None
        fh.seek(start + size + 4)  # + CRC
    return found


# --- WebP ---------------------------------------------------------------------


def _webp_size(kind: bytes, data: bytes) -> tuple[int | None, int | None]:
    if kind == b"VP8X" and len(data) >= 10:
        width = int.from_bytes(data[4:7], "little") + 1
        height = int.from_bytes(data[7:10], "little") + 1
        return _dims(width, height)
    if kind == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return _dims(width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return _dims((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None, None


def read_webp(fh: BinaryIO) -> Found:
    """Walk the RIFF chunks: canvas size, EXIF and 'XMP ' chunks (sizes padded to even)."""
    found = Found()
    fh.seek(12)
    for _ in range(_MAX_CHUNKS):
        head = fh.read(8)
        if len(head) < 8:
            break
        kind, size = head[:4], struct.unpack("<I", head[4:8])[0]
        start = fh.tell()
        if kind in (b"VP8X", b"VP8 ", b"VP8L") and found.width is None:
            found.width, found.height = _webp_size(kind, fh.read(min(size, 10)))
        elif kind == b"EXIF" and found.exif is None:
            found.exif = _read(fh, size, MAX_EXIF)
        elif kind == b"XMP " and found.xmp is None:
            found.xmp = _read(fh, size, MAX_XMP)
        fh.seek(start + size + (size & 1))
    return found


# --- ISO-BMFF (Canon CR3) -----------------------------------------------------


def _boxes(fh: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """Child boxes of [start, end) as (type, payload start, payload end), bounds-checked."""
    found: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end and len(found) < _MAX_BOXES:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        header = 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                break
            size, header = struct.unpack(">Q", large)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        found.append((kind, pos + header, pos + size))
        pos += size
    return found


def read_cr3(fh: BinaryIO, file_size: int) -> Found:
    """Canon CR3: the EXIF IFDs live in CMT1 (IFD0), CMT2 (EXIF), CMT4 (GPS) boxes of a
    Canon uuid box inside ``moov``; XMP is a top-level uuid box. exifread has no CR3
    support, so we walk the boxes ourselves.
    """
    found = Found(cr3={})
    for kind, begin, end in _boxes(fh, 0, file_size):
        if kind == b"uuid" and found.xmp is None:
            fh.seek(begin)
            if fh.read(16) == XMP_UUID:
                found.xmp = _read(fh, end - begin - 16, MAX_XMP)
        if kind != b"moov":
            continue
        for sub, sub_begin, sub_end in _boxes(fh, begin, end):
            fh.seek(sub_begin)
            if sub != b"uuid" or fh.read(16) != CANON_CR3_UUID:
                continue
            for cmt, cmt_begin, cmt_end in _boxes(fh, sub_begin + 16, sub_end):
                if cmt in (b"CMT1", b"CMT2", b"CMT4"):
                    fh.seek(cmt_begin)
                    data = _read(fh, cmt_end - cmt_begin, MAX_EXIF)
                    if data:
                        found.cr3[cmt.decode()] = data
    return found


# --- HEIF / fallback via Pillow -----------------------------------------------


def read_heif(path: Path) -> Found:
    """HEIC/HEIF through libheif (pillow_heif), which parses iinf/iloc properly.

    exifread's own HEIC locator fails on valid files (e.g. ones libheif writes), so
    we do not use it. libheif applies the HEIF rotation itself, which we record so
    the EXIF orientation is not applied a second time downstream.
    """
    import pillow_heif

    heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
    width, height = heif.size
    info = heif.info
    found = Found(exif=info.get("exif") or None, xmp=info.get("xmp") or None)
    found.width, found.height = _dims(width, height)
    found.orientation_applied = True
    return found


def read_with_pillow(path: Path) -> Found:
    """Any other format Pillow knows (GIF, BMP, AVIF, JPEG XL...): header-only open."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            exif = image.info.get("exif")
            xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
            found = Found(
                exif=exif if isinstance(exif, bytes) else None,
                xmp=xmp.encode() if isinstance(xmp, str) else xmp or None,
            )
            found.width, found.height = _dims(*image.size)
    return found


def raw_size(path: Path) -> tuple[int | None, int | None]:
    """Pixel size of a camera RAW via LibRaw (header parse only, no demosaic).

    IFD0 of most RAW files describes a small preview, so its ImageWidth would be wrong.
    """
    import rawpy

    with rawpy.imread(str(path)) as raw:
        sizes = raw.sizes
        return _dims(int(sizes.width), int(sizes.height))


def scan_xmp(fh: BinaryIO, limit: int = 8 * 1024 * 1024) -> bytes | None:
    """Find an XMP packet in the first ``limit`` bytes of a file with no XMP structure
    we parse (TIFF-based RAW stores it in tag 700, which exifread skips in fast mode).
    """
    fh.seek(0)
    block = 1024 * 1024
    carry = b""
    read = 0
    while read < limit:
        chunk = fh.read(block)
        if not chunk:
            return None
        read += len(chunk)
        data = carry + chunk
        start = data.find(b"<x:xmpmeta")
        if start >= 0:
            tail = data[start:] + fh.read(MAX_XMP)
            end = tail.find(b"</x:xmpmeta>")
            return tail[: end + 12] if end >= 0 else None
        carry = data[-16:]
    return None
