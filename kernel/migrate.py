"""Alembic, one migration branch per plugin, each with its own version table.

Separate version tables (``alembic_version_kernel``, ``alembic_version_tags``, ...) mean a
disabled plugin's history is never consulted: its tables are left exactly as they were,
and switching it on again upgrades just that branch.

Alembic is imported by the functions that use it, not with this module: importing it
costs 10 MB and 0.1-0.2 s. Serving processes never migrate, and a command whose database
is already at head learns so from :func:`at_head` without importing it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

import migrations
from kernel.db import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

ENVIRONMENT_DIR = Path(migrations.__file__).parent
KERNEL_BRANCH = "kernel"
KERNEL_VERSIONS = ENVIRONMENT_DIR / "versions"


@dataclass(frozen=True)
class Branch:
    """A migration line: the kernel's or one plugin's."""

    name: str
    versions: Path

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"


def _alembic_config(branch: Branch) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ENVIRONMENT_DIR))
    cfg.set_main_option("version_locations", str(branch.versions))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["version_table"] = branch.version_table
    return cfg


def head(branch: Branch) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(branch)).get_current_head()


def current(db: Database, branch: Branch) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": branch.version_table}
        )
        return context.get_current_revision()


def _declared_head(versions: Path) -> str | None:
    """The one head of a version folder, read from its files' ``revision`` and
    ``down_revision`` literals without importing them; None when unsure (a merge, a
    computed value, a file that does not parse): then alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.glob("*.py"):
        try:
            tree = ast.parse(script.read_bytes())
        except (OSError, SyntaxError, ValueError):
            return None
        found = {
            target.id: node.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision")
        }
        try:
            revision = ast.literal_eval(found["revision"])
            parent = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, TypeError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        revisions.add(revision)
        parents.update([parent] if parent else [])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_head(db: Database, branch: Branch) -> bool:
    """Whether the branch's version table holds exactly its head, known without alembic."""
    head = _declared_head(branch.versions)
    if head is None:
        return False
    versions = sa.table(branch.version_table, sa.column("version_num"))
    with db.engine.connect() as connection:
        if not sa.inspect(connection).has_table(branch.version_table):
            return False
        return connection.execute(versions.select()).scalars().all() == [head]


def upgrade(db: Database, branch: Branch, revision: str = "head") -> None:
    """Upgrade one branch; a no-op (Alembic not even loaded) when already at head."""
    if revision == "head" and at_head(db, branch):
        return
    from alembic import command

    _run(db, branch, lambda cfg: command.upgrade(cfg, revision))


def downgrade(db: Database, branch: Branch, revision: str = "base") -> None:
    from alembic import command

    _run(db, branch, lambda cfg: command.downgrade(cfg, revision))


def _run(db: Database, branch: Branch, action) -> None:  # type: ignore[no-untyped-def]
    cfg = _alembic_config(branch)
    with db.write() as connection:
        cfg.attributes["connection"] = connection
        action(cfg)
