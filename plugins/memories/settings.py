"""``[plugins.memories]``: the span a client gets by default and the zone of "today"."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .window import SPANS


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError with a message a client or operator can act on."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        message = f"unknown time zone {name!r} (use an IANA name such as Europe/Oslo)"
        raise ValueError(message) from None


class MemoriesSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.memories]`` in plugins.toml."""

    default_span: str = "week"
    timezone: str = ""  # IANA zone for "today" when the client sends no tz; "" = server's

    def __post_init__(self) -> None:
        if self.default_span not in SPANS:
            raise ValueError(f"default_span must be one of {', '.join(SPANS)}")
        if self.timezone:
            zone(self.timezone)
