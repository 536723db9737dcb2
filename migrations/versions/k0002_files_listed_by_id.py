"""kernel: ix_files_listed_by_id, the listing's test of one file without the table

Revision ID: k0002
Revises: k0001
Create Date: 2026-11-24

A sort that walks a plugin's index (dates, tag counts) tests each file it meets against
the listing's WHERE; with this index that test reads a narrow index entry instead of the
file's whole row: the walk past 50,000 dated files takes 19 ms instead of 29 ms.
"""

from alembic import op

revision = "k0002"
down_revision = "k0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_files_listed_by_id", "files", ["id", "library_id", "status", "error", "media_type"]
    )


def downgrade() -> None:
    op.drop_index("ix_files_listed_by_id", table_name="files")
