"""Where an upload is written while it arrives, how it gets its final name, and the sweeps
that delete what a killed server left behind.

An upload is written to a *staging file* in a folder the index never enters (declared
through ``storage_folders``), then linked into the photo folder under its final name: the
link is atomic and fails if the name exists, so a file never appears half-written and is
never overwritten. ``os.link`` needs both names on one filesystem, so each library stages
in the data folder when that shares the library's filesystem, else in a hidden
``.imageapi-uploads`` folder at the library's root. When the target folder is on yet
another filesystem (a mount inside the library, or a library named after the file part),
the link fails with EXDEV and the file is copied to a temporary in the target folder
first, then linked from there.

A staging file (and such a temporary) is locked (``flock``) by the process writing it
for as long as it exists. A sweep deletes one only if it can take that lock, so it never
deletes an upload under way, in this process or another (``imageapi scan`` runs the same
start-up sweep beside a live server), and it deletes one whose writer was killed (the
kernel drops the lock with the process) at once, whatever its age.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.libraries import PathRefused

from .names import candidates, fs_limits

if TYPE_CHECKING:
    from kernel.libraries import Library

log = logging.getLogger(__name__)
STAGING_DIR = ".imageapi-uploads"  # at a library root, when the data folder cannot serve
STAGED_PREFIX = "upload-"
#: temporaries in photo folders: the EXDEV copy, and what versions before this plugin left
TEMP_PREFIX = ".imageapi-upload-"
SUFFIX = ".part"
#: a temporary in a photo folder is swept only when unlocked and untouched this long (a
#: network filesystem may not show another host's lock)
STALE_SECONDS = 3600
COPY_CHUNK = 1 << 20


def staging_folders(data_dir: Path, libraries: Iterable[Library]) -> dict[int, Path]:
    """The staging folder of each library (created here): ``<data>/uploads`` when it is
    on the library's filesystem, else ``<root>/.imageapi-uploads``; when that cannot be
    made (a read-only library), ``<data>/uploads`` anyway, and EXDEV copies."""
    shared = data_dir / "uploads"
    shared.mkdir(parents=True, exist_ok=True)
    device = shared.stat().st_dev
    folders: dict[int, Path] = {}
    for library in libraries:
        folder = shared
        try:
            if library.root.stat().st_dev != device:
                own = library.root / STAGING_DIR
                own.mkdir(exist_ok=True)
                folder = own
        except OSError as exc:
            log.warning("uploads to %s are staged in %s and copied: %s", library.root, shared, exc)
        folders[library.id] = folder.resolve()
    return folders


class StagedFile:
    """A file being received: created exclusively under a random name and locked while
    this process holds it. Close it (``discard``, or after ``place``) to remove it."""

    def __init__(self, folder: Path, prefix: str = STAGED_PREFIX) -> None:
        self.size = 0
        self.head = b""  # the first bytes, for the magic-bytes check
        folder.mkdir(parents=True, exist_ok=True)  # an operator may have removed it
        for _ in range(10):
            path = folder / f"{prefix}{secrets.token_hex(8)}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:  # else a sweep took it in the instant before the lock
                break
            os.close(fd)
        else:
            raise OSError(errno.EEXIST, "could not create a staging file", str(folder))
        self.path = path
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> None:
        if len(self.head) < 256:
            self.head += bytes(data[: 256 - len(self.head)])
        self.file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        """Make the bytes durable before a name points at them."""
        self.file.flush()
        os.fsync(self.file.fileno())

    def discard(self) -> None:
        """Remove the file (idempotent); the lock goes with the descriptor."""
        if not self.file.closed:
            self.path.unlink(missing_ok=True)
            self.file.close()

    def place(self, folder: Path, name: str) -> Path:
        """Give the finished file its final name in ``folder`` (never overwriting); the
        staging name is removed whatever happens."""
        try:
            self.finish()
            try:
                return link_without_overwriting(self.path, folder, name)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            copy = StagedFile(folder, TEMP_PREFIX)
            try:
                with open(self.path, "rb") as source:
                    shutil.copyfileobj(source, copy.file, COPY_CHUNK)
                copy.finish()
                return link_without_overwriting(copy.path, folder, name)
            finally:
                copy.discard()
        finally:
            self.discard()


def link_without_overwriting(source: Path, folder: Path, name: str) -> Path:
    """Link ``source`` as ``name`` in ``folder``; on a clash as ``name_<unix-ts>.ext``."""
    _, name_max = fs_limits(folder)
    for candidate in candidates(name, name_max):
        final = folder / candidate
        try:
            os.link(source, final)  # atomic, and fails if the name exists: never overwrites
            return final
        except FileExistsError:
            continue
    raise PathRefused(409, "could not find a free file name")


# --- sweeps ------------------------------------------------------------------------------------


def _delete_if_abandoned(path: str, min_age: float) -> bool:
    """Delete a staging file or temporary that no process holds (and, for ``min_age``,
    that nobody touched for that long)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < min_age:
            return False
        os.unlink(path)
        return True
    except OSError:  # locked by a live upload, or already gone
        return False
    finally:
        os.close(fd)


def sweep_staging(folders: Iterable[Path]) -> int:
    """Delete every abandoned staging file; returns how many. Cheap: a few folders."""
    removed = 0
    for folder in set(folders):
        try:
            with os.scandir(folder) as listing:
                names = [e.path for e in listing if _is_staged(e.name, STAGED_PREFIX)]
        except OSError:
            continue
        removed += sum(_delete_if_abandoned(path, 0) for path in names)
    return removed


def _is_staged(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and name.endswith(SUFFIX)


def temporaries(root: str, skip: frozenset[str]) -> Iterator[str]:
    """Every ``.imageapi-upload-*.part`` under ``root``: names only (the type comes from
    the directory listing), symlinked folders and derived folders not entered."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path not in skip:
                        stack.append(entry.path)
                elif _is_staged(entry.name, TEMP_PREFIX):
                    yield entry.path
            except OSError:
                continue


def sweep_temporaries(roots: Iterable[Path], skip: frozenset[str]) -> int:
    """Delete abandoned temporaries in photo folders (older than ``STALE_SECONDS``)."""
    removed = 0
    for root in roots:
        for path in temporaries(str(root), skip):
            if _delete_if_abandoned(path, STALE_SECONDS):
                log.info("removed an abandoned upload: %s", path)
                removed += 1
    return removed
