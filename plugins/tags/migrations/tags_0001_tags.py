"""tags: tags and the files that carry them

Revision ID: tags_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "tags_0001"
down_revision = None
branch_labels = ("tags",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # "Beach" and "beach" (and "Ålesund" and "ÅLESUND") are one tag: name_key is the
    # Unicode case-folded name, computed in Python because SQLite's lower() folds ASCII only.
    op.create_index("uq_tags_name_key", "tags", ["name_key"], unique=True)
    op.create_table(
        "tagged_photo",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "tag_id", sa.Integer, sa.ForeignKey("tags.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "file_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tag_id", "file_id", name="uq_tagged_photo_tag_file"),
    )
    # (tag_id, file_id) serves "files with tag X"; this one serves "tags of file Y".
    op.create_index("ix_tagged_photo_file", "tagged_photo", ["file_id", "tag_id"])


def downgrade() -> None:
    op.drop_table("tagged_photo")
    op.drop_table("tags")
