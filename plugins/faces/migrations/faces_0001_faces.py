"""faces: persons and face_detections

Revision ID: faces_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "faces_0001"
down_revision = None
branch_labels = ("faces",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        # No foreign key: persons and face_detections point at each other; deleting a
        # face clears the covers naming it in the same transaction.
        sa.Column("cover_face_id", sa.Integer),
        sa.Column("entity_id", sa.Integer),
        sa.Column("created_from_tag", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # "Åsa" and "ÅSA" are one person: the Unicode case-folded name is unique.
    op.create_index("uq_persons_name_key", "persons", ["name_key"], unique=True)
    op.create_table(
        "face_detections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("library_id", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("rel_path", sa.Text, nullable=False),
        sa.Column("bbox_x", sa.Float),
        sa.Column("bbox_y", sa.Float),
        sa.Column("bbox_w", sa.Float),
        sa.Column("bbox_h", sa.Float),
        sa.Column("embedding", sa.LargeBinary),
        sa.Column("confidence", sa.Float),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("persons.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("model_version", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("source IN ('auto', 'manual')", name="ck_face_source"),
        sa.CheckConstraint("status IN ('detected', 'no_faces', 'failed')", name="ck_face_status"),
        # A marker row says "scanned, nothing here" or "scanned, failed": no box, no vector.
        sa.CheckConstraint(
            "(status = 'detected' AND bbox_x IS NOT NULL AND bbox_y IS NOT NULL"
            " AND bbox_w IS NOT NULL AND bbox_h IS NOT NULL AND embedding IS NOT NULL)"
            " OR (status <> 'detected' AND bbox_x IS NULL AND bbox_y IS NULL"
            " AND bbox_w IS NULL AND bbox_h IS NULL AND embedding IS NULL"
            " AND person_id IS NULL)",
            name="ck_face_marker_empty",
        ),
    )
    # already scanned? / faces of a photo; the backlog's anti-join probes it per file.
    op.create_index("ix_face_hash", "face_detections", ["content_hash", "status"])
    # a person's faces and photos (GET /persons/{id}/photos, ?person_ids=).
    op.create_index("ix_face_person", "face_detections", ["person_id", "content_hash"])


def downgrade() -> None:
    op.drop_table("face_detections")
    op.drop_table("persons")
