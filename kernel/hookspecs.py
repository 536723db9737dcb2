"""The plugin API of imageapi: every hook a plugin may implement.

Every hook receives ``kernel`` (a ``kernel.core.Kernel``) among its arguments; like any
pluggy hook, an implementation may accept only the arguments it needs. Implementations
may be ``async def`` wherever a spec says so; the kernel's dispatcher awaits them.

Three ways results combine:

* **notification** hooks (``on_*``, ``drain_backlog``): every implementation runs; one
  raising or timing out is logged with its plugin's name and the others still run.
  Synchronous implementations run in a worker thread, so they may block on I/O.
* **contribution** hooks (``routes``, ``tools``, ``search_filters``, ...): every
  implementation runs and the non-None results are collected into a list. An exception
  propagates (a broken contribution is a bug the operator must see).
* **decision** hooks (``render``): ``firstresult`` — implementations run in order and
  the first non-None answer wins; async implementations are awaited before deciding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.markers import hookspec

if TYPE_CHECKING:
    import click
    import msgspec
    from sqlalchemy import FromClause

    from kernel.core import Kernel
    from kernel.types import FileRef, RenderResult, SearchFilter, SearchQuery, SearchSort, Tool


# --- declarations: called once while the plugin manager is built ------------------------


@hookspec
def plugin_settings() -> type[msgspec.Struct] | None:
    """Declare the ``msgspec.Struct`` that validates this plugin's ``plugins.toml`` section.

    Called once per plugin at start-up, before anything else. The section
    ``[plugins.NAME]`` minus its ``enabled`` key is decoded into this type; an unknown key
    or a wrong type stops start-up with a message naming the plugin and the key. The
    decoded value is available as ``kernel.settings_for(NAME)``. Return None (or do not
    implement) for a plugin without settings; then any key but ``enabled`` is an error.
    Synchronous only.
    """


@hookspec
def migrations() -> Path | None:
    """Return the folder holding this plugin's Alembic revisions (its own branch).

    Called once per enabled plugin at start-up, after the kernel's own migrations; the
    kernel upgrades each plugin's branch to its head in its own version table
    (``alembic_version_NAME``), so a disabled plugin's tables and history are left alone.
    Synchronous only.
    """


@hookspec
def cli_commands(cli: click.Group) -> None:
    """Add ``click`` commands or groups to the ``imageapi`` command line.

    Called once when the CLI starts, with the root group; implementations call
    ``cli.add_command(...)``. Synchronous only.
    """


# --- lifecycle -----------------------------------------------------------------------------


@hookspec
def on_startup(kernel: Kernel) -> None:
    """Start-up notification: migrations have run and the app is about to serve.

    Called once per app start, in the server's event loop, before the first request and
    before the first scan. Start background tasks here (keep a handle; stop them in
    ``on_shutdown``). Notification semantics; may be async.
    """


@hookspec
def on_shutdown(kernel: Kernel) -> None:
    """Shutdown notification: the server is stopping; release what ``on_startup`` took.

    Called once, after the last request. Notification semantics; may be async.
    """


# --- contributions ---------------------------------------------------------------------------


@hookspec
def routes(kernel: Kernel) -> Sequence[Any] | None:
    """Return Litestar route handlers, Routers or Controllers to mount on the app.

    Called once while the app is built. Results are collected and flattened. Every route
    requires a valid bearer token unless its handler sets ``opt={"public": True}``.
    Handlers may declare ``kernel: Kernel`` and ``user: User`` parameters (dependencies
    the kernel provides). Synchronous only.
    """


@hookspec
def tools(kernel: Kernel) -> Sequence[Tool] | None:
    """Return LLM-callable tools (``kernel.types.Tool``) this plugin offers.

    Called when the kernel builds its tool registry (once per app). Results are collected
    and flattened; two tools with the same name stop start-up. Synchronous only (the
    tools' own ``call`` is async).
    """


@hookspec
def search_filters(query: SearchQuery, kernel: Kernel) -> SearchFilter | None:
    """Contribute WHERE clauses to ``GET /photos`` from the query parameters you understand.

    Called once per listing request. Return a ``SearchFilter`` naming the parameters you
    consumed (even if they added no clause), or None when none of yours are present.
    Raise ``kernel.types.InvalidParameter`` for a bad value (the client gets a 400 naming
    it). Results are collected; a parameter no plugin consumed is a 400. Synchronous only
    (it builds SQL, it does not run it). All clauses are ANDed into one COUNT and one
    page query: give ``where`` as a set (``files.id IN (SELECT ...)`` on your index) and,
    when the page may walk another index row by row, the same test as ``probe`` (a
    correlated EXISTS) — see ``SearchFilter``.
    """


@hookspec
def search_sorts(kernel: Kernel) -> Sequence[SearchSort] | None:
    """Offer named sorts (``sort=NAME``) for ``GET /photos``.

    Called once per app build. Results are collected and flattened; a name offered twice
    (or one of the kernel's NameAsc / NameDesc / Shuffle) stops start-up. Synchronous
    only. Each part of a sort is called per request with the filtered select, the query
    and a ``SortPlan`` (the total, and whether to walk an index or to sort): see
    ``SearchSort`` and ``kernel.listing.drive_from`` / ``walk_index``.
    """


@hookspec
def file_extras(
    files: Sequence[FileRef], user_id: int | None, kernel: Kernel
) -> Mapping[int, Mapping[str, Any]] | None:
    """Add fields to the JSON of many files at once (listing, metadata).

    Called once per response with the page of files; return ``{file_id: {field: value}}``
    (batch your query: one per call, not one per file). Collected; the mappings of all
    plugins are merged into each file's entry (a later plugin's key overwrites an
    earlier one's). Synchronous (runs in a worker thread) or async.
    """


# --- ingest (notification) -------------------------------------------------------------------


@hookspec
def on_file_discovered(file: FileRef, kernel: Kernel) -> None:
    """A media file appeared in the index (new path, or a missing one came back).

    Called by the scanner or watcher after the row is committed, before it is hashed
    (``file.content_hash`` is None). Notification semantics; may be async. Heavy work
    belongs in ``on_hashed`` or ``drain_backlog``.
    """


@hookspec
def on_file_changed(file: FileRef, kernel: Kernel) -> None:
    """An indexed file's size or mtime changed; its hash was cleared and will be recomputed.

    Called after the row is committed. Invalidate derived data here. Notification
    semantics; may be async.
    """


@hookspec
def on_hashed(file: FileRef, content_hash: str, kernel: Kernel) -> None:
    """A file's blake3 content hash was computed and committed.

    Called once per (file, content) after hashing, with the magic bytes confirmed as
    media. This is where ingest work (thumbnails, EXIF, ...) starts. Notification
    semantics; may be async; the scanner awaits it (bounded by a timeout) before taking
    more files, so expensive implementations should hand work to their own bounded pool.
    """


@hookspec
def on_file_removed(file: FileRef, kernel: Kernel) -> None:
    """An indexed file vanished from disk; its row is kept and marked missing.

    Called after the row is committed. Delete derived files here; keep user data (tags,
    favorites) so a file that comes back finds them again. Notification semantics; may
    be async.
    """


@hookspec
def drain_backlog(kernel: Kernel, limit: int) -> int | None:
    """Catch up on files this plugin has not processed yet; the database is the queue.

    Called on every scanner tick (after the scan) with the most files an implementation
    should process in this call. Select your backlog with an anti-join against the
    ``files`` table, process up to ``limit``, commit, and return how many you processed.
    This is how a plugin catches up after a crash, or after it was switched off and on.
    Notification semantics (an error is logged and retried next tick); may be async.
    """


# --- decisions (firstresult) -----------------------------------------------------------------


@hookspec(firstresult=True)
def render(file: FileRef, size: str, format: str, kernel: Kernel) -> RenderResult | None:
    """Produce a derived image of ``file`` (e.g. ``size="thumb"``, ``format="jpeg"``).

    Called by ``GET /image`` when the client sends ``size``. The first non-None
    ``RenderResult`` wins; return None for a size or format you do not handle. Raise
    ``InvalidParameter`` for a value you own but cannot honour. May be async; synchronous
    implementations run in a worker thread.
    """


@hookspec(firstresult=True)
def date_taken_table(kernel: Kernel) -> FromClause | None:
    """Offer the capture date of files as SQL, for features that group or sort by it.

    Return a table or subquery with the columns ``file_id`` (→ ``files.id``),
    ``taken_at`` (naive local wall-clock ``DateTime`` as the camera recorded it) and
    ``utc_offset_minutes`` (nullable). Called when a consumer (memories, a sort) builds a
    query; the first non-None answer wins. Consumers fall back to the file's mtime when no
    plugin answers. Synchronous only.
    """
