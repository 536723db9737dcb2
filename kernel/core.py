"""The Kernel: the one object every hook receives, holding the shared services."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kernel import migrate
from kernel.auth import TokenCache
from kernel.background import TAKEOVER_SECONDS, BackgroundLock
from kernel.catalog import Catalog
from kernel.claims import Claims
from kernel.cluster import Heartbeat, ScanLock, new_owner
from kernel.config import SQLITE_THREADS, Config, ConfigError
from kernel.db import Database
from kernel.dispatch import Dispatcher
from kernel.excluder import PathExcluder
from kernel.hooks import Hooks
from kernel.index import FileIndex
from kernel.ingest import Ingest
from kernel.libraries import Libraries
from kernel.listing_cache import ListingCache
from kernel.manager import PluginRegistry, build_plugin_manager
from kernel.scanner import Scanner
from kernel.types import Tool
from kernel.watcher import Watcher

STOP_GRACE_SECONDS = 5.0
log = logging.getLogger(__name__)


class Kernel:
    """Config, plugins, database, libraries, index and scanner of one running app.

    Plugins reach everything through it: ``kernel.db`` for their tables,
    ``kernel.libraries.resolve`` for client paths, ``kernel.index`` for file rows,
    ``kernel.catalog`` for listings in the one file shape, ``kernel.hooks`` to call hooks
    of other plugins without importing them.
    """

    def __init__(
        self,
        config: Config,
        *,
        only: Iterable[str] | None = None,
        extra_plugins: Mapping[str, object] | None = None,
        default_library: Path | None = None,
    ) -> None:
        self.config = config
        self.registry: PluginRegistry = build_plugin_manager(
            config, only=only, extra_plugins=extra_plugins
        )
        self.pm = self.registry.pm
        dispatcher = Dispatcher(self.pm, timeout=config.kernel.hook_timeout_seconds)
        dispatcher.bind(kernel=self)
        self.dispatcher = dispatcher  # plugins may add observers (metrics, tracing)
        self.hooks = Hooks(dispatcher)
        self.libraries = Libraries.from_config(config, default_library)
        self.excluder = PathExcluder(config.excluded_dirs)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        settings = config.kernel
        self.db = Database(
            config.database_url,
            mmap_mb=settings.sqlite_mmap_mb,
            cache_mb=settings.sqlite_cache_mb,
        )
        dispatcher.snapshot = self.db.read
        self.index = FileIndex(self.db, self.libraries)
        self.ingest = Ingest(self)
        self.scanner = Scanner(self)
        self.watcher = Watcher(self)
        self.listing_cache = ListingCache()
        #: set by ``serve --workers``: whoever holds it does the background work
        self.background_lock: BackgroundLock | None = None
        #: True in a process that only serves while another does the background work
        self.serve_only = False
        self.tokens = TokenCache(self.db)
        #: this process's leases on units of work (PostgreSQL; a no-op on SQLite)
        self.claims = Claims(
            self.db, new_owner(), settings.lease_seconds, [lib.id for lib in self.libraries]
        )
        #: what this process runs ("http", "scan", "hash", plugin names), for /health
        self.roles: list[str] = []
        self.heartbeat = Heartbeat(self.db, self.claims, settings.heartbeat_seconds)
        self.heartbeat.roles = self.roles
        #: the background work this process may do (``imageapi worker --only``); None: all
        self.work_kinds: frozenset[str] | None = None
        self.scan_lock: ScanLock | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._tools: dict[str, Tool] | None = None
        self.registry.activate(self)  # plugin classes are built here, with this kernel
        self.storage_folders: list[Path] = [config.data_dir]
        for _plugin, folder in self.hooks.storage_folders():
            folder.mkdir(parents=True, exist_ok=True)
            self.storage_folders.append(folder.resolve())
        #: the same as strings: the folders the scanner, the watcher and GET /image skip
        self.skip_dirs = frozenset(str(p) for p in self.storage_folders)
        self.catalog = Catalog(self)
        _ = self.catalog.params, self.catalog.sorts, self.tools  # clashes stop start-up

    # --- plugins --------------------------------------------------------------------------

    def settings_for(self, plugin: str) -> Any:
        """A plugin's validated settings (for tools and commands; a plugin class has its
        own as ``self.settings``)."""
        return self.registry.settings.get(plugin)

    def plugin(self, name: str) -> object | None:
        """The registered plugin object (a module, or the instance of a plugin class)."""
        return self.registry.instances.get(name)

    def migration_branches(self) -> list[migrate.Branch]:
        branches = [migrate.Branch(migrate.KERNEL_BRANCH, migrate.KERNEL_VERSIONS)]
        declarations = self.registry.declarations
        for name in self.registry.objects:
            folder = declarations.migrations(name)
            if folder is not None:
                branches.append(migrate.Branch(name, folder))
        return branches

    def migrate(self) -> None:
        """Upgrade the kernel's branch, then every enabled plugin's, to head, and log one
        summary line instead of Alembic's few lines per revision."""
        alembic_log = logging.getLogger("alembic")
        level, upgraded = alembic_log.level, []
        alembic_log.setLevel(max(level, logging.WARNING))
        try:
            branches = self.migration_branches()
            for branch in branches:
                if migrate.at_head(self.db, branch):
                    continue  # nothing to do or report, and Alembic stays unloaded
                before = migrate.current(self.db, branch)
                migrate.upgrade(self.db, branch)
                after = migrate.current(self.db, branch)
                if after != before:
                    upgraded.append(f"{branch.name} {before or 'base'} -> {after}")
        finally:
            alembic_log.setLevel(level)
        log.info(
            "database (%s): %d migration branches, %s",
            self.db.dialect,
            len(branches),
            "upgraded " + ", ".join(upgraded) if upgraded else "all at head",
        )

    @property
    def tools(self) -> dict[str, Tool]:
        """Every LLM tool: the kernel's own (``search_photos``) and every plugin's, by name."""
        if self._tools is None:
            tools: dict[str, Tool] = {}
            offered = [("kernel", tool) for tool in self.catalog.tools()]
            for plugin, tool in [*offered, *self.hooks.tools()]:
                if tool.name in tools:
                    raise ConfigError(
                        f"tool {tool.name!r} is offered by both {tools[tool.name].plugin!r}"
                        f" and {plugin!r}"
                    )
                object.__setattr__(tool, "plugin", plugin)
                tools[tool.name] = tool
            self._tools = tools
        return self._tools

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Migrations done by the caller; fire on_startup, then start the background work.

        With a ``background_lock`` (one of several serving processes) this process does
        the background work only while it holds the lock; until then it only serves
        (``serve_only``, decided before ``on_startup`` so plugins see it) and tries to
        take the lock over every few seconds."""
        threads = self.config.kernel.threads or (SQLITE_THREADS if self.db.is_sqlite else 0)
        if threads:  # else asyncio's own: CPUs + 4 (see KernelSettings)
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(threads, thread_name_prefix="imageapi-io")
            )
        if self.background_lock is not None:
            self.serve_only = not self.background_lock.try_acquire()
        await self.hooks.on_startup()
        await asyncio.to_thread(self.heartbeat.start)
        if self.serve_only:  # plugins' own background work (HLS pre-generation) waits too
            if self.background_lock is not None:
                self.spawn_background(self._take_over(scan=background), "background takeover")
        elif background:
            self.start_background()

    async def _take_over(self, *, scan: bool) -> None:
        assert self.background_lock is not None
        while not self.background_lock.try_acquire():
            await asyncio.sleep(TAKEOVER_SECONDS)
        log.info("process %d took over the background work", os.getpid())
        self.serve_only = False
        if scan:
            self.start_background()

    def does(self, kind: str) -> bool:
        """May this process do background work of ``kind`` (``scan``, ``hash``)?"""
        return self.work_kinds is None or kind in self.work_kinds

    def start_background(self) -> None:
        """SQLite: scan, watch and drain backlogs here (the one background process).
        PostgreSQL: take claimed work (hashing, every plugin's backlog) in a loop, and
        scan and watch while holding the scan lock, which any process may take over."""
        if not self.claims.shared:
            self.roles.append("scan")
            self.start_scanning()
            return
        if self.does("hash"):
            self.roles.append("hash")
        workers = {
            impl.plugin_name
            for hook in (self.pm.hook.drain_backlog, self.pm.hook.on_hashed)
            for impl in hook.get_hookimpls()
        }
        self.roles.extend(sorted(workers))
        if self.does("scan"):
            self.spawn_background(self._lead_scanning(), "scan lock")
        self.spawn_background(self._work_forever(), "claimed work")

    async def _lead_scanning(self) -> None:
        """Take the scan lock when it is free, scan and watch while it is held."""
        lock = self.scan_lock = ScanLock(self.db.url)
        while True:
            try:
                acquired = await asyncio.to_thread(lock.try_acquire)
            except Exception:
                log.warning("could not ask for the scan lock; retrying", exc_info=True)
                acquired = False
            if acquired:
                log.info("process %d holds the scan lock: scanning and watching", os.getpid())
                self.roles.append("scan")
                tasks = self.start_scanning()
                while await asyncio.to_thread(lock.alive):
                    await asyncio.sleep(TAKEOVER_SECONDS)
                for task in tasks:
                    task.cancel()
                self.roles.remove("scan")
            await asyncio.sleep(TAKEOVER_SECONDS)

    async def _work_forever(self) -> None:
        """Hash and drain backlogs, claimed, for as long as there is work; then poll."""
        poll = self.config.kernel.work_poll_seconds
        while True:
            try:
                done = await self.scanner.work(hash_files=self.does("hash"))
            except Exception:
                log.exception("claimed work failed; retrying")
                done = 0
            if not done:
                await asyncio.sleep(poll)

    def start_scanning(self) -> list[asyncio.Task[Any]]:
        """The initial scan, the periodic tick (every plugin's backlog) and the watcher."""
        tasks = []
        if self.config.kernel.scan_on_startup:
            tasks.append(self.spawn_background(self._initial_scan(), "initial scan"))
        tasks.append(self.spawn_background(self.scanner.run_forever(), "periodic scans"))
        if self.config.kernel.watch:
            tasks.append(self.spawn_background(self.watcher.run(), "file watcher"))
        return tasks

    async def _initial_scan(self) -> None:
        report = await self.scanner.scan(full=True)
        log.info("initial scan: %s", report.summary())

    def spawn_background(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run a coroutine beside the server; it is cancelled when the kernel stops."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_task_end)
        task.add_done_callback(lambda t: t in self._tasks and self._tasks.remove(t))
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        """Cancel the background tasks, then shut the plugins down. A task still running
        ``STOP_GRACE_SECONDS`` after its cancellation (one that caught it and went on) is
        logged by name and left behind: a plugin's bug must not keep the server from
        stopping."""
        self.watcher.stop_event.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, running = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in running:
                log.error("background task %s ignored its cancellation", task.get_name())
        self._tasks.clear()
        await self.hooks.on_shutdown()
        await asyncio.to_thread(self.heartbeat.stop)
        if self.scan_lock is not None:
            self.scan_lock.dispose()
        self.scanner.close()
        self.db.dispose()
        if self.background_lock is not None:
            self.background_lock.release()


def _log_task_end(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())
