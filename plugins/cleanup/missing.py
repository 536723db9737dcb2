"""Phase 1: rows marked missing, matched by content hash against present files.

A missing row whose content is present elsewhere (a move the watcher could not pair: the
two halves seen far apart, or the copy indexed before the original was deleted) takes the
place of the present duplicate: the duplicate's row is deleted (after ``on_file_removed``
lets plugins drop what they derived from it) and the missing row is re-pointed at its
path through ``kernel.moves``, so tags, favourites and every plugin's data keyed by the
old row come back. A duplicate that holds user data of its own is never replaced: the
pair is reported as a conflict for the operator to settle.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from kernel import moves
from kernel.index import FILE_COLUMNS, Stat
from kernel.tables import files
from kernel.types import FileRef

if TYPE_CHECKING:
    from kernel.core import Kernel


@dataclass
class Missing:
    ref: FileRef
    missing_since: float
    user_data: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.ref.id,
            "library": self.ref.library_id,
            "path": self.ref.rel_path,
            "missing_days": round((time.time() - self.missing_since) / 86400, 1),
            "user_data": self.user_data,
        }


@dataclass
class Match:
    missing: Missing
    present: FileRef
    present_data: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.missing.to_json(),
            "found_library": self.present.library_id,
            "found_path": self.present.rel_path,
            "found_user_data": self.present_data,
        }


@dataclass
class Report:
    matches: list[Match] = field(default_factory=list)  # re-pointed (or would be)
    conflicts: list[Match] = field(default_factory=list)  # the duplicate has user data
    unmatched: list[Missing] = field(default_factory=list)
    purged: list[Missing] = field(default_factory=list)


def _missing_rows(kernel: Kernel) -> list[Missing]:
    query = (
        select(*FILE_COLUMNS, files.c.missing_since)
        .where(files.c.status == "missing")
        .order_by(files.c.library_id, files.c.rel_path)
    )
    with kernel.db.read() as conn:
        rows = conn.execute(query).all()
    known = {lib.id for lib in kernel.libraries}
    return [
        Missing(kernel.index.ref(row), row.missing_since or 0.0)
        for row in rows
        if row.library_id in known
    ]


def _present_with(kernel: Kernel, hashes: list[str]) -> dict[str, list[FileRef]]:
    found: dict[str, list[FileRef]] = {}
    with kernel.db.read() as conn:
        for start in range(0, len(hashes), 500):
            query = (
                select(*FILE_COLUMNS)
                .where(
                    files.c.status == "present",
                    files.c.content_hash.in_(hashes[start : start + 500]),
                )
                .order_by(files.c.rel_path, files.c.library_id)
            )
            for ref in kernel.index.refs(conn.execute(query).all()):
                found.setdefault(ref.content_hash or "", []).append(ref)
    return found


async def examine(kernel: Kernel) -> Report:
    """Pair missing rows with present duplicates (same name first, else first by path)."""
    report = Report()
    missing = await asyncio.to_thread(_missing_rows, kernel)
    hashes = sorted({m.ref.content_hash for m in missing if m.ref.content_hash})
    present = await asyncio.to_thread(_present_with, kernel, hashes)
    taken: set[int] = set()
    pairs: list[tuple[Missing, FileRef]] = []
    for item in missing:
        candidates = [p for p in present.get(item.ref.content_hash or "", []) if p.id not in taken]
        if not candidates:
            report.unmatched.append(item)
            continue
        name = item.ref.rel_path.rpartition("/")[2]
        chosen = next((p for p in candidates if p.rel_path.rpartition("/")[2] == name), None)
        chosen = chosen or candidates[0]
        taken.add(chosen.id)
        pairs.append((item, chosen))
    refs = [m.ref for m in missing] + [p for _m, p in pairs]
    data = await kernel.hooks.file_user_data(refs) if refs else {}
    for item in missing:
        item.user_data = data.get(item.ref.id, {})
    for item, chosen in pairs:
        match = Match(item, chosen, data.get(chosen.id, {}))
        (report.conflicts if match.present_data else report.matches).append(match)
    return report


async def repoint(kernel: Kernel, matches: list[Match]) -> list[moves.Move]:
    """Replace each duplicate by its missing original (one transaction per pair)."""
    moved: list[moves.Move] = []
    for match in matches:
        duplicate = match.present
        await kernel.hooks.on_file_removed(duplicate)
        library = kernel.libraries.by_id(duplicate.library_id)
        arrival = moves.Arrival(
            library,
            Stat(duplicate.rel_path, duplicate.size, duplicate.mtime_ns, duplicate.media_type),
        )

        def write(arrival: moves.Arrival = arrival, match: Match = match) -> list[moves.Move]:
            with kernel.db.write() as conn:
                conn.execute(delete(files).where(files.c.id == match.present.id))
                return moves.apply(conn, [(match.missing.ref, arrival)])

        moved += await asyncio.to_thread(write)
    if moved:
        await kernel.hooks.on_files_moved(moved)
    return moved


async def purge(kernel: Kernel, items: list[Missing]) -> None:
    """Delete long-missing rows; plugins drop their derived files first, and the rows of
    their tables go with the file row through their foreign keys."""
    for item in items:
        await kernel.hooks.on_file_removed(item.ref)

    def write() -> None:
        ids = [item.ref.id for item in items]
        with kernel.db.write() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    delete(files).where(
                        files.c.id.in_(ids[start : start + 500]), files.c.status == "missing"
                    )
                )

    await asyncio.to_thread(write)
