"""tags: tag_counts, each tagged file's number of tags, kept by triggers

Revision ID: tags_0002
Revises: tags_0001

The TagCount sorts walk an index on this table instead of counting ``tagged_photo`` per
file on every request. Triggers on ``tagged_photo`` keep it exact whoever writes —
the routes, a cascade from a deleted tag or file, another process.
"""

import sqlalchemy as sa
from alembic import op

revision = "tags_0002"
down_revision = "tags_0001"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER tagged_photo_counted AFTER INSERT ON tagged_photo BEGIN
        INSERT INTO tag_counts (file_id, tag_count) VALUES (NEW.file_id, 1)
        ON CONFLICT (file_id) DO UPDATE SET tag_count = tag_count + 1;
    END
    """,
    """
    CREATE TRIGGER tagged_photo_uncounted AFTER DELETE ON tagged_photo BEGIN
        UPDATE tag_counts SET tag_count = tag_count - 1 WHERE file_id = OLD.file_id;
        DELETE FROM tag_counts WHERE file_id = OLD.file_id AND tag_count <= 0;
    END
    """,
    """
    CREATE TRIGGER tagged_photo_moved AFTER UPDATE OF file_id ON tagged_photo
    WHEN NEW.file_id <> OLD.file_id BEGIN
        UPDATE tag_counts SET tag_count = tag_count - 1 WHERE file_id = OLD.file_id;
        DELETE FROM tag_counts WHERE file_id = OLD.file_id AND tag_count <= 0;
        INSERT INTO tag_counts (file_id, tag_count) VALUES (NEW.file_id, 1)
        ON CONFLICT (file_id) DO UPDATE SET tag_count = tag_count + 1;
    END
    """,
]
POSTGRESQL_TRIGGERS = [
    """
    CREATE FUNCTION tag_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE tag_counts SET tag_count = tag_count - 1 WHERE file_id = OLD.file_id;
            DELETE FROM tag_counts WHERE file_id = OLD.file_id AND tag_count <= 0;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO tag_counts (file_id, tag_count) VALUES (NEW.file_id, 1)
            ON CONFLICT (file_id) DO UPDATE SET tag_count = tag_counts.tag_count + 1;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER tagged_photo_counts AFTER INSERT OR DELETE OR UPDATE OF file_id
    ON tagged_photo FOR EACH ROW EXECUTE FUNCTION tag_counts_follow()
    """,
]


def upgrade() -> None:
    op.create_table(
        "tag_counts",
        sa.Column(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("tag_count", sa.Integer, nullable=False),
    )
    # One index per direction, so both sorts read ties in ascending file id.
    op.create_index("ix_tag_counts_asc", "tag_counts", ["tag_count", "file_id"])
    op.create_index("ix_tag_counts_desc", "tag_counts", [sa.text("tag_count DESC"), "file_id"])
    op.execute(
        "INSERT INTO tag_counts (file_id, tag_count)"
        " SELECT file_id, count(*) FROM tagged_photo GROUP BY file_id"
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tagged_photo_counts ON tagged_photo")
        op.execute("DROP FUNCTION tag_counts_follow()")
    else:
        for name in ("tagged_photo_counted", "tagged_photo_uncounted", "tagged_photo_moved"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("tag_counts")
