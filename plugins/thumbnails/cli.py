"""``imageapi thumbnails rebuild [--failed]`` and ``imageapi thumbnails status``.

Both open the database with only this plugin enabled: a rebuild needs the index and
the state table, not the hooks of every other plugin. They may run beside a server;
renditions are replaced atomically, so clients see the old file or the new one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

import click

from kernel.cli import command_kernel

from . import Plugin, store
from .worker import Outcome

NAME = "thumbnails"
CHUNK = 500


def open_plugin() -> Plugin:
    """This plugin in a kernel of its own (only it enabled, the same default library as
    ``imageapi serve``), with its settings and folders as the server would have them."""
    kernel = command_kernel(only=[NAME], migrate=True)
    plugin = kernel.plugin(NAME)
    if not isinstance(plugin, Plugin):  # another package registered under our name
        raise click.ClickException(f"plugin {NAME!r} is not this thumbnails plugin")
    return plugin


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@click.group("thumbnails")
def thumbnails_group() -> None:
    """Thumbnails, previews and animated GIFs (the thumbnails plugin)."""


@thumbnails_group.command("rebuild")
@click.option("--failed", "failed_only", is_flag=True, help="Only files that failed before.")
def rebuild(failed_only: bool) -> None:
    """Render the ingest renditions of every file again (or of the failed ones)."""
    plugin = open_plugin()
    kernel = plugin.kernel
    thumbnailer = plugin.start()
    ids = store.rebuild_targets(kernel.db, failed_only=failed_only)
    window = thumbnailer.workers * 2
    done = failed = 0
    pending: set[Future[Outcome]] = set()

    def settle(finished: set[Future[Outcome]]) -> None:
        nonlocal done, failed
        for future in finished:
            if future.exception() is not None or future.result().error:
                failed += 1
            else:
                done += 1
        bar.update(len(finished))

    try:
        with click.progressbar(length=len(ids), label="thumbnails", file=sys.stderr) as bar:
            for chunk in _chunks(ids):
                refs = kernel.index.get_many(chunk)
                bar.update(len(chunk) - len(refs))  # rows of libraries no longer configured
                for ref in refs:
                    variants = thumbnailer.pregenerated(ref)
                    if not variants:
                        bar.update(1)
                        continue
                    pending.add(thumbnailer.ensure(ref, variants, force=True))
                    if len(pending) >= window:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        settle(finished)
            settle(wait(pending).done)
    finally:
        plugin.stop()
        kernel.db.dispose()
    click.echo(f"{done} rendered, {failed} failed")
    if failed:
        click.echo("see the reasons with: imageapi thumbnails status --failed")


@thumbnails_group.command("status")
@click.option("--failed", "show_failed", is_flag=True, help="List failed files and why.")
def status(show_failed: bool) -> None:
    """How many files have their renditions, failed, or wait in the backlog."""
    kernel = open_plugin().kernel
    try:
        counts = store.counts(kernel.db)
        click.echo(
            f"done {counts.get(store.DONE, 0)}, failed {counts.get(store.FAILED, 0)},"
            f" not yet rendered {counts['none']}"
        )
        if show_failed:
            for library_id, rel_path, reason in store.failures(kernel.db):
                click.echo(f"{library_id}:{rel_path}\t{reason}")
    finally:
        kernel.db.dispose()
