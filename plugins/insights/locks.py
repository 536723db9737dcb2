"""One asyncio lock per (library, file): work on one insight happens one at a time.

Generation takes it around storing; chat continuation takes it around a whole turn, so
concurrent turns on one transcript are serialised and none is lost. Locks live only
while someone holds or waits for them (a weak-valued map), so a library of a million
photos does not keep a million locks.
"""

from __future__ import annotations

import asyncio
import weakref


class FileLocks:
    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def __call__(self, library_id: int, rel_path: str) -> asyncio.Lock:
        key = (library_id, rel_path)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock
