"""the ratings test plugin's table (tests/kernel/test_hooks_search.py)

Revision ID: rate_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "rate_0001"
down_revision = None
branch_labels = ("ratings",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_ratings",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("stars", sa.Integer, nullable=True),
    )
    op.create_index("ix_test_ratings_stars", "test_ratings", ["stars", "file_id"])


def downgrade() -> None:
    op.drop_table("test_ratings")
