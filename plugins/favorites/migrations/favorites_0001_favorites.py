"""favorites: each user's favourite files

Revision ID: favorites_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "favorites_0001"
down_revision = None
branch_labels = ("favorites",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "favorites",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "file_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("user_id", "file_id", name="uq_favorites_user_file"),
    )
    # "my favourites, newest first" reads this index in order.
    op.create_index("ix_favorites_user_created", "favorites", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("favorites")
