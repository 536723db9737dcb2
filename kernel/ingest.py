"""Ingest outside full scans: one file (uploads, ``GET /image``) or one batch of live
events (the watcher), where a file that vanished and one that appeared with the same
content are recognised as one file moved (``kernel.moves``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kernel import moves
from kernel.index import FILE_COLUMNS, Stat, under_folder
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

    async def apply_batch(
        self,
        gone: list[tuple[Library, str]],
        gone_folders: list[tuple[Library, str]],
        arrived: list[tuple[Library, Stat]],
    ) -> list[moves.Move]:
        """One watcher batch: files and folders that vanished, files that appeared or
        changed. Moves among them (and onto rows already missing) keep their rows and are
        re-pointed in one transaction; the rest is removed or added as usual."""
        index = self.kernel.index

        def plan() -> tuple[list[moves.Move], list[FileRef], list[tuple[Library, Stat]]]:
            vanished: list[FileRef] = []
            with self.kernel.db.read() as conn:
                for library, rel_path in gone:
                    vanished += index.refs(conn.execute(self._present(library, rel_path)))
                for library, rel_dir in gone_folders:
                    vanished += index.refs(conn.execute(self._present(library, rel_dir, True)))
            news = [moves.Arrival(lib, st) for lib, st in arrived]
            indexed: set[tuple[str, int]] = set()
            for lib in {a.library for a in news}:
                paths = [a.stat.rel_path for a in news if a.library == lib]
                indexed.update((rel_path, lib.id) for rel_path in index.rows_of(lib.id, paths))
            news = [a for a in news if a.key not in indexed]  # paths without a row
            vanished = [ref for ref in vanished if not ref.abs_path.exists()]
            candidates = vanished + moves.missing_with_sizes(index, {a.stat.size for a in news})
            pairs = moves.pair(candidates, news) if news else []
            moved: list[moves.Move] = []
            if pairs:
                with self.kernel.db.write() as conn:
                    moved = moves.apply(conn, pairs)
            ids = {old.id for old, _ in pairs}
            keys = {new.key for _, new in pairs}
            removed = [ref for ref in vanished if ref.id not in ids]
            if removed:
                with self.kernel.db.write() as conn:
                    index.mark_missing(conn, [ref.id for ref in removed])
            rest = [(lib, st) for lib, st in arrived if (st.rel_path, lib.id) not in keys]
            return moved, removed, rest

        moved, removed, rest = await asyncio.to_thread(plan)
        if moved:
            await self.kernel.hooks.on_files_moved(moved)
        for ref in removed:
            await self.kernel.hooks.on_file_removed(ref)
        for library, stat in rest:
            await self.add(library, stat)
        return moved

    @staticmethod
    def _present(library: Library, rel_path: str, folder: bool = False) -> Any:
        where = under_folder(rel_path, True) if folder else files.c.rel_path == rel_path
        return select(*FILE_COLUMNS).where(
            files.c.library_id == library.id, files.c.status == "present", where
        )
