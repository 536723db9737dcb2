"""exif: read every video again, for its display rotation

Revision ID: exif_0003
Revises: exif_0002

Earlier rows took a video's orientation from the legacy ``rotate`` tag only, which
ffmpeg 5 and later no longer set, so phone clips were stored as unrotated. Clearing the
recorded content hash puts each video back in the backlog; its row (date, GPS) stays
in place until the new one replaces it.
"""

from alembic import op

revision = "exif_0003"
down_revision = "exif_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE image_exif SET content_hash = ''"
        " WHERE file_id IN (SELECT id FROM files WHERE media_type = 'video')"
    )


def downgrade() -> None:
    pass  # the rows read again are right under the old code too
