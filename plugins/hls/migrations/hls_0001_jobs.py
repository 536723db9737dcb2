"""hls: one rendition job per video (the queue, its progress and its failures)

Revision ID: hls_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "hls_0001"
down_revision = None
branch_labels = ("hls",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hls_jobs",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source_size", sa.BigInteger, nullable=False),
        sa.Column("source_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.String(16)),
        sa.Column("out_key", sa.String(32)),
        sa.Column("duration", sa.Float),
        sa.Column("processed", sa.Float, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.Column("queued_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # The worker's pick: queued jobs, asked-for ones first.
    op.create_index("ix_hls_jobs_queue", "hls_jobs", ["status", "priority", "queued_at"])


def downgrade() -> None:
    op.drop_table("hls_jobs")
