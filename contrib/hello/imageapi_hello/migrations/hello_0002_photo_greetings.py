"""hello: how many times each photo was greeted

Revision ID: hello_0002
Revises: hello_0001

One row per greeted file, keyed to the kernel's file row (it goes when the file's row
goes). The index on (times, file_id) is the MostGreeted sort's: with many matches the
kernel walks it in order and stops when the page is full.
"""

import sqlalchemy as sa
from alembic import op

revision = "hello_0002"
down_revision = "hello_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hello_photo_greetings",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("times", sa.Integer, nullable=False),
        sa.Column("last_greeted_at", sa.Float, nullable=False),
    )
    op.create_index("ix_hello_photo_greetings_times", "hello_photo_greetings", ["times", "file_id"])


def downgrade() -> None:
    op.drop_table("hello_photo_greetings")
