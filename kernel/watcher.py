"""Live file events (watchfiles): new and changed files are indexed within seconds.

Events are debounced by watchfiles; a file still being written is indexed only once its
size has stopped changing. When the OS refuses more watches (inotify's limit on large
libraries), the watcher falls back to polling and says so in the log; the periodic
scans still catch everything either way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import Change, awatch

from kernel.index import Stat
from kernel.libraries import Library
from kernel.media.mediatypes import media_type_for
from kernel.walk import link_allowed, walk, within

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)
STABLE_CHECK_SECONDS = 1.0
STABLE_CHECK_ROUNDS = 30


async def wait_until_stable(path: Path) -> os.stat_result | None:
    """The file's stat once two looks a moment apart agree; None if it went away."""
    try:
        before = path.stat()
    except OSError:
        return None
    for _ in range(STABLE_CHECK_ROUNDS):
        await asyncio.sleep(STABLE_CHECK_SECONDS)
        try:
            after = path.stat()
        except OSError:
            return None
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            return after
        before = after
    return None


def _walk_list(folder: str, skip: frozenset[str], library_root: str) -> list[Stat]:
    return list(walk(folder, skip, library_root=library_root))


class Watcher:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.polling = False
        self.stop_event = asyncio.Event()

    def _locate(self, path: str) -> tuple[Library, str] | None:
        """The library and relative path of an event, or None for one a full scan would not
        index: outside every library, under a derived folder, or reached through a
        symlinked folder (a loop back into the library, a folder linked in from outside)."""
        if within(path, self.kernel.skip_dirs):
            return None
        for library in self.kernel.libraries:
            root = str(library.root)
            if path.startswith(root + os.sep):
                parent = os.path.dirname(path)
                if os.path.realpath(parent) != parent:
                    return None
                return library, path[len(root) + 1 :].replace(os.sep, "/")
        return None

    async def handle(self, changes: set[tuple[Change, str]]) -> None:
        """Apply one debounced batch of events to the index and fire hooks.

        A folder moved into a library arrives as one event for the folder, so a new
        folder is walked; a folder that vanished takes its indexed files with it. The
        batch is applied at once (``Ingest.apply_batch``), so a file or folder renamed
        or moved (also to another library) keeps its rows instead of being removed and
        added again.
        """
        touched: dict[str, tuple[Library, str]] = {}
        gone: list[tuple[Library, str]] = []
        gone_folders: list[tuple[Library, str]] = []
        skip = self.kernel.skip_dirs
        for change, path in changes:
            located = self._locate(path)
            if located is None:
                continue
            library, rel_path = located
            if change == Change.deleted:
                if media_type_for(path) is None:
                    gone_folders.append(located)
                else:
                    gone.append(located)
            elif media_type_for(path) is not None:
                if os.path.islink(path) and not link_allowed(path, str(library.root), skip):
                    continue
                touched[path] = located
            elif change == Change.added and os.path.isdir(path) and not os.path.islink(path):
                found = await asyncio.to_thread(_walk_list, path, skip, str(library.root))
                for stat in found:
                    touched[os.path.join(path, stat.rel_path)] = (
                        library,
                        f"{rel_path}/{stat.rel_path}",
                    )
        stable = await asyncio.gather(*(wait_until_stable(Path(p)) for p in touched))
        arrived: list[tuple[Library, Stat]] = []
        for (path, (library, rel_path)), st in zip(touched.items(), stable, strict=True):
            if st is None or not Path(path).is_file():
                continue
            media_type = media_type_for(path) or "photo"
            arrived.append((library, Stat(rel_path, st.st_size, st.st_mtime_ns, media_type)))
        await self.kernel.ingest.apply_batch(gone, gone_folders, arrived)
        if touched:
            await self.kernel.scanner.hash_backlog()

    async def run(self) -> None:
        roots = [str(lib.root) for lib in self.kernel.libraries]
        missing = [root for root in roots if not os.path.isdir(root)]
        if missing:
            log.error("not watching: library folder(s) %s missing; periodic scans go on", missing)
            return
        while not self.stop_event.is_set():
            try:
                async for changes in awatch(
                    *roots,
                    stop_event=self.stop_event,
                    force_polling=self.polling,
                    poll_delay_ms=2000,
                    recursive=True,
                    ignore_permission_denied=True,
                ):
                    try:
                        await self.handle(changes)
                    except Exception:
                        log.exception("could not apply file events; the next scan will")
                return
            except Exception as exc:
                if self.polling:
                    log.exception("file watching failed; relying on periodic scans")
                    return
                log.warning(
                    "native file watching failed (%s) — the inotify watch limit"
                    " (fs.inotify.max_user_watches) may be too low for this library;"
                    " falling back to polling",
                    exc,
                )
                self.polling = True
