"""kernel: users and the file index

Revision ID: k0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "k0001"
down_revision = None
branch_labels = ("kernel",)
depends_on = None

# Paths compare byte-wise so prefix range scans ("everything under a/") use the index.
PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("library_id", sa.Integer, nullable=False),
        sa.Column("rel_path", PATH, nullable=False),
        sa.Column("parent_dir", PATH, nullable=False),
        sa.Column("name", PATH, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(8), nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("status", sa.String(8), nullable=False, server_default="present"),
        sa.Column("error", sa.Text),
        sa.Column("discovered_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("hashed_at", sa.Float),
        sa.Column("missing_since", sa.Float),
        sa.UniqueConstraint("library_id", "rel_path", name="uq_files_library_path"),
        sa.CheckConstraint("status IN ('present', 'missing')", name="ck_files_status"),
        sa.CheckConstraint("media_type IN ('photo', 'video')", name="ck_files_media_type"),
    )
    op.create_index("ix_files_parent", "files", ["library_id", "parent_dir", "name"])
    op.create_index("ix_files_name", "files", ["library_id", "name"])
    op.create_index("ix_files_content_hash", "files", ["content_hash"])
    op.create_index("ix_files_backlog", "files", ["status", "content_hash"])
    # Covers the listing's own WHERE (present, not failed, under a folder), so counting a
    # folder's files never reads the table.
    op.create_index("ix_files_listed", "files", ["library_id", "status", "error", "rel_path"])


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("users")
