"""Content hashing (blake3) with the magic-byte check done on the same read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import blake3

from kernel.media.mediatypes import MAGIC_BYTES_NEEDED, confirm

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class HashOutcome:
    file_id: int
    content_hash: str | None
    error: str | None  # the file is not what its name says, or cannot be read
    changed: bool = False  # size/mtime moved while hashing: try again later


def hash_file(file_id: int, path: Path, size: int, mtime_ns: int) -> HashOutcome:
    """Hash one file in a worker thread (blake3 releases the GIL while it works)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(MAGIC_BYTES_NEEDED)
            problem = confirm(path.name, head)
            if problem:
                return HashOutcome(file_id, None, problem)
            hasher = blake3.blake3(head)
            if size > 64 * CHUNK:
                hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
                hasher.update_mmap(path)
            else:
                while chunk := handle.read(CHUNK):
                    hasher.update(chunk)
            after = os.fstat(handle.fileno())
    except FileNotFoundError:
        return HashOutcome(file_id, None, None, changed=True)
    except OSError as exc:
        return HashOutcome(file_id, None, f"cannot read: {exc.strerror or exc}")
    if after.st_size != size or after.st_mtime_ns != mtime_ns:
        return HashOutcome(file_id, None, None, changed=True)
    return HashOutcome(file_id, hasher.hexdigest(), None)
