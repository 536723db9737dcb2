"""1,000,000 indexed files on PostgreSQL: rescan, /photos and index size.

    .venv/bin/python tests/benchmarks/million.py [--real 100000] [--rows 1000000]
        [--cache DIR] [--url URL] [--database NAME] [--repeat 20] [--scans 5] [--fresh]

Two libraries share one database:

- ``main`` (id 1): ``--real`` tiny real JPEGs on disk (16x16 pixels, EXIF with camera,
  date; each unique), indexed by the kernel's own scan (hashing, EXIF extraction).
- ``archive`` (id 2): the other ``--rows - --real`` files as rows only, bulk-loaded with
  ``COPY`` into the real schema (migrations run by the kernel): ``files``, ``image_exif``
  (a row per file, as the exif plugin writes for photos and videos), and for every file
  of both libraries tags (30 % of files, 1-3 of 100 tags) and favourites (5 %, one user).

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
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from litestar.testing import TestClient
from million_data import (
    VIDEO_EXIF,
    Steps,
    database_url,
    load_archive,
    load_user_data,
    make_library,
    vacuum,
)
from rescan import bare_walk, timed
from search import measure
from sqlalchemy import create_engine, text

from kernel.app import create_app
from kernel.auth import create_user, issue_token, list_users
from kernel.core import Kernel
from kernel.testing import TEST_DATABASE_ENV, make_config

DEFAULT_URL = "postgresql+psycopg://imageapi:imageapi@127.0.0.1:55432/postgres"
DATABASE = "imageapi_bench_million"
PLUGINS = ["exif", "tags", "favorites"]


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
    if not steps.done("video exif"):  # the container's date and size, as for real videos
        with kernel.db.write() as conn:
            conn.execute(text(VIDEO_EXIF))
        steps.mark("video exif")
        steps.forget("vacuum")
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

    async def scans() -> tuple[list[float], list[float]]:
        await kernel.hooks.on_startup()
        try:
            samples, drains = [], []
            for _ in range(1 + args.scans):  # the first one warms the caches
                started = time.perf_counter()
                report = await kernel.scanner.scan(full=True)
                samples.append(time.perf_counter() - started)
                assert not (report.new or report.changed or report.missing), report
                assert report.seen == args.real, report.seen
                started = time.perf_counter()  # the part of a scan that is not per library
                drained = await kernel.scanner.drain_backlogs()
                drains.append(time.perf_counter() - started)
                assert not any(drained.values()), drained
            return samples[1:], drains[1:]
        finally:
            await kernel.hooks.on_shutdown()

    bare_walk(str(root), True)  # the dentry and inode caches are warm for both
    samples, drains = asyncio.run(scans())
    ours, drain = statistics.median(samples), statistics.median(drains)
    walk = timed(lambda: bare_walk(str(root), True), args.scans)
    kernel.scanner.close()
    kernel.db.dispose()
    per = 100_000 / args.real
    print(f"\nunchanged full rescan of {args.real:,} real files, {args.rows:,} rows indexed")
    print(f"{'':44}{'s':>8}{'s / 100k':>10}{'ratio':>8}")
    print(f"{'bare os.scandir walk + stat':44}{walk:8.2f}{walk * per:10.2f}{1:8.2f}")
    print(f"{'imageapi full rescan':44}{ours:8.2f}{ours * per:10.2f}{ours / walk:8.2f}")
    print(f"{'  of which the idle backlog queries (1M rows)':44}{drain:8.2f}")


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
    engine = create_engine(url)
    with engine.begin() as conn:  # no worker runs on this database: no lease is live
        conn.execute(text("DELETE FROM claims"))
    engine.dispose()
    sizes(url)
    rescan(args, url, env)
    photos(args, url, env, user_id)


if __name__ == "__main__":
    main()
