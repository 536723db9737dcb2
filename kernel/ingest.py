"""Single-file ingest for uploads and live events: upsert one row, fire the right hook."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from kernel.index import Stat
from kernel.libraries import Library
from kernel.tables import files
from kernel.types import FileRef

if TYPE_CHECKING:
    from kernel.core import Kernel


class Ingest:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def add(self, library: Library, stat: Stat) -> FileRef | None:
        """Index one file now (committed before hooks run); returns its row."""
        index = self.kernel.index

        def store() -> tuple[int, str]:
            with self.kernel.db.write() as conn:
                return index.upsert(conn, library.id, stat)

        file_id, state = await asyncio.to_thread(store)
        refs = await asyncio.to_thread(index.get_many, [file_id])
        if not refs:
            return None
        ref = refs[0]
        if state in ("new", "returned"):
            await self.kernel.hooks.on_file_discovered(ref)
        elif state == "changed":
            await self.kernel.hooks.on_file_changed(ref)
        return ref

    async def remove(self, library: Library, rel_path: str) -> None:
        """Mark a vanished file missing and tell plugins (no-op for unknown paths)."""

        def mark() -> FileRef | None:
            ref = self.kernel.index.get(library.id, rel_path)
            if ref is None:
                return None
            with self.kernel.db.write() as conn:
                self.kernel.index.mark_missing(conn, [ref.id])
            return ref

        ref = await asyncio.to_thread(mark)
        if ref is not None:
            await self.kernel.hooks.on_file_removed(ref)

    async def remove_folder(self, library: Library, rel_dir: str) -> int:
        """Mark every indexed file under a vanished folder missing; returns how many."""

        def mark() -> list[FileRef]:
            under = and_(
                files.c.library_id == library.id,
                files.c.status == "present",
                files.c.rel_path >= rel_dir + "/",
                files.c.rel_path < rel_dir + "0",
            )
            with self.kernel.db.read() as conn:
                ids = list(conn.execute(select(files.c.id).where(under)).scalars())
            refs = self.kernel.index.get_many(ids)
            with self.kernel.db.write() as conn:
                self.kernel.index.mark_missing(conn, ids)
            return refs

        refs = await asyncio.to_thread(mark)
        for ref in refs:
            await self.kernel.hooks.on_file_removed(ref)
        return len(refs)
