"""exif: the image_exif table

Revision ID: exif_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "exif_0001"
down_revision = None
branch_labels = ("exif",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_exif",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("extracted_at", sa.Float, nullable=False),
        sa.Column("camera_make", sa.Text),
        sa.Column("camera_model", sa.Text),
        sa.Column("lens", sa.Text),
        sa.Column("software", sa.Text),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("orientation", sa.SmallInteger),
        sa.Column("gps_lat", sa.Float),
        sa.Column("gps_lon", sa.Float),
        sa.Column("gps_alt", sa.Float),
        sa.Column("gps_x", sa.Float),
        sa.Column("gps_y", sa.Float),
        sa.Column("gps_z", sa.Float),
        sa.Column("focal_length", sa.Float),
        sa.Column("aperture", sa.Float),
        sa.Column("exposure_time", sa.Text),
        sa.Column("exposure_seconds", sa.Float),
        sa.Column("iso", sa.Integer),
        sa.Column("flash", sa.Boolean),
        sa.Column("date_taken", sa.DateTime),
        sa.Column("utc_offset_minutes", sa.SmallInteger),
        sa.Column("date_source", sa.String(32)),
        sa.Column("taken_utc", sa.DateTime),
        sa.Column("taken_md", sa.SmallInteger),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_image_exif_status"),
    )
    # Case-insensitive equality searches use lower(...) on both sides.
    op.create_index("ix_image_exif_make", "image_exif", [sa.text("lower(camera_make)")])
    op.create_index("ix_image_exif_model", "image_exif", [sa.text("lower(camera_model)")])
    op.create_index("ix_image_exif_lens", "image_exif", [sa.text("lower(lens)")])
    # Wall-clock dates (ISO dates, sorts), instants (Unix timestamps), memories' day key.
    op.create_index("ix_image_exif_date_taken", "image_exif", ["date_taken"])
    op.create_index("ix_image_exif_taken_utc", "image_exif", ["taken_utc"])
    op.create_index("ix_image_exif_taken_md", "image_exif", ["taken_md"])
    # The radius search: a latitude range, longitude inside it, and the unit vector for
    # the exact distance test, all read from the index without touching the table.
    op.create_index(
        "ix_image_exif_gps", "image_exif", ["gps_lat", "gps_lon", "gps_x", "gps_y", "gps_z"]
    )


def downgrade() -> None:
    op.drop_table("image_exif")
