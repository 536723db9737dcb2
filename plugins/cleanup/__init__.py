"""cleanup: ``imageapi cleanup``, the two-phase check of the index against the disk.

Phase 1 (``missing``) matches every row marked missing by content hash against the
present files of all libraries and re-points the matches through the kernel's move path
(``kernel.moves``: the row, its id and so every plugin's data follow); what stays
unmatched is listed with the user data plugins hold for it (``file_user_data``) and can
be purged once it has been missing long enough. Phase 2 (``filetypes``) reads the magic
bytes of every present file and reports the ones whose extension lies, renaming them
with ``--fix``. Nothing changes without ``--apply``.

A plugin of its own rather than kernel code: it only uses what the kernel offers every
plugin (the index, the move path, the hooks), and an operator who never wants it can
switch it off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def cli_commands(cli: click.Group) -> None:
    from .command import cleanup

    cli.add_command(cleanup)
