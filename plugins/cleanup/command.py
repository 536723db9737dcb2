"""``imageapi cleanup``: both phases, a dry run unless ``--apply``, text or ``--json``."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

import click

from kernel.cli import command_kernel
from kernel.core import Kernel

from . import filetypes, missing

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w`` (s, m, h, d, w) as seconds."""
    found = _AGE.fullmatch(text.strip().lower())
    if not found:
        raise click.BadParameter(f"{text!r} is not an age like 30d, 12h or 2w")
    return float(found.group(1)) * _UNIT[found.group(2)]


def _data(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "no user data"


async def _run(kernel: Kernel, options: dict[str, Any], echo: Any) -> dict[str, Any]:
    apply, quiet = options["apply"], options["json"]
    verb = "" if apply else "would "
    result: dict[str, Any] = {"applied": apply}

    echo("Phase 1: missing files")
    report = await missing.examine(kernel)
    cutoff = time.time() - options["older_than"]
    old = [m for m in report.unmatched if m.missing_since <= cutoff]
    for match in report.matches:
        echo(
            f"  {match.missing.ref.rel_path} (library {match.missing.ref.library_id}) is at"
            f" {match.present.rel_path} (library {match.present.library_id}):"
            f" {verb}re-point, keeping {_data(match.missing.user_data)}"
        )
    for match in report.conflicts:
        echo(
            f"  {match.missing.ref.rel_path} is at {match.present.rel_path}, but that copy has"
            f" {_data(match.present_data)} of its own: left for you to settle"
        )
    for item in report.unmatched:
        days = (time.time() - item.missing_since) / 86400
        purge = options["purge_missing"] and item in old
        echo(
            f"  missing {item.ref.rel_path} (library {item.ref.library_id}) for {days:.1f} days,"
            f" {_data(item.user_data)}{f': {verb}purge' if purge else ''}"
        )
    if apply:
        await missing.repoint(kernel, report.matches)
        if options["purge_missing"] and old:
            await missing.purge(kernel, old)
    result["missing"] = {
        "repointed" if apply else "to_repoint": [m.to_json() for m in report.matches],
        "conflicts": [m.to_json() for m in report.conflicts],
        "unmatched": [m.to_json() for m in report.unmatched],
        "purged" if apply else "to_purge": (
            [m.to_json() for m in old] if options["purge_missing"] else []
        ),
    }

    echo("Phase 2: file types")
    bar = None if quiet else click.progressbar(length=1, label="  reading", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.length = total
            bar.update(done - bar.pos)

    findings = await asyncio.to_thread(filetypes.examine, kernel, progress)
    if bar is not None:
        bar.render_finish()
    fixable = [f for f in findings if f.suggested]
    if apply and options["fix"] and fixable:
        moved = await asyncio.to_thread(filetypes.fix, kernel, fixable)
        if moved:
            await kernel.hooks.on_files_moved(moved)
        await kernel.scanner.hash_backlog()
    for finding in findings:
        if finding.suggested is None:
            echo(f"  {finding.ref.rel_path}: not a photo or video, whatever its name says")
            continue
        action = (
            f"renamed to {finding.suggested}"
            if finding.renamed
            else f"not renamed: {finding.skipped}"
            if finding.skipped
            else f"{'would be ' if options['fix'] else ''}{finding.suggested}"
            + ("" if options["fix"] else " (--fix renames it)")
        )
        echo(f"  {finding.ref.rel_path} holds {finding.found}: {action}")
    result["types"] = [f.to_json() for f in findings]
    if not apply:
        echo("Dry run: nothing changed. Run again with --apply to act.")
    return result


@click.command("cleanup")
@click.option("--apply", is_flag=True, help="Act; without it, only report what would be done.")
@click.option("--fix", is_flag=True, help="Rename files whose bytes contradict their extension.")
@click.option("--purge-missing", is_flag=True, help="Delete rows missing longer than --older-than.")
@click.option(
    "--older-than",
    default="30d",
    show_default=True,
    help="With --purge-missing: how long a row must have been missing (s, m, h, d, w).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report on stdout.")
def cleanup(apply: bool, fix: bool, purge_missing: bool, older_than: str, as_json: bool) -> None:
    """Match missing files with their new places, purge long-missing ones, check file types.

    Safe while the server runs (SQLite or PostgreSQL): every change is a short
    transaction, and a row the server moved meanwhile is left where it is.
    """
    options = {
        "apply": apply,
        "fix": fix,
        "purge_missing": purge_missing,
        "older_than": parse_age(older_than),
        "json": as_json,
    }
    kernel = command_kernel(migrate=True)

    def echo(line: str) -> None:
        if not as_json:
            click.echo(line)

    async def run() -> dict[str, Any]:
        if apply:  # plugins act on the hooks fired here (derived files, renditions)
            await kernel.hooks.on_startup()
        try:
            return await _run(kernel, options, echo)
        finally:
            if apply:
                await kernel.hooks.on_shutdown()

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(result, indent=2))
