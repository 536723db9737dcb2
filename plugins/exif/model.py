"""The result and error types of metadata extraction.

Kept apart from the extraction code so the worker pool can name them without
importing the parsers, and so both pickle under a stable module path when a result
crosses from a worker process back to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class ExtractError(Exception):
    """Metadata could not be read at all; the message is meant for a user to read.

    Corrupt or unrecognised *content* is not an error: extraction then returns what it
    could read, dated by the file name or mtime. This is raised only when the file
    cannot be read (missing, unreadable) or the work did not finish in time.
    """


@dataclass(frozen=True)
class ExifData:
    """What a photo or video says about itself.

    ``width``/``height`` are the pixels a decoder returns, before ``orientation`` is
    applied; ``orientation`` (EXIF 1..8) is the transform still needed for display.
    For HEIF the decoder already applies the container's rotation, so it is reported
    as 1. ``date_taken`` is the naive wall-clock time the camera recorded and
    ``utc_offset_minutes`` its offset when known; dates from a video container, a Unix
    timestamp or the mtime are absolute instants and are given as UTC with offset 0.
    ``date_source`` names the rule that produced the date; ``date_taken`` is None only
    when even the mtime was unusable.
    """

    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_alt: float | None = None
    focal_length: float | None = None
    aperture: float | None = None
    exposure_time: str | None = None
    exposure_seconds: float | None = None
    iso: int | None = None
    flash: bool | None = None
    date_taken: datetime | None = None
    utc_offset_minutes: int | None = None
    date_source: str = "mtime"
    software: str | None = None


@dataclass
class CameraRecord:
    """What a camera maker's own record says, for cameras that keep a field outside the
    standard EXIF tags: Canon's CIFF heap and the APP12 "picture info" text of cameras
    from before EXIF, and the maker notes (Canon's and Casio's ISO, a Reconyx trail
    camera's date). Every field fills in only where EXIF has nothing.
    """

    make: str | None = None
    model: str | None = None
    when: datetime | None = None  # wall-clock capture time; no offset is recorded
    iso: int | None = None
    f_number: float | None = None
    exposure_seconds: float | None = None
    focal_length: float | None = None
    width: int | None = None
    height: int | None = None

    def fill(self, other: CameraRecord | None) -> CameraRecord:
        """This record with its gaps filled from ``other``."""
        if other is None:
            return self
        values = {
            name: getattr(self, name) if getattr(self, name) is not None else getattr(other, name)
            for name in self.__dataclass_fields__
        }
        return CameraRecord(**values)
