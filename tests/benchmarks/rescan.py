"""Rescan benchmark: a full scan of an unchanged 100,000-file library vs a bare walk.

    .venv/bin/python tests/benchmarks/rescan.py [--files 100000] [--keep DIR] [--all-plugins]

Prints the time of a bare ``os.scandir`` walk (names only, and with a stat per file as
the scanner needs), and of imageapi's full rescan (walk + one index query + compare),
as ratios measured in the same run. Cold-cache effects are avoided by walking once first.
``--all-plugins`` runs the shipped plugins.toml: every plugin's backlog query is part of
the rescan (the files are stubs, so EXIF, thumbnails and HLS mark them failed once, in
the initial scan).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel.config import load_config
from kernel.core import Kernel

JPEG_HEAD = b"\xff\xd8\xff\xe0" + b"\0" * 60


def make_library(root: Path, count: int) -> None:
    per_folder = 200
    for n in range(count):
        folder = root / f"{n // 5000:02d}" / f"{(n // per_folder) % 25:02d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        ext = "mp4" if n % 20 == 0 else "jpg"
        (folder / f"IMG_{n:06d}.{ext}").write_bytes(
            JPEG_HEAD + n.to_bytes(4, "big") if ext == "jpg" else b"\0\0\0\x18ftypisom" + b"\0" * 8
        )


def bare_walk(root: str, with_stat: bool) -> int:
    count = 0
    stack = [root]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                if with_stat:
                    entry.stat()
                count += 1
    return count


def timed(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="reuse/keep the library and database here")
    parser.add_argument("--all-plugins", action="store_true", help="the shipped plugins.toml")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="imageapi-bench-"))
    library = base / "library"
    if not library.exists():
        print(f"generating {args.files} files in {library} ...", flush=True)
        library.mkdir(parents=True)
        make_library(library, args.files)
    env = {
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(base / "data"),
        "SECRET_KEY": "x" * 40,
        "IMAGEAPI_CONFIG": str(base / "plugins.toml"),
        "METRICS_BIND": "off",
    }
    shipped = Path(__file__).resolve().parents[2] / "plugins.toml"
    (base / "plugins.toml").write_text(shipped.read_text() if args.all_plugins else "")
    kernel = Kernel(load_config(env, env_file=None), only=None if args.all_plugins else [])
    kernel.migrate()

    root = str(library)

    async def measure() -> tuple[Any, float]:
        await kernel.hooks.on_startup()
        try:
            start = time.perf_counter()
            first = await kernel.scanner.scan(full=True)
            print(
                f"initial scan: {first.seen} files, {len(first.new)} new, {first.hashed} hashed"
                f" in {time.perf_counter() - start:.1f} s"
            )
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                report = await kernel.scanner.scan(full=True)
                samples.append(time.perf_counter() - start)
                assert not report.new and not report.changed and not report.missing
            return first, statistics.median(samples)
        finally:
            await kernel.hooks.on_shutdown()

    bare_walk(root, True)  # warm the dentry and inode caches for every contender
    _first, ours = asyncio.run(measure())
    names = timed(lambda: bare_walk(root, False))
    stats = timed(lambda: bare_walk(root, True))
    print(f"\n{'':32}{'seconds':>10}{'ratio':>10}")
    print(f"{'bare os.scandir walk (names)':32}{names:10.3f}{1:10.2f}")
    print(f"{'bare os.scandir walk + stat':32}{stats:10.3f}{stats / names:10.2f}")
    print(f"{'imageapi full rescan':32}{ours:10.3f}{ours / names:10.2f}")
    print(f"\nrescan / bare walk with stat: {ours / stats:.2f}x")


if __name__ == "__main__":
    main()
