"""The data of tests/benchmarks/million.py: small real JPEGs on disk, and rows bulk-loaded
with ``COPY`` into the real schema (files, EXIF, tags, favourites), each step recorded in
the database so that an interrupted or repeated run resumes."""

from __future__ import annotations

import io
import random
import struct
import time
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image
from search import CAMERAS, CITIES
from sqlalchemy import create_engine, make_url, text

from kernel.core import Kernel
from plugins.exif import store
from plugins.exif.model import ExifData

START = datetime(2010, 1, 1)
SPAN = 16 * 365 * 86400  # dates over sixteen years
STAMP = b"2010:01:01 00:00:00"  # the date in the template's EXIF, replaced per file
BATCH = 50_000


# --- the real library -----------------------------------------------------------------


def templates() -> list[bytes]:
    """A 16x16 JPEG per camera, its EXIF dates set to ``STAMP``."""
    out = []
    for make, model in CAMERAS:
        exif = Image.Exif()
        exif[0x010F], exif[0x0110], exif[0x0132] = make, model, STAMP.decode()
        exif.get_ifd(0x8769)[0x9003] = STAMP.decode()
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (120, 90, 60)).save(buffer, "JPEG", exif=exif.tobytes())
        out.append(buffer.getvalue())
    return out


def taken_at(n: int) -> datetime:
    return START + timedelta(seconds=random.Random(n).randrange(SPAN))


def make_library(root: Path, count: int) -> None:
    """``count`` small real JPEGs in year/month folders; each has its own date and a
    comment segment holding its number, so no two have the same content."""
    done = root / ".complete"
    if done.exists() and int(done.read_text()) == count:
        return
    print(f"writing {count} JPEGs into {root} ...", flush=True)
    shapes = templates()
    made: set[Path] = set()
    for n in range(count):
        taken = taken_at(n)
        folder = root / f"{taken.year}" / f"{taken.month:02d}"
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        body = shapes[n % len(shapes)].replace(STAMP, taken.strftime("%Y:%m:%d %H:%M:%S").encode())
        comment = f"imageapi {n}".encode()
        segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
        (folder / f"IMG_{n:06d}.jpg").write_bytes(body[:2] + segment + body[2:])
    done.write_text(str(count))


def database_url(admin_url: str, name: str, fresh: bool) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


class Steps:
    """Which generation steps are done, recorded in the database itself."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_steps (step text PRIMARY KEY)"))

    def done(self, step: str) -> bool:
        with self.engine.connect() as conn:
            query = text("SELECT 1 FROM bench_steps WHERE step = :s")
            return conn.execute(query, {"s": step}).first() is not None

    def forget(self, step: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM bench_steps WHERE step = :s"), {"s": step})

    def mark(self, step: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_steps VALUES (:s)"), {"s": step})


def copy_rows(kernel: Kernel, table: str, columns: list[str], rows: list[tuple]) -> None:
    """COPY ``rows`` into ``table`` through the kernel's own psycopg connection."""
    with kernel.db.write() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


FILE_COLUMNS = [
    "id", "library_id", "rel_path", "parent_dir", "name", "size", "mtime_ns", "media_type",
    "content_hash", "status", "discovered_at", "updated_at", "hashed_at",
]  # fmt: skip


def load_archive(kernel: Kernel, first_id: int, count: int) -> None:
    """``count`` files of the ``archive`` library (a video every 20th) with EXIF rows."""
    rng = random.Random(2)
    now = time.time()
    exif_columns: list[str] | None = None
    for start in range(0, count, BATCH):
        file_rows, exif_rows = [], []
        for n in range(start, min(start + BATCH, count)):
            file_id = first_id + n
            taken = taken_at(1_000_000 + n)
            folder = f"{taken.year}/{taken.month:02d}"
            video = n % 20 == 0
            name = f"A{n:07d}.{'mp4' if video else 'jpg'}"
            digest = f"{file_id:064x}"
            file_rows.append(
                (file_id, 2, f"{folder}/{name}", folder, name, 2_000_000 + n % 5000,
                 int(taken.timestamp() * 1e9), "video" if video else "photo", digest, "present",
                 now, now, now)
            )  # fmt: skip
            if video:
                continue
            make, model = CAMERAS[n % len(CAMERAS)]
            lat = lon = None
            if rng.random() < 0.6:
                lat, lon = CITIES[rng.randrange(len(CITIES))]
                lat, lon = lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5)
                lon = (lon + 180) % 360 - 180
            data = ExifData(
                camera_make=make, camera_model=model, width=6000, height=4000, orientation=1,
                gps_lat=lat, gps_lon=lon, iso=100, date_taken=taken,
                date_source="DateTimeOriginal", utc_offset_minutes=rng.choice((None, 60, -300)),
            )  # fmt: skip
            values = store.row_values(file_id, digest, data)
            exif_columns = exif_columns or list(values)
            exif_rows.append(tuple(values[c] for c in exif_columns))
        copy_rows(kernel, "files", FILE_COLUMNS, file_rows)
        copy_rows(kernel, "image_exif", exif_columns or [], exif_rows)
        print(f"  archive: {min(start + BATCH, count)} rows", end="\r", flush=True)
    print()


VIDEO_EXIF = """
INSERT INTO image_exif (file_id, content_hash, status, extracted_at, width, height,
                        date_taken, utc_offset_minutes, date_source, taken_utc, taken_md)
SELECT f.id, f.content_hash, 'ok', extract(epoch FROM now()), 1920, 1080, t.at, 0,
       'creation_time', t.at, extract(month FROM t.at) * 100 + extract(day FROM t.at)
FROM files f
CROSS JOIN LATERAL (SELECT to_timestamp(f.mtime_ns / 1e9) AT TIME ZONE 'UTC' AS at) t
WHERE f.media_type = 'video'
  AND NOT EXISTS (SELECT 1 FROM image_exif e WHERE e.file_id = f.id)
"""


def load_user_data(kernel: Kernel, user_id: int) -> None:
    """Tags on 30 % of all files (1-3 of 100 tags), favourites on 5 %."""
    rng = random.Random(3)
    now = time.time()
    with kernel.db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO tags (id, name, name_key, created_at, updated_at)"
                " SELECT i, 'tag' || i, 'tag' || i, :t, :t FROM generate_series(1, 100) i"
            ),
            {"t": now},
        )
        conn.execute(text("SELECT setval('tags_id_seq', 100)"))
        ids = [r[0] for r in conn.execute(text("SELECT id FROM files ORDER BY id"))]
    tagged, favorites = [], []
    for file_id in ids:
        if rng.random() < 0.3:
            for tag in rng.sample(range(1, 101), rng.randint(1, 3)):
                tagged.append((tag, file_id, now))
        if rng.random() < 0.05:
            favorites.append((user_id, file_id, now))
    for start in range(0, len(tagged), BATCH * 4):
        copy_rows(kernel, "tagged_photo", ["tag_id", "file_id", "created_at"],
                  tagged[start : start + BATCH * 4])  # fmt: skip
    copy_rows(kernel, "favorites", ["user_id", "file_id", "created_at"], favorites)
    print(f"  {len(tagged)} tag links, {len(favorites)} favourites")


def vacuum(url: str) -> None:
    """Statistics and the visibility map, as autovacuum leaves them after a load."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("SELECT setval('files_id_seq', (SELECT max(id) FROM files))"))
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
