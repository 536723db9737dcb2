"""``imageapi insights export [--rated] [--output FILE]``: insights' transcripts as JSONL.

One line per insight: ``{"messages": [...], "rating", "insight_id", "file_path",
"library", "backend", "model", "title", "summary"}``, the messages in the OpenAI chat
format (images as ``data:`` URLs), which fine-tuning tools read. ``--rated`` keeps the
insights a user rated up or down; without it, every insight with a transcript.
"""

from __future__ import annotations

import sys
from typing import IO

import click
import msgspec

from kernel.cli import command_kernel

from . import store
from .messages import load, to_openai

NAME = "insights"


def export(db: object, out: IO[str], *, rated_only: bool) -> int:
    encoder = msgspec.json.Encoder()
    count = 0
    for row in store.for_export(db, rated_only=rated_only):  # type: ignore[arg-type]
        try:
            messages = load(row.training_messages)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        line = {
            "messages": [to_openai(m) for m in messages],
            "rating": row.rating,
            "insight_id": row.id,
            "file_path": row.rel_path,
            "library": row.library_id,
            "backend": row.backend,
            "model": row.model,
            "title": row.title,
            "summary": row.summary,
        }
        out.write(encoder.encode(line).decode() + "\n")
        count += 1
    return count


@click.group(NAME)
def insights_group() -> None:
    """LLM-written photo insights (the insights plugin)."""


@insights_group.command("export")
@click.option("--rated", "rated_only", is_flag=True, help="Only insights rated up or down.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    help="File to write (default: standard output).",
)
def export_command(rated_only: bool, output: str) -> None:
    """Write insights' chat transcripts as JSONL, for training."""
    kernel = command_kernel(only=[NAME], migrate=True)
    try:
        with click.open_file(output, "w", encoding="utf-8") as out:
            count = export(kernel.db, out, rated_only=rated_only)
    finally:
        kernel.db.dispose()
    click.echo(f"{count} insight(s) exported", file=sys.stderr)
