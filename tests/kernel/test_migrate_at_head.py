"""A database already at head is recognised without loading Alembic.

Every command migrates first, and Alembic costs 0.1-0.2 s and 10 MB to import; a command
on an up-to-date database (nearly every run) reads the version tables and the revision
files' literals instead. Anything it cannot be sure of goes through Alembic as before.
That a command at head does not load Alembic is checked in a fresh process by
``tests/integration/test_serving_footprint.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernel import Plugin, hookimpl, migrate
from kernel.testing import fresh_database_url, harness

FIXTURE_MIGRATIONS = Path(__file__).parent / "migrations_fixture"

SECOND_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "mig_0002"
down_revision = "mig_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("mig_notes", sa.Column("colour", sa.Text))


def downgrade() -> None:
    op.drop_column("mig_notes", "colour")
"""

MERGE_REVISION = """
revision = "mig_0003"
down_revision = ("mig_0001", "mig_0002")
"""


def migrating_plugin(versions: Path) -> type[Plugin[None]]:
    class Migrating(Plugin[None]):
        @staticmethod
        @hookimpl
        def migrations() -> Path:
            return versions

    return Migrating


@pytest.mark.db
def test_a_revision_added_later_is_applied_at_the_next_start(tmp_path):
    versions = tmp_path / "versions"
    shutil.copytree(FIXTURE_MIGRATIONS, versions)
    plugins = {"mig": migrating_plugin(versions)}
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path / "first", extra_plugins=plugins, database_url=url) as h:
            branch = next(b for b in h.kernel.migration_branches() if b.name == "mig")
            assert migrate.at_head(h.kernel.db, branch)
        (versions / "mig_0002_colour.py").write_text(SECOND_REVISION)
        assert not migrate.at_head(h.kernel.db, branch)
        with harness(tmp_path / "second", extra_plugins=plugins, database_url=url) as h:
            assert migrate.current(h.kernel.db, branch) == "mig_0002"
            assert migrate.at_head(h.kernel.db, branch)
            with h.kernel.db.write() as conn:
                conn.exec_driver_sql("INSERT INTO mig_notes (note, colour) VALUES ('a', 'b')")
            migrate.downgrade(h.kernel.db, branch, "mig_0001")  # behind head again
            assert not migrate.at_head(h.kernel.db, branch)


def test_revision_files_it_cannot_be_sure_of_leave_the_decision_to_alembic(tmp_path):
    versions = tmp_path / "versions"
    shutil.copytree(FIXTURE_MIGRATIONS, versions)
    (versions / "mig_0002_colour.py").write_text(SECOND_REVISION)
    assert migrate._declared_head(versions) == "mig_0002"
    (versions / "mig_0003_merge.py").write_text(MERGE_REVISION)  # a merge
    assert migrate._declared_head(versions) is None
    (versions / "mig_0003_merge.py").write_text('revision = "mig_" + "0003"\n')  # computed
    assert migrate._declared_head(versions) is None
    (versions / "mig_0003_merge.py").write_text("revision = (\n")  # does not parse
    assert migrate._declared_head(versions) is None
