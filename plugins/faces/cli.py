"""``imageapi faces status | retry-failed | rerun FOLDER``.

Each opens the database with only this plugin enabled (the same settings and
variables as the server). ``retry-failed`` and ``rerun`` may run beside a server: rows
are replaced in single transactions.
"""

from __future__ import annotations

import asyncio

import click
from sqlalchemy import select

from kernel.cli import command_kernel
from kernel.index import FILE_COLUMNS, under_folder
from kernel.tables import files

from . import NOT_CONFIGURED, Plugin, store
from .apollo import ApolloError
from .images import NoPicture

NAME = "faces"


def open_plugin() -> Plugin:
    kernel = command_kernel(only=[NAME], migrate=True)
    plugin = kernel.plugin(NAME)
    if not isinstance(plugin, Plugin):
        raise click.ClickException(f"plugin {NAME!r} is not this faces plugin")
    return plugin


@click.group("faces")
def faces_group() -> None:
    """Face detection through Apollo, and persons (the faces plugin)."""


@faces_group.command("status")
def status() -> None:
    """Photos scanned (with faces, without, failed), pending, and faces stored."""
    plugin = open_plugin()
    kernel = plugin.kernel
    with kernel.db.read() as conn:
        counts = store.counts(conn)
        pending = store.pending_count(conn, kernel.excluder)
    click.echo(f"apollo:     {plugin.settings.api_base_url or 'not configured (inert)'}")
    scanned = counts["with_faces"] + counts["no_faces"] + counts["failed"]
    click.echo(f"scanned:    {scanned} photos")
    click.echo(f"  faces:    {counts['with_faces']} photos, {counts['faces']} faces")
    click.echo(f"  no faces: {counts['no_faces']}")
    click.echo(f"  failed:   {counts['failed']}")
    click.echo(f"pending:    {pending}")


@faces_group.command("retry-failed")
def retry_failed() -> None:
    """Forget every failed detection: the photos go back into the backlog."""
    plugin = open_plugin()
    cleared = store.forget_failed(plugin.kernel.db)
    click.echo(f"{cleared} failed photos back in the backlog")


@faces_group.command("rerun")
@click.argument("folder", default="")
@click.option("--library", default=None, help="Library id or name (default: the first).")
def rerun(folder: str, library: str | None) -> None:
    """Detect every photo under FOLDER again (manual faces stay)."""
    plugin = open_plugin()
    if not plugin.configured:
        raise click.ClickException(NOT_CONFIGURED)
    kernel = plugin.kernel
    resolved = kernel.libraries.resolve(library, folder)
    with kernel.db.read() as conn:
        rows = conn.execute(
            select(*FILE_COLUMNS)
            .where(
                files.c.library_id == resolved.library.id,
                files.c.status == "present",
                files.c.media_type == "photo",
                files.c.content_hash.isnot(None),
                under_folder(resolved.rel_path, True),
                kernel.excluder.sql_clause(),
            )
            .order_by(files.c.id)
        ).all()
    refs = kernel.index.refs(rows)

    async def run() -> tuple[int, int]:
        pipeline = plugin.start()
        assert pipeline is not None
        done = failed = 0
        seen: set[str] = set()
        try:
            for ref in refs:
                if ref.content_hash in seen:
                    continue
                seen.add(ref.content_hash or "")
                try:
                    faces, version = await pipeline.detect(ref)
                except (ApolloError, NoPicture) as exc:
                    failed += 1
                    click.echo(f"{ref.rel_path}: {exc}", err=True)
                    continue
                if faces:
                    faces = await pipeline.autobind(ref, faces)
                await asyncio.to_thread(
                    store.store_detection, kernel.db, ref.library_id, ref.content_hash or "",
                    ref.rel_path, faces, model_version=version, replace_auto=True,
                )  # fmt: skip
                done += 1
        finally:
            await plugin.stop()
        return done, failed

    done, failed = asyncio.run(run())
    click.echo(f"{done} photos detected again, {failed} failed")
