"""capture_dates (a test plugin): one capture date per file

Revision ID: capture_dates_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "capture_dates_0001"
down_revision = None
branch_labels = ("capture_dates",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_capture_dates",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("taken_at", sa.DateTime, nullable=False),
        sa.Column("utc_offset_minutes", sa.SmallInteger),
    )


def downgrade() -> None:
    op.drop_table("test_capture_dates")
