"""Thumbnails of camera RAW files from the JPEG previews cameras embed in them.

Developing a RAW takes seconds; every camera already stores one or more JPEG previews,
so those are pooled from three places (the TIFF IFD chain read by a bounded walker
here, LibRaw's own choice via rawpy, and exiftool when installed), the largest that
decodes and is not black wins, and only when none works is the RAW developed at half
size. The walker trusts nothing in the file: offsets are range-checked, counts capped,
and an IFD visited twice ends the walk instead of looping. It reads with ``pread``
rather than mmap, so a file truncated under it gives short reads, not a SIGBUS.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .imaging import RenderError, check_pixels, open_image, shrink

__all__ = ["Tiff", "check_tiff_structure", "read_tiff", "render_raw"]

MAX_IFDS = 64
MAX_ENTRIES = 1024
MAX_ARRAY = 4096
BLACK_LEVEL = 8  # a preview whose brightest value is below this is a black frame
EXIFTOOL_TAGS = ("PreviewImage", "JpgFromRaw", "OtherImage")
EXIFTOOL_TIMEOUT = 30.0

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
# 42 is TIFF, 0x55 Panasonic RW2, "RO"/"RS" Olympus ORF; BigTIFF (43) is not a RAW layout.
_MAGICS = {42, 0x55, 0x4F52, 0x5352}
_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}
_RAW_DATA_PHOTOMETRIC = {32803, 34892}  # CFA and LinearRaw: lossless sensor data

TAG_SUBIFDS = 330
TAG_ORIENTATION = 0x0112


@dataclass(slots=True)
class Entry:
    """One IFD entry: its type, count and where its value lives in the buffer."""

    type: int
    count: int
    pos: int


@dataclass(slots=True)
class Tiff:
    """The IFDs found in a TIFF-structured buffer, plus what was wrong with it."""

    endian: str
    ifds: list[dict[int, Entry]] = field(default_factory=list)
    cyclic: bool = False


class FileBytes:
    """A read-only, sliceable view of an open file that reads only what is asked for.

    A RAW is tens of megabytes; its IFDs and previews are a small part of it.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: slice) -> bytes:
        start, stop, _ = index.indices(self._size)
        return os.pread(self._fd, max(stop - start, 0), start)


Buffer = bytes | FileBytes


def _u16(buf: Buffer, pos: int, endian: str) -> int:
    return struct.unpack(endian + "H", buf[pos : pos + 2])[0]


def _u32(buf: Buffer, pos: int, endian: str) -> int:
    return struct.unpack(endian + "I", buf[pos : pos + 4])[0]


def read_tiff(buf: Buffer) -> Tiff | None:
    """Walk IFD0, its ``next`` chain and SubIFDs; None if ``buf`` is not TIFF-shaped."""
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        return None
    endian = "<" if buf[:2] == b"II" else ">"
    if _u16(buf, 2, endian) not in _MAGICS:
        return None
    tiff = Tiff(endian)
    pending = [_u32(buf, 4, endian)]
    seen: set[int] = set()
    while pending and len(seen) < MAX_IFDS:
        offset = pending.pop(0)
        if offset == 0:
            continue
        if offset in seen:
            tiff.cyclic = True
            continue
        seen.add(offset)
        ifd, next_offset = _read_ifd(buf, offset, endian)
        if ifd is None:
            continue
        tiff.ifds.append(ifd)
        pending.append(next_offset)
        pending.extend(ints(buf, tiff, ifd.get(TAG_SUBIFDS)))
    return tiff


def _read_ifd(buf: Buffer, offset: int, endian: str) -> tuple[dict | None, int]:
    if offset < 8 or offset + 2 > len(buf):
        return None, 0
    count = _u16(buf, offset, endian)
    end = offset + 2 + 12 * count
    if count == 0 or count > MAX_ENTRIES or end + 4 > len(buf):
        return None, 0
    table = buf[offset + 2 : end + 4]
    ifd: dict[int, Entry] = {}
    for at in range(0, 12 * count, 12):
        tag, typ, n, value = struct.unpack_from(endian + "HHII", table, at)
        size = _TYPE_SIZES.get(typ)
        if size is None:
            continue
        pos = offset + 2 + at
        value_pos = pos + 8 if size * n <= 4 else value
        if value_pos + size * n > len(buf):
            continue  # points past the end of the file: ignore, do not guess
        ifd[tag] = Entry(typ, n, value_pos)
    return ifd, struct.unpack_from(endian + "I", table, 12 * count)[0]


def ints(buf: Buffer, tiff: Tiff, entry: Entry | None) -> list[int]:
    """Integer values of an entry (SHORT, LONG or IFD), capped at MAX_ARRAY."""
    if entry is None or entry.type not in (3, 4, 13) or entry.count > MAX_ARRAY:
        return []
    code, size = ("H", 2) if entry.type == 3 else ("I", 4)
    data = buf[entry.pos : entry.pos + size * entry.count]
    return list(struct.unpack(f"{tiff.endian}{entry.count}{code}", data))


def _first(buf: Buffer, tiff: Tiff, ifd: dict[int, Entry], tag: int) -> int | None:
    values = ints(buf, tiff, ifd.get(tag))
    return values[0] if values else None


def _jpeg_at(buf: Buffer, offset: int | None, length: int | None) -> bytes | None:
    if not offset or not length or offset >= len(buf):
        return None
    data = bytes(buf[offset : min(offset + length, len(buf))])
    return data if data[:2] == b"\xff\xd8" else None


def tiff_previews(buf: Buffer, tiff: Tiff) -> Iterator[bytes]:
    """JPEG streams referenced by the IFDs: JPEGInterchangeFormat, JPEG strips, RW2."""
    for ifd in tiff.ifds:
        data = _jpeg_at(buf, _first(buf, tiff, ifd, 0x201), _first(buf, tiff, ifd, 0x202))
        if data:
            yield data
        compression = _first(buf, tiff, ifd, 0x103)
        photometric = _first(buf, tiff, ifd, 0x106)
        offsets = ints(buf, tiff, ifd.get(0x111))
        counts = ints(buf, tiff, ifd.get(0x117))
        if (
            compression in (6, 7)
            and photometric not in _RAW_DATA_PHOTOMETRIC
            and len(offsets) == 1
            and len(counts) == 1
        ):
            data = _jpeg_at(buf, offsets[0], counts[0])
            if data:
                yield data
        rw2 = ifd.get(0x2E)  # Panasonic JpgFromRaw: the JPEG is the value itself
        if rw2 is not None and rw2.type == 7:
            data = _jpeg_at(buf, rw2.pos, rw2.count)
            if data:
                yield data


def _raf_preview(buf: Buffer) -> bytes | None:
    """Fujifilm RAF keeps its JPEG at an offset stored in a fixed header, not a TIFF."""
    if len(buf) < 92 or buf[:15] != b"FUJIFILMCCD-RAW":
        return None
    offset, length = struct.unpack(">II", buf[84:92])
    return _jpeg_at(buf, offset, length)


def check_tiff_structure(src: Path) -> None:
    """Reject a TIFF whose IFD chain loops: such a file is crafted or corrupt."""
    with open(src, "rb") as f:
        tiff = read_tiff(FileBytes(f.fileno()))
    if tiff is not None and tiff.cyclic:
        raise RenderError("corrupt TIFF: cyclic IFD chain")


def _exiftool_previews(src: Path) -> Iterator[bytes]:
    exe = shutil.which("exiftool")
    if not exe:
        return
    for tag in EXIFTOOL_TAGS:
        try:
            done = subprocess.run(
                [exe, "-b", f"-{tag}", str(src.resolve())],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXIFTOOL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return
        if done.returncode == 0 and done.stdout[:2] == b"\xff\xd8":
            yield done.stdout


def _libraw_preview(src: Path) -> tuple[bytes | Image.Image | None, int | None]:
    """LibRaw's thumbnail (JPEG bytes or a bitmap) and the orientation LibRaw read."""
    import rawpy

    try:
        with rawpy.imread(str(src)) as raw:
            orientation = _LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip)
            try:
                thumb = raw.extract_thumb()
            except Exception:
                return None, orientation
    except Exception:
        return None, None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return bytes(thumb.data), orientation
    try:
        return Image.fromarray(thumb.data).convert("RGB"), orientation
    except Exception:
        return None, orientation


def _develop(src: Path, max_side: int) -> Image.Image | None:
    """Last resort: demosaic at half size (LibRaw applies the orientation itself)."""
    import rawpy

    try:
        with rawpy.imread(str(src)) as raw:
            check_pixels((raw.sizes.width, raw.sizes.height))
            rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
        im = Image.fromarray(rgb).convert("RGB")
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except Exception:  # LibRaw errors, odd channel counts from a damaged file
        return None
    return None if is_black(im) else im


def is_black(im: Image.Image) -> bool:
    """True for an all-black picture: a preview some cameras leave empty."""
    colour = im.convert("RGB") if im.mode not in ("RGB", "L") else im
    extrema = colour.getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return max(float(high) for _, high in bands) < BLACK_LEVEL  # type: ignore[misc]


def _decode(candidate: bytes | Image.Image, max_side: int, orientation: int | None) -> Image.Image:
    if isinstance(candidate, Image.Image):
        return shrink(candidate, max_side, orientation)
    im = open_image(io.BytesIO(candidate))
    im.verify()
    return shrink(open_image(io.BytesIO(candidate)), max_side, orientation)


def _pixels(candidate: bytes | Image.Image) -> int:
    if isinstance(candidate, Image.Image):
        return candidate.width * candidate.height
    try:
        with Image.open(io.BytesIO(candidate), formats=("JPEG", "MPO")) as im:
            return im.width * im.height
    except Exception:
        return 0


def render_raw(src: Path, max_side: int) -> Image.Image:
    """The best embedded preview of a RAW file, fitted to max_side and oriented."""
    candidates: list[bytes | Image.Image] = []
    orientation: int | None = None
    with open(src, "rb") as f:
        buf = FileBytes(f.fileno())
        tiff = read_tiff(buf)
        if tiff is not None:
            candidates.extend(tiff_previews(buf, tiff))
            if tiff.ifds:
                orientation = _first(buf, tiff, tiff.ifds[0], TAG_ORIENTATION)
        raf = _raf_preview(buf)
        if raf:
            candidates.append(raf)
    libraw, flip = _libraw_preview(src)
    if libraw is not None:
        candidates.append(libraw)
    if orientation not in range(1, 9):
        orientation = flip
    candidates.extend(_exiftool_previews(src))

    reasons: list[str] = []
    for candidate in sorted(candidates, key=_pixels, reverse=True):
        try:
            im = _decode(candidate, max_side, orientation)
        except Exception as exc:  # a damaged preview: try the next one
            reasons.append(str(exc) or type(exc).__name__)
            continue
        if not is_black(im):
            return im
        reasons.append("black preview")
    developed = _develop(src, max_side)
    if developed is not None:
        return developed
    detail = f" ({'; '.join(reasons[:3])})" if reasons else ""
    raise RenderError(f"no usable preview in RAW file{detail}")
