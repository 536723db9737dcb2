"""File names of uploads: the client's name reduced to one safe component, the limits of
the target's filesystem (NAME_MAX, PATH_MAX), and the names tried when one is taken."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from kernel.types import InvalidParameter

UNSAFE_NAME = re.compile(r"[^\w.\- ()+,@]+", re.UNICODE)
#: what ``candidates`` may add to a name: ``_<unix-ts>_<n>``
SUFFIX_ROOM = len("_1234567890_99")


def safe_basename(filename: str) -> str:
    """The client's file name reduced to one harmless path component."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    name = UNSAFE_NAME.sub("_", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = stem[:180] or "upload"
    return f"{stem}.{ext[:16]}" if ext else stem


def fs_limits(folder: Path) -> tuple[int, int]:
    """(PATH_MAX, NAME_MAX) in bytes for files in ``folder`` (POSIX defaults if unknown)."""
    try:
        return os.pathconf(folder, "PC_PATH_MAX"), os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 4096, 255


def check_name(name: str, name_max: int = 255) -> None:
    """Refuse (400, ``file``) a cleaned name the filesystem could not store."""
    size = len(os.fsencode(name))
    if size > name_max:
        raise InvalidParameter(
            "file", f"the file name is {size} bytes once cleaned; at most {name_max} are allowed"
        )


def check_target(folder: Path, name: str) -> None:
    """Refuse (400) a target the filesystem cannot hold: a name over NAME_MAX, or a full
    path (with room for a clash suffix) over PATH_MAX. Checked before any byte is copied
    into the folder, so the client hears why instead of a 500."""
    path_max, name_max = fs_limits(folder)
    check_name(name, name_max)
    length = len(os.fsencode(str(folder))) + 1 + len(os.fsencode(name)) + SUFFIX_ROOM
    if length >= path_max:
        raise InvalidParameter(
            "path", f"the file's full path would be {length} bytes; at most {path_max - 1}"
        )


def _fit(stem: str, tail: str, name_max: int) -> str:
    """``stem + tail``, the stem shortened (whole characters) until it fits NAME_MAX."""
    budget = name_max - len(os.fsencode(tail))
    while stem and len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem + tail


def candidates(name: str, name_max: int = 255) -> Iterator[str]:
    """``name``, then ``name_<unix-ts>.ext``, then ``name_<unix-ts>_<n>.ext``."""
    yield name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    stamp = int(time.time())
    yield _fit(stem, f"_{stamp}{suffix}", name_max)
    for n in range(1, 100):
        yield _fit(stem, f"_{stamp}_{n}{suffix}", name_max)
