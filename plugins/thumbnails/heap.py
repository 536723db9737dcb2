"""The C heap of a process that decodes pictures and videos: freed memory handed back.

glibc serves a block of 128 KiB or more from a mapping of its own, unmapped when freed,
but once such a block is freed it raises that threshold (up to 32 MiB) to the block's
size and serves later ones from the heap of the thread that asks, where their pages
stay. A render thread that had decoded HEIC thumbnails kept 17 MB that way for the life
of the process, and a server at rest after ingesting a mixed library (JPEG, HEIC, RAW,
video) held 257-258 MB of private memory against 275-284. A fixed threshold of 4 MiB
turns the raising off: blocks of 4 MiB and more (decode buffers; not the 1 MiB reads
of originals) always get their own mapping, and the heaps' tops are trimmed at the
default 128 KiB again. Thumbnail and original serving measured the same within noise.

Decoders also keep smaller buffers (a clip's frames) that outlive the decode in the
heap; ``malloc_trim`` after a video returns those (retained after six 1080p clips on two
threads: 5 MB instead of 33-46).

Elsewhere than glibc (musl has neither call) both do nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
OWN_MAPPING_FROM = 4 << 20  # bytes


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _call(name: str, *args: int) -> None:
    function = getattr(_libc(), name, None)
    if function is not None:
        function(*args)


def map_large_blocks() -> None:
    """From now on, for the whole process: blocks of ``OWN_MAPPING_FROM`` bytes or more
    get a mapping of their own and go back to the system when freed."""
    _call("mallopt", M_MMAP_THRESHOLD, OWN_MAPPING_FROM)


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (glibc's ``malloc_trim(0)``)."""
    _call("malloc_trim", 0)
