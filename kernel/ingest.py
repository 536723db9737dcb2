"""Ingest outside full scans: one file (uploads, a file a client asks for before the
scanner reached it) or one batch of live events (the watcher), where a file that vanished
and one that appeared with the same content are recognised as one file moved
(``kernel.moves``)."""

from __future__ import annotations

import asyncio
import os
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kernel import moves
from kernel.index import FILE_COLUMNS, Stat, under_folder
from kernel.libraries import Library, ResolvedPath
from kernel.media.mediatypes import media_type_for
from kernel.tables import files
from kernel.types import FileRef
from kernel.walk import link_allowed, within

if TYPE_CHECKING:
    from kernel.core import Kernel


def indexable(kernel: Kernel, resolved: ResolvedPath) -> Stat | None:
    """What a full scan would index at this path, or None: a media file by extension,
    not reached through a linked folder, outside every derived folder (a linked file
    only if it points inside the library, like the scanner's walk)."""
    media_type = media_type_for(resolved.rel_path)
    if media_type is None or not resolved.rel_path:
        return None
    root = str(resolved.library.root)
    candidate = os.path.join(root, *resolved.rel_path.split("/"))
    skip = kernel.skip_dirs
    parent = os.path.dirname(candidate)
    if os.path.realpath(parent) != parent or within(candidate, skip):
        return None
    if os.path.islink(candidate) and not link_allowed(candidate, root, skip):
        return None
    try:
        st = os.stat(candidate)
    except OSError:
        return None
    if not S_ISREG(st.st_mode):
        return None
    return Stat(resolved.rel_path, st.st_size, st.st_mtime_ns, media_type)


class Ingest:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def on_demand(self, resolved: ResolvedPath) -> FileRef | None:
        """A file a client asked for that is on disk but not indexed yet (just copied
        in, before the watcher or a scan saw it), indexed now and queued for hashing;
        None for a path a full scan would not index (``indexable``), so every route
        answers such a path as the scanner sees it, whatever the route."""
        stat = await asyncio.to_thread(indexable, self.kernel, resolved)
        if stat is None:
            return None
        ref = await self.add(resolved.library, stat)
        self.kernel.spawn_background(self.kernel.scanner.hash_backlog(), "hash on demand")
        return ref

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
