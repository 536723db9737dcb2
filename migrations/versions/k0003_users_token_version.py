"""kernel: users.token_version, so a password change revokes the tokens issued before it

Revision ID: k0003
Revises: k0002
Create Date: 2026-11-30

A token carries the version current when it was issued (claim ``ver``; tokens from before
this column are version 0); changing the password increments it and the guard refuses
any token whose version is not the user's.
"""

import sqlalchemy as sa
from alembic import op

revision = "k0003"
down_revision = "k0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
