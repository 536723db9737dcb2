"""a test plugin's migration

Revision ID: mig_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "mig_0001"
down_revision = None
branch_labels = ("mig",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mig_notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text)
    )


def downgrade() -> None:
    op.drop_table("mig_notes")
