"""Capture times as clients read them: the wall-clock time a camera recorded, with its
UTC offset when the file says it (``date_taken`` in a file's JSON, from EXIF and in
memories alike)."""

from __future__ import annotations

import functools
from datetime import datetime


@functools.lru_cache(maxsize=1024)
def _offset_suffix(minutes: int) -> str:
    hours, rest = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"


def iso_datetime(when: datetime, offset_minutes: int | None) -> str:
    """ISO-8601 text of a wall-clock time, with its UTC offset when known: what an aware
    datetime's ``isoformat`` writes, without making one (listings format thousands)."""
    text = when.isoformat()
    return text if offset_minutes is None else text + _offset_suffix(offset_minutes)
