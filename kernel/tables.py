"""SQLAlchemy Core descriptions of the kernel's tables (the schema itself is in migrations/).

Plugins reference ``files`` in their queries (joins, EXISTS filters, backlog anti-joins)
and point their foreign keys at ``files.id``.
"""

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("token_version", Integer, nullable=False, server_default="0"),
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("library_id", Integer, nullable=False),
    Column("rel_path", Text, nullable=False),
    Column("parent_dir", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("media_type", String(8), nullable=False),
    Column("content_hash", String(64)),
    Column("status", String(8), nullable=False),
    Column("error", Text),
    Column("discovered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("hashed_at", Float),
    Column("missing_since", Float),
)


def file_key_column() -> Column[int]:
    """``file_id`` as the primary key of a plugin table holding one row per file
    (EXIF, thumbnail state, HLS job): it follows the kernel's row and goes with it."""
    return Column(
        "file_id",
        Integer,
        ForeignKey(files.c.id, ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


# Scale-out bookkeeping (used only on PostgreSQL; see kernel/claims.py and kernel/cluster.py).
claims = Table(
    "claims",
    metadata,
    Column("queue", String(64), primary_key=True),
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("owner", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("roles", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)
