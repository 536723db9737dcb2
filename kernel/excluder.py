"""EXCLUDED_DIRS: folders that memories, faces and other features leave out.

Entries starting with ``/`` name a folder relative to the library root and exclude it and
everything under it (``/private``); other entries exclude any path that has a folder of
that name anywhere (``@eaDir``, ``.thumbnails``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, true

from kernel.tables import files


class PathExcluder:
    def __init__(self, entries: Iterable[str]) -> None:
        self.prefixes: list[str] = []
        self.names: list[str] = []
        for entry in entries:
            entry = entry.strip().replace("\\", "/")
            if not entry:
                continue
            if entry.startswith("/"):
                cleaned = entry.strip("/")
                if cleaned:
                    self.prefixes.append(cleaned)
            else:
                self.names.append(entry.strip("/"))

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.names)

    def is_excluded(self, rel_path: str) -> bool:
        """True when a library-relative file path lies in an excluded folder."""
        rel_path = rel_path.strip("/")
        for prefix in self.prefixes:
            if rel_path == prefix or rel_path.startswith(prefix + "/"):
                return True
        folder = "/" + rel_path.rpartition("/")[0] + "/"
        return any(f"/{name}/" in folder for name in self.names)

    def sql_clause(self) -> ColumnElement[bool]:
        """A WHERE clause on ``files`` keeping only rows that are not excluded."""
        if not self:
            return true()
        conditions = []
        for prefix in self.prefixes:
            conditions.append(files.c.rel_path == prefix)
            conditions.append(files.c.rel_path.startswith(prefix + "/", autoescape=True))
        for name in self.names:
            conditions.append(files.c.rel_path.startswith(name + "/", autoescape=True))
            conditions.append(files.c.rel_path.contains("/" + name + "/", autoescape=True))
        return and_(*(~c for c in conditions))
