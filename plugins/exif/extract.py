"""Metadata extraction for one photo or video file: pure, no database, no web.

``extract`` sniffs the container from its magic bytes (not the extension: a PNG named
.jpg and a NEF that is really a TIFF are both common), finds the EXIF/XMP bytes with a
header-only reader, decodes the tags with exifread and resolves the capture date by a
fixed fallback chain, recording which rule won in ``date_source``. A camera's own record
(a maker note, or the CIFF / APP12 segment of a camera from before EXIF) fills in the
fields EXIF lacks. A file none of our readers can open at all goes to exiftool, when it
is installed (``exiftool``).

Content problems never raise: a corrupt or unknown file yields whatever could be read,
dated by its name or mtime, because a photo without a date still belongs on the
timeline. Only an unreadable file raises ``ExtractError`` (and ``pool.Pool.extract``,
which runs this in a killable worker, raises it for a parse that runs too long).
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from . import containers, dates, exiftool, fields
from .containers import Found
from .model import CameraRecord, ExifData, ExtractError
from .tiff import EXIF, IFD0, CappedReader, Tags, read_tiff, read_tiff_bytes, text
from .video import read_video

__all__ = ["ExifData", "ExtractError", "extract"]

log = logging.getLogger(__name__)
T = TypeVar("T")

VIDEO_EXTENSIONS = frozenset(
    {"mp4", "mov", "m4v", "mkv", "webm", "avi", "3gp", "3g2", "mts", "m2ts", "wmv", "mpg"}
)
# TIFF-structured RAW formats: their IFD0 is usually a preview, so size comes from LibRaw.
RAW_EXTENSIONS = frozenset(
    {"nef", "nrw", "cr2", "arw", "srf", "sr2", "dng", "orf", "rw2", "pef", "srw", "raf", "cr3"}
)


def _sniff(head: bytes) -> str:
    """The container kind from the first bytes of the file."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] in (b"II", b"MM"):  # also ORF (IIRO) and RW2 (IIU): TIFF with odd magic
        return "tiff"
    if head[4:8] == b"ftyp":
        return "cr3" if head[8:12] == b"crx " else "heif"
    if head[:16] == b"FUJIFILMCCD-RAW ":
        return "raf"
    return "other"


def _read_raf(fh: BinaryIO) -> Found:
    """Fujifilm RAF: a fixed header points at an embedded JPEG that carries the EXIF."""
    fh.seek(84)
    offset, length = struct.unpack(">II", fh.read(8))
    fh.seek(offset)
    return containers.read_jpeg(io.BytesIO(fh.read(min(length, 256 * 1024))))


def _locate(path: Path, fh: BinaryIO, kind: str, size: int) -> tuple[Found, Tags, bool]:
    """Find and decode the metadata blocks; any parser failure just leaves them empty.

    The flag says the container itself could not be read (an unknown format, or its
    reader failed), as opposed to a file we read that simply carries no metadata."""
    found, tags, unreadable = Found(), Tags(), False
    try:
        if kind == "jpeg":
            found = containers.read_jpeg(fh)
        elif kind == "png":
            found = containers.read_png(fh)
        elif kind == "webp":
            found = containers.read_webp(fh)
        elif kind == "cr3":
            found = containers.read_cr3(fh, size)
        elif kind == "raf":
            found = _read_raf(fh)
        elif kind == "heif":
            found = containers.read_heif(path)
        elif kind == "other":
            found = containers.read_with_pillow(path)
    except Exception as exc:
        log.debug("%s: container unreadable (%s): %r", path.name, kind, exc)
        unreadable = True
        if kind == "heif":  # e.g. an ISO-BMFF image libheif lacks a codec for
            try:
                found = containers.read_with_pillow(path)
                unreadable = False
            except Exception as again:
                log.debug("%s: Pillow cannot read it either: %r", path.name, again)
    try:
        if kind == "tiff":
            tags = read_tiff(CappedReader(fh))
        elif found.cr3:
            tags = read_tiff_bytes(found.cr3.get("CMT1"))
            tags.merge(read_tiff_bytes(found.cr3.get("CMT2"), "exif"))
            tags.merge(read_tiff_bytes(found.cr3.get("CMT4"), "gps"))
        else:
            tags = read_tiff_bytes(found.exif)
    except Exception as exc:
        log.debug("%s: EXIF unreadable: %r", path.name, exc)
    return found, tags, unreadable


def _pixel_size(path: Path, kind: str, found: Found, tags: Tags) -> tuple[int | None, int | None]:
    """Container size first (EXIF PixelXDimension goes stale when editors crop)."""
    if path.suffix.lower().lstrip(".") in RAW_EXTENSIONS or kind in ("cr3", "raf"):
        try:
            width, height = containers.raw_size(path)
            if width and height:
                return width, height
        except Exception as exc:
            log.debug("%s: LibRaw could not read the size: %r", path.name, exc)
        return fields.exif_size(tags, allow_ifd0=kind == "tiff")
    if found.width and found.height:
        return found.width, found.height
    return fields.exif_size(tags, allow_ifd0=kind == "tiff")


def _photo_date(
    tags: Tags, xmp: Callable[[], bytes | None], record: CameraRecord
) -> tuple[dates.Stamp | None, str]:
    """The metadata rungs of the chain: the capture time (EXIF, then XMP), the
    digitising time (EXIF, then XMP), EXIF's DateTime (the time the file was last
    written, so an editor's save time: it comes after XMP's capture dates), the camera's
    own record, then EXIF fields holding Unix timestamps."""
    rungs: list[tuple[Callable[[], dates.Stamp | None], str]] = [
        (lambda: fields.exif_date(tags, "DateTimeOriginal"), "DateTimeOriginal"),
        (lambda: dates.date_from_xmp(xmp(), dates.XMP_ORIGINAL), "XMP"),
        (lambda: fields.exif_date(tags, "DateTimeDigitized"), "DateTimeDigitized"),
        (lambda: dates.date_from_xmp(xmp(), dates.XMP_CREATED), "XMP"),
        (lambda: fields.exif_date(tags, "DateTime"), "DateTime"),
        (lambda: dates.Stamp(record.when) if record.when else None, "MakerNotes"),
    ]
    for rung, name in rungs:
        stamp = rung()
        if stamp is not None:
            return stamp, name
    for name in fields.DATE_TAGS:
        stamp = fields.exif_epoch(tags, name)
        if stamp is not None:
            return stamp, "unix_timestamp"
    return None, ""


def _fallback_date(path: Path, mtime: float) -> tuple[dates.Stamp | None, str]:
    """The rungs every file has: an epoch or a date in the name, then the mtime."""
    stamp = dates.epoch_from_filename(path.stem)
    if stamp is not None:
        return stamp, "unix_timestamp"
    stamp = dates.date_from_filename(path.stem)
    if stamp is not None:
        return stamp, "filename"
    return dates.from_mtime(mtime), "mtime"


def _safe(reader: Callable[..., T], *args: Any, default: T) -> T:
    """One field's reader; a surprise in one field must not cost the others."""
    try:
        return reader(*args)
    except Exception as exc:
        log.debug("field reader %s failed: %r", getattr(reader, "__name__", reader), exc)
        return default


def _or_round(value: float | None, fallback: float | None) -> float | None:
    """Our EXIF reading, else the camera record's value, rounded as EXIF values are."""
    if value is not None or fallback is None or not 0 < fallback < 100_000:
        return value
    return round(fallback, 2)


def _photo(path: Path, fh: BinaryIO, size: int) -> tuple[ExifData, dates.Stamp | None, str]:
    kind = _sniff(fh.read(32))
    found, tags, unreadable = _locate(path, fh, kind, size)
    if unreadable and size > 0:
        via_exiftool = _safe(exiftool.read, path, default=None)
        if via_exiftool is not None:
            return via_exiftool
    record = (found.record or CameraRecord()).fill(tags.maker)

    def xmp() -> bytes | None:
        if found.xmp is None and kind in ("tiff", "raf"):
            try:  # TIFF keeps XMP in tag 700, which our tag filter skips
                found.xmp = containers.scan_xmp(fh)
            except Exception as exc:
                log.debug("%s: XMP scan failed: %r", path.name, exc)
        return found.xmp

    width, height = _safe(_pixel_size, path, kind, found, tags, default=(None, None))
    if width is None and record.width and record.height:
        width, height = record.width, record.height
    lat, lon, alt = _safe(fields.gps, tags, default=(None, None, None))
    exposure_time, exposure_seconds = _safe(fields.exposure, tags, default=(None, None))
    if exposure_seconds is None and 0 < (record.exposure_seconds or 0) <= 86_400:
        exposure_seconds = round(record.exposure_seconds or 0, 9)
        exposure_time = fields.format_exposure(exposure_seconds)
    orientation = 1 if found.orientation_applied else _safe(fields.orientation, tags, default=None)
    data = ExifData(
        camera_make=_safe(fields.string, tags, IFD0, 0x010F, default=None) or record.make,
        camera_model=_safe(fields.string, tags, IFD0, 0x0110, default=None) or record.model,
        lens=_safe(fields.string, tags, EXIF, 0xA434, default=None),
        width=width,
        height=height,
        orientation=orientation,
        gps_lat=lat,
        gps_lon=lon,
        gps_alt=alt,
        focal_length=_or_round(_safe(fields.focal_length, tags, default=None), record.focal_length),
        aperture=_or_round(_safe(fields.aperture, tags, default=None), record.f_number),
        exposure_time=exposure_time,
        exposure_seconds=exposure_seconds,
        iso=_safe(fields.iso, tags, default=None) or record.iso,
        flash=_safe(fields.flash, tags, default=None),
        software=_safe(fields.string, tags, IFD0, 0x0131, default=None),
    )
    stamp, source = _safe(_photo_date, tags, xmp, record, default=(None, ""))
    return data, stamp, source


def _video(path: Path) -> tuple[ExifData, dates.Stamp | None, str]:
    try:
        meta = read_video(path)
    except Exception as exc:
        log.debug("%s: container unreadable: %r", path.name, exc)
        return ExifData(), None, ""
    lat, lon, alt = meta.gps or (None, None, None)
    data = ExifData(
        camera_make=text(meta.make),
        camera_model=text(meta.model),
        software=text(meta.software),
        width=meta.width,
        height=meta.height,
        orientation=meta.orientation,
        gps_lat=lat,
        gps_lon=lon,
        gps_alt=alt,
    )
    return data, meta.date, "container" if meta.date else ""


def is_video(path: Path, media_type: str) -> bool:
    return media_type == "video" or path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS


def extract(path: Path, media_type: str, mtime: float) -> ExifData:
    """Read the metadata of one file; ``media_type`` is "photo" or "video".

    ``mtime`` (seconds since the epoch) is the last rung of the date chain. Raises
    ``ExtractError`` only when the file cannot be opened or read.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if is_video(path, media_type):
                data, stamp, source = _video(path)
            else:
                data, stamp, source = _photo(path, fh, size)
            if stamp is None:
                stamp, source = _fallback_date(path, mtime)
    except OSError as exc:
        raise ExtractError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    except Exception as exc:  # every reader is guarded; this only keeps the contract
        raise ExtractError(f"could not read the metadata of {path.name}: {exc!r}") from exc
    return replace(
        data,
        date_taken=stamp.when if stamp else None,
        utc_offset_minutes=stamp.offset_minutes if stamp else None,
        date_source=source,
    )
