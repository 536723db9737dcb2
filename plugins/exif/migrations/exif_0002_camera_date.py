"""exif: camera make and model indexes carry the date taken; a (file_id, date_taken) index

Revision ID: exif_0002
Revises: exif_0001

"My iPhone's photos since 2015" is a camera and a date range. With the date in the
camera's index entry both conditions are one index range, and counting 13,700 matches
reads no table rows. A camera alone still uses the same index (its first column).

Joining a folder's files to their dates (a folder listed by date, memories) reads
``ix_image_exif_file_date`` instead of each file's whole EXIF row: 3.8 ms instead of 5.9
for the 6,400 files of a year's folder.

On PostgreSQL the indexes a search reads also carry ``file_id`` (SQLite's carry the
rowid, which is ``file_id``, already), so a camera, date or GPS search is answered from
the index alone, and the date index is in the (date_taken, file_id) order the date
sorts walk.
"""

import sqlalchemy as sa
from alembic import op

revision = "exif_0002"
down_revision = "exif_0001"
branch_labels = None
depends_on = None


GPS_COLUMNS = ["gps_lat", "gps_lon", "gps_x", "gps_y", "gps_z"]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    id_column = ["file_id"] if postgresql else []
    for column in ("camera_make", "camera_model"):
        short = column.removeprefix("camera_")
        op.drop_index(f"ix_image_exif_{short}", table_name="image_exif")
        op.create_index(
            f"ix_image_exif_{short}_date",
            "image_exif",
            [sa.text(f"lower({column})"), "date_taken", *id_column],
        )
    op.create_index("ix_image_exif_file_date", "image_exif", ["file_id", "date_taken"])
    if postgresql:
        op.drop_index("ix_image_exif_date_taken", table_name="image_exif")
        op.create_index("ix_image_exif_date_taken", "image_exif", ["date_taken", "file_id"])
        op.drop_index("ix_image_exif_gps", table_name="image_exif")
        op.create_index(
            "ix_image_exif_gps", "image_exif", GPS_COLUMNS, postgresql_include=["file_id"]
        )


def downgrade() -> None:
    op.drop_index("ix_image_exif_file_date", table_name="image_exif")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_image_exif_gps", table_name="image_exif")
        op.create_index("ix_image_exif_gps", "image_exif", GPS_COLUMNS)
        op.drop_index("ix_image_exif_date_taken", table_name="image_exif")
        op.create_index("ix_image_exif_date_taken", "image_exif", ["date_taken"])
    for column in ("camera_make", "camera_model"):
        short = column.removeprefix("camera_")
        op.drop_index(f"ix_image_exif_{short}_date", table_name="image_exif")
        op.create_index(f"ix_image_exif_{short}", "image_exif", [sa.text(f"lower({column})")])
