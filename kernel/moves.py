"""Moves: a file that vanished and a file that appeared with the same content are one file.

A move keeps the file's row: its id stays, only ``library_id``, ``rel_path`` (and the
mtime, when a copy-and-delete changed it) are rewritten. Everything a plugin keys by
``files.id`` (tags, favourites, EXIF, HLS renditions, thumbnail state) follows with no
work; plugins that store files under the path are told through ``on_files_moved``.

Who is paired with whom (``pair``):

* the candidates are the rows that vanished in the same scan or watcher batch, and rows
  already marked missing (a move whose two halves arrived in different batches);
* an arrival (a path without a row) with the same name, size and mtime as a candidate is
  that candidate moved: the scanner trusts size and mtime for unchanged files already,
  and a folder rename of 10,000 files must not hash 10,000 files again;
* otherwise the arrival is hashed and compared with the candidate's ``content_hash``;
* one candidate, several arrivals with its content (copies): the one with the same name,
  else the first by path. The others are new files with rows of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, bindparam, select, update

from kernel.hashing import hash_file
from kernel.index import FILE_COLUMNS, FileIndex, Stat, split_rel_path, update_values
from kernel.libraries import Library
from kernel.tables import files
from kernel.types import FileRef

BATCH = 2000
Move = tuple[FileRef, FileRef]  # (before, after): the same id, another place


@dataclass(frozen=True, slots=True)
class Arrival:
    """A media file on disk that has no row in the index."""

    library: Library
    stat: Stat

    @property
    def name(self) -> str:
        return split_rel_path(self.stat.rel_path)[1]

    @property
    def abs_path(self) -> Path:
        return self.library.root / self.stat.rel_path

    @property
    def key(self) -> tuple[str, int]:
        return self.stat.rel_path, self.library.id


def digest(arrival: Arrival) -> str | None:
    """The content hash of an arrival (None when unreadable or not what its name says)."""
    stat = arrival.stat
    return hash_file(0, arrival.abs_path, stat.size, stat.mtime_ns).content_hash


Digests = Callable[[list[Arrival]], list[str | None]]


def _name(ref: FileRef) -> str:
    return split_rel_path(ref.rel_path)[1]


def pair(
    vanished: Iterable[FileRef],
    arrivals: Iterable[Arrival],
    digests: Digests = lambda batch: [digest(a) for a in batch],
) -> list[tuple[FileRef, Arrival]]:
    """Which vanished rows reappear as which arrivals (see the module docstring).

    ``digests`` hashes a list of arrivals at once (the scanner hands it to its pool); it
    is called once, for the arrivals that share a size with a candidate not matched by
    name, size and mtime.
    """
    olds = sorted({ref.id: ref for ref in vanished}.values(), key=lambda r: (r.rel_path, r.id))
    news = sorted(arrivals, key=lambda a: a.key)
    if not olds or not news:
        return []
    exact: dict[tuple[str, int, int], list[Arrival]] = {}
    by_size: dict[int, list[Arrival]] = {}
    for arrival in news:
        s = arrival.stat
        exact.setdefault((arrival.name, s.size, s.mtime_ns), []).append(arrival)
        by_size.setdefault(s.size, []).append(arrival)
    taken: set[tuple[str, int]] = set()
    pairs: list[tuple[FileRef, Arrival]] = []
    rest: list[FileRef] = []
    for old in olds:
        found = next(
            (a for a in exact.get((_name(old), old.size, old.mtime_ns), ()) if a.key not in taken),
            None,
        )
        if found is None:
            rest.append(old)
            continue
        taken.add(found.key)
        pairs.append((old, found))
    rest = [old for old in rest if old.content_hash and old.size in by_size]
    if not rest:
        return pairs
    wanted = {old.size for old in rest}
    to_hash = [a for a in news if a.stat.size in wanted and a.key not in taken]
    hashes = dict(zip((a.key for a in to_hash), digests(to_hash), strict=True))
    for old in rest:
        same = [
            a
            for a in by_size[old.size]
            if a.key not in taken and hashes.get(a.key) == old.content_hash
        ]
        if same:
            found = next((a for a in same if a.name == _name(old)), same[0])
            taken.add(found.key)
            pairs.append((old, found))
    return pairs


def missing_with_sizes(index: FileIndex, sizes: Iterable[int]) -> list[FileRef]:
    """Rows already marked missing whose size one of ``sizes`` has (move candidates)."""
    wanted = sorted(set(sizes))
    if not wanted:
        return []
    query = select(*FILE_COLUMNS).where(
        files.c.status == "missing", index.db.among(files.c.size, wanted)
    )
    with index.db.read() as conn:
        return index.refs(conn.execute(query).all())


def apply(conn: Connection, pairs: Sequence[tuple[FileRef, Arrival]]) -> list[Move]:
    """Re-point each old row at its new place, in batches; returns (before, after) refs.

    Only rows still where they were are moved (another process may have got there
    first); the new place must have no row (arrivals are paths without one).
    """
    now = time.time()
    moves: list[Move] = []
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start : start + BATCH]
        values = []
        for old, new in chunk:
            parent, name = split_rel_path(new.stat.rel_path)
            values.append(
                {
                    **update_values(new.stat, False, now),  # its size is the old one's
                    "b_id": old.id,
                    "b_library": old.library_id,
                    "b_path": old.rel_path,
                    "library_id": new.library.id,
                    "rel_path": new.stat.rel_path,
                    "parent_dir": parent,
                    "name": name,
                }
            )
            moves.append((old, after(old, new)))
        conn.execute(
            update(files).where(
                files.c.id == bindparam("b_id"),
                files.c.library_id == bindparam("b_library"),
                files.c.rel_path == bindparam("b_path"),
            ),
            values,
        )
    return moves


def after(old: FileRef, new: Arrival) -> FileRef:
    """The row of ``old`` once it stands where ``new`` is."""
    s = new.stat
    return FileRef(
        old.id, new.library.id, s.rel_path, new.library.root, old.size, s.mtime_ns,
        s.media_type, old.content_hash,
    )  # fmt: skip
