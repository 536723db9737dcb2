"""Search benchmark: /photos filters and sorts and /memories on a 100,000-file index.

    .venv/bin/python tests/benchmarks/search.py [--files 100000] [--repeat 60]
        [--keep DIR] [--database-url URL]

Rows are inserted directly with SQL (files, image_exif, and when the tags and favorites
plugins are present, tags, tagged_photo and favorites); no media is written. Requests go
through the whole app (Litestar TestClient: routing, auth, hooks, SQL, JSON), one at a
time, pages of ``limit=100``. Prints p50 / p99 per case against the goals (p50 <= 15 ms
for /photos, <= 50 ms for /memories), and the p50 of the first request after a write,
when no kept count or ordering is valid. ``--database-url`` runs it on PostgreSQL
(an empty database the benchmark may fill).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from litestar.testing import TestClient
from sqlalchemy import func, select, text

from kernel.app import create_app
from kernel.auth import create_user, issue_token
from kernel.core import Kernel
from kernel.manager import builtin_plugin_names
from kernel.tables import files, users
from kernel.testing import make_config
from plugins.exif import store
from plugins.exif.model import ExifData
from plugins.exif.tables import image_exif

CAMERAS = [
    ("Canon", "Canon EOS R5"), ("Canon", "Canon EOS 5D Mark IV"),
    ("NIKON CORPORATION", "NIKON D750"), ("NIKON CORPORATION", "NIKON Z 6"),
    ("Apple", "iPhone 12"), ("Apple", "iPhone 15 Pro"), ("SONY", "ILCE-7M3"),
    ("FUJIFILM", "X-T4"), ("Google", "Pixel 7"), ("samsung", "SM-S911B"),
]  # fmt: skip
CITIES = [
    (59.91, 10.75), (40.71, -74.0), (-33.87, 151.21), (48.86, 2.35), (35.68, 139.69),
    (-22.91, -43.17), (51.51, -0.13), (64.15, -21.94), (-16.8, 179.9), (37.77, -122.42),
]  # fmt: skip
INSERT_TAGGED = "INSERT INTO tagged_photo (tag_id, file_id, created_at) VALUES (:t, :f, :c)"
INSERT_FAVORITE = "INSERT INTO favorites (user_id, file_id, created_at) VALUES (:u, :f, :c)"
GOAL_PHOTOS_MS, GOAL_MEMORIES_MS = 15.0, 50.0
BATCH = 5000


def populate(kernel: Kernel, count: int, user_id: int) -> dict[str, bool]:
    """Insert ``count`` files with EXIF (and tags and favourites when those plugins run)."""
    rng = random.Random(1)
    plugins = set(kernel.registry.enabled_names())
    now = time.time()
    start = datetime(2010, 1, 1)
    with kernel.db.write() as conn:
        if "tags" in plugins:
            conn.execute(
                text(
                    "INSERT INTO tags (id, name, name_key, created_at, updated_at)"
                    " VALUES (:i, :n, :n, :t, :t)"
                ),
                [{"i": i, "n": f"tag{i}", "t": now} for i in range(1, 101)],
            )
    for first in range(0, count, BATCH):
        file_rows, exif_rows, tag_rows, fav_rows = [], [], [], []
        for n in range(first, min(first + BATCH, count)):
            taken = start + timedelta(seconds=rng.randrange(16 * 365 * 86400))
            folder = f"{taken.year}/{taken.month:02d}"
            video = n % 20 == 0
            name = f"IMG_{n:06d}.{'mp4' if video else 'jpg'}"
            file_rows.append(
                {"id": n + 1, "library_id": 1, "rel_path": f"{folder}/{name}", "parent_dir": folder,
                 "name": name, "size": 2_000_000, "mtime_ns": int(taken.timestamp() * 1e9),
                 "media_type": "video" if video else "photo", "content_hash": f"{n:064x}",
                 "status": "present", "discovered_at": now, "updated_at": now, "hashed_at": now}
            )  # fmt: skip
            make, model = CAMERAS[n % len(CAMERAS)]
            lat = lon = None
            if rng.random() < 0.6:
                lat, lon = CITIES[rng.randrange(len(CITIES))]
                lat, lon = lat + rng.uniform(-0.5, 0.5), lon + rng.uniform(-0.5, 0.5)
                lon = (lon + 180) % 360 - 180
            data = ExifData(
                camera_make=make, camera_model=model, width=4000, height=3000, orientation=1,
                gps_lat=lat, gps_lon=lon, iso=100, date_taken=taken, date_source="DateTimeOriginal",
                utc_offset_minutes=rng.choice((None, 60, 120, -300)),
            )  # fmt: skip
            exif_rows.append(store.row_values(n + 1, f"{n:064x}", data))
            if "tags" in plugins:
                for tag in rng.sample(range(1, 101), rng.randrange(4)):
                    tag_rows.append({"t": tag, "f": n + 1, "c": now})
            if "favorites" in plugins and rng.random() < 0.05:
                fav_rows.append({"u": user_id, "f": n + 1, "c": now})
        with kernel.db.write() as conn:
            conn.execute(files.insert(), file_rows)
            conn.execute(image_exif.insert(), exif_rows)
            if tag_rows:
                conn.execute(text(INSERT_TAGGED), tag_rows)
            if fav_rows:
                conn.execute(text(INSERT_FAVORITE), fav_rows)
        print(f"  {min(first + BATCH, count)} rows", end="\r", flush=True)
    with kernel.db.write() as conn:
        if kernel.db.dialect == "postgresql":
            conn.execute(text("SELECT setval('files_id_seq', (SELECT max(id) FROM files))"))
        else:
            conn.execute(text("ANALYZE"))  # planner statistics, as after a real scan
    if kernel.db.dialect == "postgresql":  # statistics and visibility map, as autovacuum would
        with kernel.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    print()
    return {"tags": "tags" in plugins, "favorites": "favorites" in plugins}


def commit_nothing(kernel: Kernel) -> None:
    """A commit the listing does not depend on (a user's creation time) that still moves
    the data version: kept counts and orderings are stale after it, so the next request
    computes them again. (A commit that changes no byte does not count as one.)"""
    with kernel.db.write() as conn:
        conn.execute(users.update().values(created_at=users.c.created_at + 1))


def measure(client: TestClient[Any], kernel: Kernel, headers: dict[str, str], url: str,
            params: dict[str, Any], repeat: int) -> tuple[float, float, float, int]:  # fmt: skip
    """p50 and p99 of repeated requests, and p50 of requests after a commit (cold)."""
    for _ in range(3):  # warm the page cache and SQLAlchemy's statement cache
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
    samples, cold = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
    for _ in range(max(5, repeat // 4)):
        commit_nothing(kernel)
        started = time.perf_counter()
        client.get(url, params=params, headers=headers)
        cold.append((time.perf_counter() - started) * 1000)
    body = response.json()
    size = body.get("total", len(body.get("photos", [])))
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99, statistics.median(cold), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="reuse/keep the index here (SQLite)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use")
    parser.add_argument("--mmap-mb", type=int, help="[kernel] sqlite_mmap_mb")
    parser.add_argument("--cache-mb", type=int, help="[kernel] sqlite_cache_mb")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="imageapi-search-"))
    (base / "library" / "2012").mkdir(parents=True, exist_ok=True)  # a folder to list
    url = args.database_url or f"sqlite:///{base / 'imageapi.db'}"
    wanted = ["exif", "memories", "tags", "favorites"]
    present = [name for name in wanted if name in builtin_plugin_names()]
    missing = sorted(set(wanted) - set(present))
    settings = [
        f"{name} = {value}"
        for name, value in (("sqlite_mmap_mb", args.mmap_mb), ("sqlite_cache_mb", args.cache_mb))
        if value is not None
    ]
    toml = "[kernel]\n" + "\n".join(settings) + "\n" if settings else ""
    config = make_config(base, url, library=base / "library", plugins_toml=toml)
    kernel = Kernel(config, only=present)
    app = create_app(kernel, background=False, freeze_heap=True)  # as `imageapi serve`
    with kernel.db.read() as conn:
        user = conn.execute(select(users.c.id).where(users.c.username == "bench")).first()
        indexed = conn.execute(select(func.count()).select_from(files)).scalar_one()
    user_id = user.id if user else create_user(kernel.db, "bench", "password-123").id
    if indexed == 0:
        print(f"inserting {args.files} files into {url} ...", flush=True)
        started = time.perf_counter()
        populate(kernel, args.files, user_id)
        print(f"  done in {time.perf_counter() - started:.1f} s")
    headers = {"Authorization": f"Bearer {issue_token(config.secret_key, user_id)}"}
    page = {"recursive": "true", "limit": 100}
    cases: list[tuple[str, str, dict[str, Any], float]] = [
        ("no filter", "/photos", page, GOAL_PHOTOS_MS),
        ("camera_make=Canon", "/photos", {**page, "camera_make": "canon"}, GOAL_PHOTOS_MS),
        ("camera_model", "/photos", {**page, "camera_model": "nikon z 6"}, GOAL_PHOTOS_MS),
        ("GPS 50 km (Oslo)", "/photos",
         {**page, "gps_lat": 59.91, "gps_lon": 10.75, "gps_radius_km": 50}, GOAL_PHOTOS_MS),
        ("GPS 30 km over 180°", "/photos",
         {**page, "gps_lat": -16.8, "gps_lon": 180, "gps_radius_km": 30}, GOAL_PHOTOS_MS),
        ("date range (3 months)", "/photos",
         {**page, "date_from": "2019-06-01", "date_to": "2019-08-31"}, GOAL_PHOTOS_MS),
        ("DateTakenDesc", "/photos", {**page, "sort": "DateTakenDesc"}, GOAL_PHOTOS_MS),
        ("DateTakenDesc offset 50000", "/photos",
         {**page, "sort": "DateTakenDesc", "offset": 50_000}, GOAL_PHOTOS_MS),
        ("folder 2012 + DateTakenDesc", "/photos",
         {**page, "path": "2012", "sort": "DateTakenDesc"}, GOAL_PHOTOS_MS),
        ("camera + date + DateTakenAsc", "/photos",
         {**page, "camera_make": "apple", "date_from": "2015-01-01", "sort": "DateTakenAsc"},
         GOAL_PHOTOS_MS),
    ]  # fmt: skip
    if "tags" in present:
        cases += [
            ("tags any (3 tags)", "/photos", {**page, "tag_ids": "1,2,3"}, GOAL_PHOTOS_MS),
            ("tags all (2 tags)", "/photos",
             {**page, "tag_ids": "1,2", "tag_match": "all"}, GOAL_PHOTOS_MS),
            ("TagCountDesc", "/photos", {**page, "sort": "TagCountDesc"}, GOAL_PHOTOS_MS),
        ]  # fmt: skip
    if "favorites" in present:
        cases.append(("favorites=true", "/photos", {**page, "favorites": "true"}, GOAL_PHOTOS_MS))
    cases += [
        ("memories week", "/memories", {"date": "2026-11-23"}, GOAL_MEMORIES_MS),
        ("memories day", "/memories", {"date": "2026-11-23", "span": "day"}, GOAL_MEMORIES_MS),
        ("memories month", "/memories", {"date": "2026-11-23", "span": "month"}, 0.0),
    ]
    print(f"{kernel.db.dialect}, {indexed or args.files} files, plugins: {', '.join(present)}")
    if missing:
        print(f"not present, cases skipped: {', '.join(missing)}")
    print("p50/p99: the same request repeated (counts and deep orderings kept);")
    print("after commit: p50 of the first request after a write (everything computed)")
    print(f"{'case':32} {'matches':>8} {'p50 ms':>8} {'p99 ms':>8} {'after commit':>13}  goal")
    with TestClient(app=app) as client:
        for name, url_path, params, goal in cases:
            p50, p99, cold, size = measure(client, kernel, headers, url_path, params, args.repeat)
            verdict = "" if not goal else ("ok" if p50 <= goal else f"MISSED (p50 <= {goal:g})")
            print(
                f"{name:32} {size:>8} {p50:>8.1f} {p99:>8.1f} {cold:>13.1f}  {verdict}", flush=True
            )
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
