"""Walking a library: every media file the resolver would serve, as cheaply as possible."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from stat import S_ISREG

from kernel.index import Stat
from kernel.media.mediatypes import MEDIA_TYPE_BY_EXTENSION

log = logging.getLogger(__name__)


def within(path: str, folders: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or lies below one (plain string test)."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def link_allowed(path: str, library_root: str, skip: frozenset[str]) -> bool:
    """A symlinked file is indexed only where the resolver would serve it: its real path
    inside the library and outside every derived folder."""
    real = os.path.realpath(path)
    return within(real, (library_root,)) and not within(real, skip)


def walk(
    root: str,
    skip: frozenset[str],
    since_ns: int | None = None,
    *,
    library_root: str | None = None,
) -> Iterator[Stat]:
    """Every media file under ``root`` that the resolver would serve (iterative).

    Symlinked folders are not followed; a symlinked file is listed only when its real path
    lies inside ``library_root`` (default ``root``) and outside ``skip``. The hot loop of
    every scan: one ``stat`` per media file and nothing else (the entry type comes from
    the directory listing itself).
    """
    types = MEDIA_TYPE_BY_EXTENSION
    library_root = library_root or root
    stack = [("", root)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        prefix = f"{rel_dir}/" if rel_dir else ""
        try:
            with os.scandir(abs_dir) as listing:
                entries = list(listing)
        except OSError as exc:
            log.warning("cannot list %s: %s", abs_dir, exc)
            continue
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path not in skip:
                        stack.append((prefix + name, entry.path))
                    continue
                dot = name.rfind(".")
                media_type = types.get(name[dot + 1 :].lower()) if dot >= 0 else None
                if media_type is None:
                    continue
                if entry.is_symlink() and not link_allowed(entry.path, library_root, skip):
                    continue
                st = entry.stat()
            except OSError:
                continue
            if not S_ISREG(st.st_mode):
                continue
            if since_ns is not None and max(st.st_mtime_ns, st.st_ctime_ns) < since_ns:
                continue
            yield Stat(prefix + name, st.st_size, st.st_mtime_ns, media_type)
