"""exif: read again the photos the new readers may answer differently

Revision ID: exif_0004
Revises: exif_0003

The extractor now reads the records of cameras from before EXIF (Canon CIFF, APP12
picture info), maker notes (a Reconyx trail camera's date and make, Canon's and Casio's
ISO), XMP properties under any namespace prefix, XMP capture dates ahead of EXIF's
DateTime, and asks exiftool about files none of its readers opens. Photos whose row
could change are put back in the backlog (their recorded content hash cleared): those
dated by DateTimeDigitized, DateTime, a Unix timestamp, the file name or the mtime, and
Canon and Casio photos without an ISO. Each keeps its row until the new one replaces
it; photos dated by DateTimeOriginal or XMP, and videos, are left alone.
"""

from alembic import op

revision = "exif_0004"
down_revision = "exif_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE image_exif SET content_hash = ''"
        " WHERE file_id IN (SELECT id FROM files WHERE media_type = 'photo')"
        " AND (date_source IN ('DateTimeDigitized', 'DateTime', 'unix_timestamp',"
        " 'filename', 'mtime')"
        " OR (iso IS NULL AND (lower(camera_make) LIKE 'canon%'"
        " OR lower(camera_make) LIKE 'casio%')))"
    )


def downgrade() -> None:
    pass  # rows read again are valid under the old schema; nothing to undo
