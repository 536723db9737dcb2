"""insights: photo_insights, every generated insight with its transcript and rating

Revision ID: insights_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "insights_0001"
down_revision = None
branch_labels = ("insights",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photo_insights",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("library_id", sa.Integer, nullable=False),
        sa.Column("rel_path", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("training_messages", sa.Text),
        sa.Column("rating", sa.String(8)),
        sa.Column("rated_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    # A file's history, newest first; and at most one current insight per file.
    op.create_index(
        "ix_photo_insights_file", "photo_insights", ["library_id", "rel_path", "created_at"]
    )
    op.create_index(
        "uq_photo_insights_current",
        "photo_insights",
        ["library_id", "rel_path"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )
    op.create_index("ix_photo_insights_rated", "photo_insights", ["rating", "id"])


def downgrade() -> None:
    op.drop_table("photo_insights")
