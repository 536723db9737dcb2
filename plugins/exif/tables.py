"""SQLAlchemy Core description of ``image_exif`` (the schema itself is in migrations/).

One row per file, keyed to the kernel's file row and stamped with the content hash it
was read from: a row whose hash differs from the file's is stale, and a file with no
row for its current hash is the ingest backlog. Besides the EXIF fields the row keeps
three values derived at write time so searches stay plain indexed SQL on SQLite and
PostgreSQL alike:

* ``taken_utc``: the capture instant (``date_taken`` minus its offset; the wall time
  itself when the offset is unknown), compared with Unix timestamps and offset-bearing
  datetimes in ``date_from``/``date_to``;
* ``taken_md``: month * 100 + day of ``date_taken`` (1123 for 23 November), the
  "same day of the year" key that memories select on;
* ``gps_x``, ``gps_y``, ``gps_z``: the position as a unit vector, so a great-circle
  radius test is one dot product (see ``plugins.exif.geo``).
"""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from kernel.tables import file_key_column

metadata = MetaData()

image_exif = Table(
    "image_exif",
    metadata,
    file_key_column(),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(8), nullable=False),  # "ok" | "failed"
    Column("error", Text),
    Column("extracted_at", Float, nullable=False),
    Column("camera_make", Text),
    Column("camera_model", Text),
    Column("lens", Text),
    Column("software", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("orientation", SmallInteger),
    Column("gps_lat", Float),
    Column("gps_lon", Float),
    Column("gps_alt", Float),
    Column("gps_x", Float),
    Column("gps_y", Float),
    Column("gps_z", Float),
    Column("focal_length", Float),
    Column("aperture", Float),
    Column("exposure_time", Text),
    Column("exposure_seconds", Float),
    Column("iso", Integer),
    Column("flash", Boolean),
    Column("date_taken", DateTime),
    Column("utc_offset_minutes", SmallInteger),
    Column("date_source", String(32)),
    Column("taken_utc", DateTime),
    Column("taken_md", SmallInteger),
)
