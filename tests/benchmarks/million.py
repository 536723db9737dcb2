"""1,000,000 indexed files on PostgreSQL: rescan, /photos and index size.

    .venv/bin/python tests/benchmarks/million.py [--real 100000] [--rows 1000000]
        [--cache DIR] [--url URL] [--database NAME] [--repeat 20] [--scans 5] [--fresh]

Two libraries share one database:

- ``main`` (id 1): ``--real`` tiny real JPEGs on disk (16x16 pixels, EXIF with camera,
  date; each unique), indexed by the kernel's own scan (hashing, EXIF extraction).
- ``archive`` (id 2): the other ``--rows - --real`` files as rows only, bulk-loaded with
  ``COPY`` into the real schema (migrations run by the kernel): ``files``, ``image_exif``
  (a row per photo), and for every file of both libraries tags (30 % of files, 1-3 of
  100 tags) and favourites (5 %, one user).

A rescan must walk real files: the kernel's full scan is given ``main`` as its only
library (the archive's rows have no files to walk) while the table holds every row; its
index read is per library, its hash backlog and the plugins' backlog queries span the
whole table. Baseline in the same run: a bare ``os.scandir`` walk + stat of the same
files. ``/photos`` goes through the real app (TestClient: routing, auth, hooks, SQL,
JSON), pages of 100, on ``archive`` and on ``main``. Sizes: ``pg_total_relation_size``.

Everything generated is kept: the files in ``--cache`` (default /tmp/imageapi-million),
the rows in the database ``--database`` (imageapi_bench_million); each step is recorded
when done, so a second run goes straight to measuring. ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import struct
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from litestar.testing import TestClient
from PIL import Image
from rescan import bare_walk, timed
from search import CAMERAS, CITIES, measure
from sqlalchemy import create_engine, make_url, text

from kernel.app import create_app
from kernel.auth import create_user, issue_token, list_users
from kernel.core import Kernel
from kernel.testing import TEST_DATABASE_ENV, make_config
from plugins.exif import store
from plugins.exif.model import ExifData

DEFAULT_URL = "postgresql+psycopg://imageapi:imageapi@127.0.0.1:55432/postgres"
DATABASE = "imageapi_bench_million"
PLUGINS = ["exif", "tags", "favorites"]
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


def generate(args: argparse.Namespace, url: str, env: dict[str, str]) -> int:
    """Every step not yet done; returns the benchmark user's id."""
    steps = Steps(url)
    base = args.cache
    config = make_config(base / "scan", url, library=base / "library", env=env)
    kernel = Kernel(config, only=PLUGINS)
    kernel.migrate()
    users = {u.username: u.id for u in list_users(kernel.db)}
    user_id = users.get("bench") or create_user(kernel.db, "bench", "password-123").id
    if not steps.done("scan"):
        print(f"indexing {args.real} real files (hash, EXIF) ...", flush=True)
        started = time.perf_counter()

        async def scan() -> None:
            await kernel.hooks.on_startup()
            try:
                report = await kernel.scanner.scan(full=True)
                print(f"  {report.seen} files, {report.hashed} hashed", flush=True)
            finally:
                await kernel.hooks.on_shutdown()

        asyncio.run(scan())
        print(f"  in {time.perf_counter() - started:.0f} s")
        steps.mark("scan")
    if not steps.done("archive"):
        with kernel.db.write() as conn:
            conn.execute(text("DELETE FROM files WHERE library_id = 2"))  # a half-done load
            first = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM files")).scalar_one()
        print(f"loading {args.rows - args.real} archive rows ...", flush=True)
        started = time.perf_counter()
        load_archive(kernel, first, args.rows - args.real)
        print(f"  in {time.perf_counter() - started:.0f} s")
        steps.mark("archive")
    if not steps.done("user data"):
        with kernel.db.write() as conn:
            for table in ("favorites", "tagged_photo", "tags"):
                conn.execute(text(f"DELETE FROM {table}"))
        started = time.perf_counter()
        load_user_data(kernel, user_id)
        print(f"  in {time.perf_counter() - started:.0f} s")
        steps.mark("user data")
    if not steps.done("vacuum"):
        vacuum(url)
        steps.mark("vacuum")
    kernel.scanner.close()
    kernel.db.dispose()
    steps.engine.dispose()
    return user_id


# --- measuring -------------------------------------------------------------------------


def sizes(url: str) -> None:
    engine = create_engine(url)
    tables = ["files", "image_exif", "tagged_photo", "tag_counts", "favorites", "claims"]
    with engine.connect() as conn:
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
        size = {
            t: conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one()
            for t in tables
        }
        indexes = {
            t: conn.execute(text("SELECT pg_indexes_size(:t)"), {"t": t}).scalar_one()
            for t in tables
        }
        whole = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    print(f"\n{'table':14}{'rows':>11}{'total MiB':>11}{'indexes MiB':>13}{'bytes/row':>11}")
    for t in tables:
        per_row = size[t] / rows[t] if rows[t] else 0
        print(
            f"{t:14}{rows[t]:>11,}{size[t] / 2**20:>11.0f}{indexes[t] / 2**20:>13.0f}"
            f"{per_row:>11.0f}"
        )
    print(f"{'database':14}{'':>11}{whole / 2**20:>11.0f}")


def rescan(args: argparse.Namespace, url: str, env: dict[str, str]) -> None:
    """The kernel's full scan of ``main`` (unchanged) against a bare walk of it."""
    base = args.cache
    root = base / "library"
    config = make_config(base / "scan", url, library=root, env=env)
    kernel = Kernel(config, only=PLUGINS)

    async def scans() -> list[float]:
        await kernel.hooks.on_startup()
        try:
            samples = []
            for _ in range(1 + args.scans):  # the first one warms the caches
                started = time.perf_counter()
                report = await kernel.scanner.scan(full=True)
                samples.append(time.perf_counter() - started)
                assert not (report.new or report.changed or report.missing), report
                assert report.seen == args.real, report.seen
            return samples[1:]
        finally:
            await kernel.hooks.on_shutdown()

    bare_walk(str(root), True)  # the dentry and inode caches are warm for both
    ours = statistics.median(asyncio.run(scans()))
    walk = timed(lambda: bare_walk(str(root), True), args.scans)
    kernel.scanner.close()
    kernel.db.dispose()
    per = 100_000 / args.real
    print(f"\nunchanged full rescan of {args.real:,} real files, {args.rows:,} rows indexed")
    print(f"{'':40}{'s':>8}{'s / 100k':>10}{'ratio':>8}")
    print(f"{'bare os.scandir walk + stat':40}{walk:8.2f}{walk * per:10.2f}{1:8.2f}")
    print(f"{'imageapi full rescan (scan lock holder)':40}{ours:8.2f}{ours * per:10.2f}"
          f"{ours / walk:8.2f}")  # fmt: skip


def photos(args: argparse.Namespace, url: str, env: dict[str, str], user_id: int) -> None:
    """/photos pages through the real app, on both libraries of the same database."""
    base = args.cache
    (base / "archive").mkdir(exist_ok=True)  # its rows have no files: nothing scans it
    toml = f'[kernel]\nlibraries = [{{id = 2, name = "archive", path = "{base / "archive"}"}}]\n'
    config = make_config(base / "app", url, library=base / "library", plugins_toml=toml, env=env)
    kernel = Kernel(config, only=PLUGINS)
    app = create_app(kernel, background=False, freeze_heap=True)  # as `imageapi serve`
    headers = {"Authorization": f"Bearer {issue_token(config.secret_key, user_id)}"}
    archive = args.rows - args.real
    cases = []
    for library, count in (("archive", archive), ("main", args.real)):
        page = {"library": library, "recursive": "true", "limit": 100}
        cases += [
            (library, "no filter", page),
            (library, "camera_make=canon", {**page, "camera_make": "canon"}),
            (library, "sort=DateTakenDesc", {**page, "sort": "DateTakenDesc"}),
            (library, f"DateTakenDesc offset {count // 2:,}",
             {**page, "sort": "DateTakenDesc", "offset": count // 2}),
            (library, f"NameAsc offset {count - 1000:,}", {**page, "offset": count - 1000}),
        ]  # fmt: skip
    print(f"\n/photos, pages of 100 ({args.repeat} requests each; after commit: the first")
    print("request after a write, when no kept count or ordering is valid)")
    print(f"{'library':9}{'case':30}{'matches':>9}{'p50 ms':>8}{'p99 ms':>8}{'after commit':>14}")
    with TestClient(app=app) as client:
        for library, name, params in cases:
            p50, p99, cold, size = measure(client, kernel, headers, "/photos", params, args.repeat)
            print(f"{library:9}{name:30}{size:>9,}{p50:>8.1f}{p99:>8.1f}{cold:>14.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=int, default=100_000, help="files on disk (main)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="indexed files in all")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imageapi-million"))
    parser.add_argument("--url", default=os.environ.get(TEST_DATABASE_ENV) or DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=20, help="requests per /photos case")
    parser.add_argument("--scans", type=int, default=5, help="rescans measured (median)")
    parser.add_argument("--database", default=DATABASE, help="kept between runs")
    parser.add_argument("--fresh", action="store_true", help="drop the database, start over")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    make_library(args.cache / "library", args.real)
    url = database_url(args.url, args.database, args.fresh)
    env = {"METRICS_BIND": "off", "THUMBNAILS": str(args.cache / "thumbs")}
    user_id = generate(args, url, env)
    print(f"PostgreSQL database {args.database}; {os.cpu_count()} CPUs")
    sizes(url)
    rescan(args, url, env)
    photos(args, url, env, user_id)


if __name__ == "__main__":
    main()
