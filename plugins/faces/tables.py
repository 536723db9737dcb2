"""SQLAlchemy Core descriptions of the faces plugin's tables (the schema is in migrations/).

Faces are keyed to the bytes (``content_hash``), not to a path: the same photo in a
second library (a backup mount) has its faces already, and no Apollo call is made for it.
``library_id``/``rel_path`` record where the photo was first seen, for people reading
the table. A photo with a row of any status counts as scanned; ``no_faces`` and
``failed`` rows are markers and carry no box and no embedding.
"""

import unicodedata

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

persons = Table(
    "persons",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False, unique=True),  # name_key(name)
    Column("cover_face_id", Integer),  # kept by the code: two tables pointing at each other
    Column("entity_id", Integer),
    Column("created_from_tag", Integer, nullable=False, default=0),
    Column("notes", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

face_detections = Table(
    "face_detections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("library_id", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("rel_path", Text, nullable=False),
    Column("bbox_x", Float),
    Column("bbox_y", Float),
    Column("bbox_w", Float),
    Column("bbox_h", Float),
    Column("embedding", LargeBinary),  # float32, little-endian; all zeros = never clusters
    Column("confidence", Float),
    Column("source", String(8), nullable=False),  # auto | manual
    Column("person_id", Integer, ForeignKey(persons.c.id, ondelete="SET NULL")),
    Column("status", String(8), nullable=False),  # detected | no_faces | failed
    Column("error", Text),  # why a failed marker failed
    Column("model_version", String(64)),
    Column("created_at", Float, nullable=False),
)


def name_key(name: str) -> str:
    """The form two person names are compared in: NFC, Unicode case-folded (SQLite's
    ``COLLATE NOCASE`` folds ASCII only, so the key is computed here)."""
    return unicodedata.normalize("NFC", name.strip()).casefold()
