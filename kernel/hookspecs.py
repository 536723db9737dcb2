"""The plugin API of imageapi: every hook a plugin may implement.

Each spec is declared with its kind (``kernel.markers``), which says how the kernel calls
it and how results combine; the kernel calls every hook through the typed facade in
``kernel.hooks`` (``kernel.hooks.on_hashed(file)``), never by name.

* **declaration** (``plugin_settings``, ``migrations``, ``cli_commands``): read from the
  plugin object itself, once, before any kernel exists — so they take no ``kernel``. On a
  plugin class they are ``@staticmethod``.
* **notification** (``on_*``, ``drain_backlog``): every implementation runs; one raising or
  timing out is logged with its plugin's name and the others still run. Synchronous
  implementations run in a worker thread, so they may block on I/O.
* **contribution** (``routes``, ``tools``, ``search_*``, ``storage_folders``,
  ``file_extras``, ``photo_context``): every implementation runs and the non-None
  results are collected in plugin order. An exception propagates: a broken contribution
  is a bug the operator must see.
* **decision** (``render``, ``date_taken_table``, ``resolve_location``): ``firstresult``;
  implementations run in order and the first non-None answer wins, awaited first when it
  is a coroutine.

A hook marked *synchronous only* must be a plain ``def``; an ``async def`` there (or a
hook wrapper anywhere) stops start-up with a message naming the plugin and the hook.
Every other hook receives ``kernel`` (a ``kernel.core.Kernel``) among its arguments; like
any pluggy hook, an implementation may accept only the arguments it needs. A plugin that
is a class (see ``kernel.plugin.Plugin``) is built once per kernel with its validated
settings, and its hook implementations are methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.markers import contribution, decision, declaration, notification

if TYPE_CHECKING:
    import click
    import msgspec
    from sqlalchemy import FromClause

    from kernel.core import Kernel
    from kernel.types import (
        FileRef,
        RenderResult,
        SearchFilter,
        SearchParam,
        SearchQuery,
        SearchSort,
        Tool,
    )


# --- declarations: read from the plugin object before the kernel is built -----------------


@declaration
def plugin_settings() -> type[msgspec.Struct] | None:
    """Declare the ``msgspec.Struct`` that validates this plugin's ``plugins.toml`` section.

    Read once per plugin at start-up, before anything else. The section ``[plugins.NAME]``
    minus its ``enabled`` key is decoded into this type; an unknown key or a wrong type
    stops start-up with a message naming the plugin and the key. A plugin class receives
    the decoded value as ``self.settings``. Return None (or do not implement) for a plugin
    without settings; then any key but ``enabled`` is an error. Synchronous only.
    """


@declaration
def migrations() -> Path | None:
    """Return the folder holding this plugin's Alembic revisions (its own branch).

    Needed only to override the convention: a ``migrations/`` folder beside the plugin's
    module is found without it. Read at start-up (and by ``imageapi db``): the kernel
    upgrades each enabled plugin's branch to its head after its own, in its own version
    table (``alembic_version_NAME``), so a disabled plugin's tables and history are left
    alone. Synchronous only.
    """


@declaration
def cli_commands(cli: click.Group) -> None:
    """Add ``click`` commands or groups to the ``imageapi`` command line.

    Read once when the CLI starts, with the root group; implementations call
    ``cli.add_command(...)``. A command that needs the kernel builds one with
    ``kernel.cli.command_kernel()``. Synchronous only.
    """


# --- lifecycle (notification) -----------------------------------------------------------------


@notification
def on_startup(kernel: Kernel) -> None:
    """Start-up: migrations have run and the app is about to serve.

    Called once per app start, in the server's event loop, before the first request and
    before the first scan. Start background tasks here (``kernel.spawn_background``).
    May be async.
    """


@notification
def on_shutdown(kernel: Kernel) -> None:
    """Shutdown: the server is stopping; release what ``on_startup`` (or the plugin's
    constructor) took. Called once, after the last request. May be async."""


# --- contributions -------------------------------------------------------------------------------


@contribution(sync=True)
def routes(kernel: Kernel) -> Sequence[Any] | None:
    """Return Litestar route handlers, Routers or Controllers to mount on the app.

    Called once while the app is built; results are flattened. Every route requires a
    valid bearer token unless its handler sets ``opt={"public": True}``. Handlers may
    declare ``kernel: KernelDep`` and ``user: CurrentUser`` (``kernel.deps``). Give every
    handler a typed return (a ``msgspec.Struct``) so the OpenAPI document describes it.
    Synchronous only.
    """


@contribution(sync=True)
def app_plugins(kernel: Kernel) -> Sequence[Any] | None:
    """Return Litestar plugins (``InitPluginProtocol``: middleware, instrumentation) for
    the app. Called once while the app is built; results are flattened, in plugin order,
    and added after the kernel's own. Synchronous only.
    """


@contribution(sync=True)
def job_counts(kernel: Kernel) -> Mapping[str, Mapping[str, int]] | None:
    """Count your work by state: ``{queue: {state: n}}``, each queue named after your
    plugin (``{"thumbnails": {"pending": 12, "done": 900, "failed": 2}}``). ``pending``
    is what ``drain_backlog`` still has to process; other states are yours to name.

    Called when an operator asks (a metrics scrape): cheap count queries, no work.
    Synchronous only.
    """


@contribution(sync=True)
def tools(kernel: Kernel) -> Sequence[Tool] | None:
    """Return LLM-callable tools (``kernel.types.Tool``) this plugin offers.

    Called once per app, when the tool registry is first used; results are flattened and
    join the kernel's own (``search_photos``); two tools with one name stop start-up.
    Synchronous only (the tools' own ``call`` is async).
    """


@contribution(sync=True)
def search_params(kernel: Kernel) -> Sequence[SearchParam] | None:
    """Declare the query parameters your ``search_filters`` reads (name, type, help).

    Called once per app. The kernel refuses (400) a listing parameter nobody declared,
    puts every declared one on ``GET /photos`` in the OpenAPI document, and offers them
    as arguments of the ``search_photos`` LLM tool. A name declared twice (or one of the
    kernel's: path, library, recursive, sort, media_type, limit, offset, seed) stops
    start-up. Synchronous only.
    """


@contribution(sync=True)
def search_filters(
    query: SearchQuery, kernel: Kernel
) -> SearchFilter | Sequence[SearchFilter] | None:
    """Narrow a listing (``/photos``, ``/favorites``, ``search_photos``) by your parameters.

    Called once per listing with the client's query; return the filters its parameters
    ask for (``SearchFilter.on(table, *conditions)`` for conditions on your table,
    ``SearchFilter.of(...)`` for conditions on ``files``), or None. Raise
    ``InvalidParameter`` for a bad value: the client gets a 400 naming it. All filters are
    ANDed; the kernel decides how to run them (``kernel.listing``). Synchronous only (it
    builds SQL, it does not run it). Build from the query alone, reading neither the
    database nor the clock (compare with SQL's own ``func.now()`` for times relative to
    now): the kernel keeps the statements built for a listing's parameters, user and
    sort, and runs them again for its next pages and later requests, whatever the data
    has become since.
    """


@contribution(sync=True)
def search_sorts(kernel: Kernel) -> Sequence[SearchSort] | None:
    """Offer named sorts (``sort=NAME``) for listings.

    Called once per app; results are flattened; a name offered twice (or one of the
    kernel's NameAsc / NameDesc / Shuffle) stops start-up. Declare a sort by its key:
    ``SearchSort.keyed(name, table, key, index, descending=...)``; the kernel chooses
    between walking the index and sorting the matches. Synchronous only.
    """


@contribution(sync=True)
def storage_folders(kernel: Kernel) -> Sequence[Path] | None:
    """Declare the folders this plugin writes derived files to (thumbnails, HLS, ...).

    Called once when the kernel is built. The kernel creates them, and its scanner and
    watcher never enter them, even when an operator puts them inside a library.
    Synchronous only.
    """


@contribution()
def file_extras(
    files: Sequence[FileRef], user_id: int | None, kernel: Kernel
) -> Mapping[int, Mapping[str, Any]] | None:
    """Add fields to the JSON of many files at once (every listing, metadata).

    Called once per response with the page of files; return ``{file_id: {field: value}}``
    (batch your query: one per call, not one per file). The mappings of all plugins are
    merged into each file's entry; keys never replace the kernel's own fields (id, path,
    library, name, size, mtime, media_type, content_hash). May be async; synchronous
    implementations run one after the other in one worker thread, inside one read
    transaction: ``kernel.db.read()`` there gives it back, so every plugin's fields
    describe the same state of the database. Derive the fields from the database only
    (not the clock, files on disk or another service): a listing may keep its answer until
    the database changes (``/memories`` does).
    """


@contribution()
def photo_context(file: FileRef, entry: Mapping[str, Any], kernel: Kernel) -> str | None:
    """Add text to what an LLM is told about one photo or video (its insight's context).

    Called by a feature that asks a model about a file (the insights plugin, once per
    generation), with the file and its entry (``kernel.catalog.entries``: the kernel's
    fields and every plugin's ``file_extras``, e.g. ``date_taken``). Return a few lines
    of plain text (text messages of that day, a calendar entry), or None. Results are
    collected in plugin order; the caller appends them to the facts it already has. A
    service that is down is a None and a log line, not an exception. May be async.
    """


# --- ingest (notification) ----------------------------------------------------------------------


@notification
def on_file_discovered(file: FileRef, kernel: Kernel) -> None:
    """A media file appeared in the index (new path, or a missing one came back).

    Called by the scanner, the watcher, an upload or ``GET /image`` (a rendition of a
    file not indexed yet) after the row is committed, before it
    is hashed (``file.content_hash`` is None). May be async. Heavy work belongs in
    ``on_hashed`` or ``drain_backlog``.
    """


@notification
def on_file_changed(file: FileRef, kernel: Kernel) -> None:
    """An indexed file's size or mtime changed; its hash was cleared and will be recomputed.

    Called after the row is committed. Invalidate derived data here. May be async.
    """


@notification
def on_hashed(file: FileRef, kernel: Kernel) -> None:
    """A file's blake3 content hash (``file.content_hash``) was computed and committed.

    Called once per (file, content), with the magic bytes confirmed as media. This is
    where ingest work (thumbnails, EXIF, ...) starts. May be async; the scanner awaits it
    (bounded by ``hook_timeout_seconds``) before taking more files, so expensive
    implementations hand work to their own bounded pool.
    """


@notification
def on_file_removed(file: FileRef, kernel: Kernel) -> None:
    """An indexed file vanished from disk; its row is kept and marked missing.

    Called after the row is committed. Delete derived files here; keep user data (tags,
    favorites) so a file that comes back finds them again. Also called by ``imageapi
    cleanup --purge-missing`` right before a long-missing row is deleted (the rows of
    plugin tables go with it through their foreign keys). May be async.
    """


@notification
def on_files_moved(moves: Sequence[tuple[FileRef, FileRef]], kernel: Kernel) -> None:
    """Files moved or were renamed: each ``(before, after)`` pair is one file (same id).

    Called once per scan or watcher batch (a folder rename of 10,000 files is one call)
    and by ``imageapi cleanup``, after the rows are committed. The file kept its row, so
    data keyed by ``files.id`` needs nothing; move what you store under the path (derived
    files named after it). ``after`` may be in another library. May be async.
    """


@notification
def drain_backlog(kernel: Kernel, limit: int) -> int | None:
    """Catch up on files this plugin has not processed yet; the database is the queue.

    Called on every scanner tick (after the scan) with the most files an implementation
    should process in this call. Select your backlog with an anti-join against ``files``,
    process up to ``limit``, commit, and return how many you processed (the kernel
    reports it per plugin). This is how a plugin catches up after a crash, or after it
    was switched off and on. May be async.

    A plugin that processed nothing is not called again until the database changes (on
    SQLite; any commit by anyone) or ``IDLE_RECHECK_SECONDS`` (5 minutes) pass: its
    anti-join over every file was most of an unchanged rescan. Work you put off without
    a commit (a backoff) is retried within those 5 minutes.
    """


@contribution()
def file_user_data(
    files: Sequence[FileRef], kernel: Kernel
) -> Mapping[int, Mapping[str, int]] | None:
    """Count what users made for each file (tags, favourites): ``{file_id: {what: n}}``.

    Called by ``imageapi cleanup`` for the missing files it lists and for a present
    duplicate it would replace, so an operator sees what a purge would lose. Leave out
    files with nothing; derived data (EXIF, thumbnails) does not count. May be async.
    """


# --- decisions (firstresult) ---------------------------------------------------------------------


@decision()
def render(file: FileRef, size: str, format: str, kernel: Kernel) -> RenderResult | None:
    """Produce a derived image of ``file`` (e.g. ``size="thumb"``, ``format="jpeg"``).

    Called by ``GET /image`` when the client sends ``size``. The first non-None
    ``RenderResult`` wins; return None for a size or format you do not handle. Raise
    ``InvalidParameter`` for a value you own but cannot honour. May be async; synchronous
    implementations run in a worker thread.

    The answer is reused for the same (library, path, size, format) by the process that
    got it until the next commit (any process's), or until its file is gone: return a
    result that depends only on the file and the database, and replace a rendition by
    renaming over it (a client then gets the old or the new file whole).
    """


@decision(sync=True)
def date_taken_table(kernel: Kernel) -> FromClause | None:
    """Offer the capture date of files as SQL, for features that group or sort by it.

    Return a table or subquery with the columns ``file_id`` (→ ``files.id``),
    ``taken_at`` (naive local wall-clock ``DateTime`` as the camera recorded it) and
    ``utc_offset_minutes`` (nullable). Called when a consumer (memories, a sort) builds a
    query; the first non-None answer wins. Consumers fall back to the file's mtime when
    no plugin answers. Synchronous only.
    """


@decision()
def resolve_location(lat: float, lon: float, kernel: Kernel) -> str | None:
    """Describe a GPS position in words for people and LLMs ("Home — near Cambridge, MA").

    Called when a feature needs a place name for coordinates (the insights plugin, for a
    photo's context and its ``reverse_geocode`` tool). The first non-None string wins:
    the most specific source goes first (a personal place, ``tryfirst``), a general
    geocoder last. An implementation may refine what the ones after it say: it calls
    ``kernel.hooks.resolve_location(lat, lon, after=self)`` to get their answer ("Home"
    from a places service + "near Cambridge, MA" from the geocoder). Return None when
    you know nothing of the place or your service is down (never raise for that: log it
    and let the next source answer). May be async; a synchronous implementation runs in
    a worker thread.
    """
