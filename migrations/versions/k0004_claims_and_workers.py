"""kernel: claims (leases on units of background work) and workers (heartbeats)

Revision ID: k0004
Revises: k0003
Create Date: 2026-12-10

Several worker processes on several machines share one PostgreSQL: a unit of work (a
file for a plugin, a file to hash) is claimed by one of them with a lease it renews,
and every process records a heartbeat that ``GET /health`` lists. SQLite (one machine,
one background process) creates the tables and never writes them.
"""

import sqlalchemy as sa
from alembic import op

revision = "k0004"
down_revision = "k0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("claims_owner", "claims", ["owner"])
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("claims_owner", table_name="claims")
    op.drop_table("claims")
