"""thumbnails: what was rendered from which content, or why it could not be

Revision ID: thumbnails_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "thumbnails_0001"
down_revision = None
branch_labels = ("thumbnails",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thumbnails",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("source_size", sa.BigInteger, nullable=False),
        sa.Column("source_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("sizes", sa.Text, nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # `imageapi thumbnails rebuild --failed` and the status counts read by status.
    op.create_index("ix_thumbnails_status", "thumbnails", ["status"])


def downgrade() -> None:
    op.drop_table("thumbnails")
