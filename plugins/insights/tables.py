"""The ``photo_insights`` table (its schema is in ``migrations/``).

An insight belongs to a file by (library, path), as in the Rust server, with the content
hash it was written from: it survives a rescan, and a file edited since can be told
apart. Every generation is a new row; storing one sets ``is_current`` false on the
file's others (a partial unique index keeps one current row per file), so history and
ratings of older ones stay for training export. ``training_messages`` is the whole
transcript (``messages.Message`` list as JSON), which chat continuation replays.
"""

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

photo_insights = Table(
    "photo_insights",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("library_id", Integer, nullable=False),
    Column("rel_path", Text, nullable=False),
    Column("content_hash", String(64)),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("backend", String(16), nullable=False),  # "local" | "hybrid"
    Column("model", String(255), nullable=False),
    Column("is_current", Boolean, nullable=False),
    Column("training_messages", Text),
    Column("rating", String(8)),  # "up" | "down" | NULL
    Column("rated_at", Float),
    Column("created_at", Float, nullable=False),
)
