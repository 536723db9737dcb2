"""SQLAlchemy Core descriptions of the tags plugin's tables (the schema is in migrations/).

Tags are keyed to the kernel's file row (``files.id``), not to a path: a file that goes
missing keeps its row, so its tags are still there when it comes back.
"""

import unicodedata

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table

from kernel.tables import files

metadata = MetaData()

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False, unique=True),  # name_key(name)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

tagged_photo = Table(
    "tagged_photo",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tag_id", Integer, ForeignKey(tags.c.id, ondelete="CASCADE"), nullable=False),
    Column("file_id", Integer, ForeignKey(files.c.id, ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
)


def name_key(name: str) -> str:
    """The form two tag names are compared in: NFC, Unicode case-folded."""
    return unicodedata.normalize("NFC", name).casefold()


# Each tagged file's number of tags; kept by triggers on tagged_photo (migration tags_0002).
tag_counts = Table(
    "tag_counts",
    metadata,
    Column("file_id", Integer, ForeignKey(files.c.id, ondelete="CASCADE"), primary_key=True),
    Column("tag_count", Integer, nullable=False),
)
