"""hello: the greetings table

Revision ID: hello_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "hello_0001"
down_revision = None
branch_labels = ("hello",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hello_greetings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("greeted_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hello_greetings")
