"""Memory benchmark: what `imageapi serve` holds at 100,000 files, idle and after a
minute of listings, split into private memory and the mapped database file.

    .venv/bin/python tests/benchmarks/memory.py --index DIR [--workers 2]
        [--mmap-mb MB] [--cache-mb MB] [--seconds 60]
    .venv/bin/python tests/benchmarks/memory.py --ingest LIBRARY [--workers 2]

``--ingest`` serves a library it has never seen (scanning on, shipped plugins.toml) and
reports the peak of every process's memory, sampled five times a second, until the
server falls idle: the ingest half of the memory goal. The libraries ``thumbnails.py
--keep DIR`` generates (``DIR/jpeg``, ``heic``, ``raw``, ``video``) serve as inputs.

``DIR`` is an index kept by the search benchmark (``search.py --keep DIR``: 100,000
files with EXIF, tags and favourites, user ``bench``). The server runs as in production
(``serve --workers N --no-scan``, the shipped plugins.toml) with ``[kernel]
sqlite_mmap_mb`` and ``sqlite_cache_mb`` as given; listings come from ``wrk`` (64
connections) with random offsets, sorts and filters, so neither the listing cache nor
one page answers them all.

For every process of the server (the supervisor and its workers) it reads
``/proc/PID/status``: ``RssAnon`` is private memory (the Python heaps, caches, SQLite's
page cache), ``RssFile`` mostly the database file mapped by each pooled connection (the
same cached pages counted once per mapping; the kernel can drop them at any time) and the
shared libraries. Goals (performance issue): private <= 200 MB idle and <= 250 MB after
a minute of listings; RSS including the mapping <= 400 MB with the default setting.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "benchmarks"))

from serving import CLI, cpu_seconds, free_port, server_env, start, stop, wait_up  # noqa: E402

LISTINGS = """
math.randomseed(os.time())
local sorts = {"NameAsc", "DateTakenDesc", "DateTakenAsc", "TagCountDesc", "NameDesc"}
local filters = {"", "&camera_make=canon", "&camera_make=apple", "&favorites=true",
                 "&date_from=2015-01-01&date_to=2016-12-31", "&tag_ids=3,7,11"}
request = function()
  local path = "/photos?recursive=true&limit=100&offset=" .. math.random(0, 900) * 100
    .. "&sort=" .. sorts[math.random(#sorts)] .. filters[math.random(#filters)]
  return wrk.format("GET", path, {["Authorization"] = "Bearer TOKEN"})
end
"""


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def processes(root: int) -> list[int]:
    """The server's process tree, without a child caught between fork and exec: until it
    runs its own program (an EXIF worker, ffmpeg) it still has its parent's command line
    and shows its parent's pages as its own, so counting it would count them twice (one
    such sample read 358 MB of private memory where the processes held 280)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        parent = _cmdline(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:  # the thread or process has just ended
                continue
            todo.extend(int(c) for c in children if _cmdline(int(c)) != parent)
    return found


def memory(root: int) -> dict[str, float]:
    """Sums over the server's processes, in MB."""
    totals = {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
    for pid in processes(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # a child (ffmpeg, an EXIF worker) that has just ended
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in totals:
                totals[name] += int(value.split()[0]) / 1024
    return totals


def ingest(library: Path, workers: int) -> None:
    """``serve --workers N`` with scanning on, over a library it has never seen (a fresh
    data folder and database, the shipped plugins.toml): every process's memory sampled
    five times a second until the server's CPU falls idle (hashes, EXIF, thumbnails done)."""
    home = Path(tempfile.mkdtemp(prefix="imageapi-memory-ingest-"))
    env = server_env(home, free_port(), library)
    peak = {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
    server = start([*CLI, "serve", "--workers", str(workers)], env, home / "serve.log", home)
    started = time.monotonic()
    try:
        idle_since, last_cpu = None, 0.0
        while time.monotonic() - started < 1800:
            time.sleep(0.2)
            now = memory(server.pid)
            peak = {name: max(peak[name], now[name]) for name in peak}
            cpu = cpu_seconds(server.pid)
            busy = cpu - last_cpu > 0.02  # more than a tenth of a core over 0.2 s
            last_cpu = cpu
            if busy or time.monotonic() - started < 5:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 3:
                break
        took = (idle_since or time.monotonic()) - started
    finally:
        stop(server)
        shutil.rmtree(home, ignore_errors=True)
    media = sum(1 for path in library.rglob("*") if path.is_file())
    print(f"{workers} serving processes, ingest of {media} files in {library}: {took:.1f} s"
          " to idle (start-up included)")  # fmt: skip
    print(
        f"{'peak during ingest':<24} {peak['RssAnon']:>9.0f} {peak['RssFile']:>12.0f}"
        f" {peak['VmRSS']:>8.0f}   (MB, all processes: private, file-backed, RSS)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path)
    parser.add_argument("--ingest", type=Path, help="a library folder to ingest instead")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mmap-mb", type=int)
    parser.add_argument("--cache-mb", type=int)
    parser.add_argument("--seconds", type=int, default=60)
    opts = parser.parse_args()
    if opts.ingest:
        ingest(opts.ingest.resolve(), opts.workers)
        return
    if opts.index is None:
        parser.error("--index or --ingest is needed")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="imageapi-memory-"))
    settings = "".join(
        f"{name} = {value}\n"
        for name, value in (("sqlite_mmap_mb", opts.mmap_mb), ("sqlite_cache_mb", opts.cache_mb))
        if value is not None
    )
    toml = (REPO / "plugins.toml").read_text()
    if "[kernel]" in toml:
        toml = toml.replace("[kernel]\n", f"[kernel]\n{settings}", 1)
    else:
        toml = f"[kernel]\n{settings}\n{toml}"
    # The index's files are not on disk: no renditions to pre-generate for its videos.
    toml = toml.replace("pregenerate = true", "pregenerate = false")
    (home / "plugins.toml").write_text(toml)
    port = free_port()
    env = server_env(
        home, port, opts.index / "library",
        DATABASE_URL=f"sqlite:///{opts.index / 'imageapi.db'}",
        IMAGEAPI_CONFIG=str(home / "plugins.toml"),
    )  # fmt: skip
    args = [*CLI, "serve", "--no-scan", "--workers", str(opts.workers)]
    server = start(args, env, home / "serve.log", home)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/health", tries=1200)
        login = {"username": "bench", "password": "password-123"}
        token = httpx.post(f"{base}/login", json=login).json()["token"]
        time.sleep(5)
        idle = memory(server.pid)
        script = home / "listings.lua"
        script.write_text(LISTINGS.replace("TOKEN", token))
        out = subprocess.run(
            ["wrk", "-t2", "-c64", f"-d{opts.seconds}s", "-s", str(script), base],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        busy = memory(server.pid)
        rps = next(line for line in out.splitlines() if "Requests/sec" in line).split()[-1]
    finally:
        stop(server)
        shutil.rmtree(home, ignore_errors=True)
    chosen = settings.replace("\n", " ").strip() or "default settings"
    print(f"{opts.workers} serving processes, {chosen};"
          f" listings: {rps} req/s for {opts.seconds} s")  # fmt: skip
    print(f"{'':<24} {'private':>9} {'file-backed':>12} {'RSS':>8}   (MB, all processes)")
    for name, m in (("idle", idle), ("after the listings", busy)):
        print(f"{name:<24} {m['RssAnon']:>9.0f} {m['RssFile']:>12.0f} {m['VmRSS']:>8.0f}")


if __name__ == "__main__":
    main()
