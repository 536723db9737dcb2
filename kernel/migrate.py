"""Alembic, one migration branch per plugin, each with its own version table.

Separate version tables (``alembic_version_kernel``, ``alembic_version_tags``, ...) mean a
disabled plugin's history is never consulted: its tables are left exactly as they were,
and switching it on again upgrades just that branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from kernel.db import Database

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
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ENVIRONMENT_DIR))
    cfg.set_main_option("version_locations", str(branch.versions))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["version_table"] = branch.version_table
    return cfg


def head(branch: Branch) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(branch)).get_current_head()


def current(db: Database, branch: Branch) -> str | None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": branch.version_table}
        )
        return context.get_current_revision()


def upgrade(db: Database, branch: Branch, revision: str = "head") -> None:
    """Upgrade one branch; a no-op (no script loading) when already at head."""
    if revision == "head" and current(db, branch) == head(branch):
        return
    _run(db, branch, lambda cfg: command.upgrade(cfg, revision))


def downgrade(db: Database, branch: Branch, revision: str = "base") -> None:
    _run(db, branch, lambda cfg: command.downgrade(cfg, revision))


def _run(db: Database, branch: Branch, action) -> None:  # type: ignore[no-untyped-def]
    cfg = _alembic_config(branch)
    with db.write() as connection:
        cfg.attributes["connection"] = connection
        action(cfg)
