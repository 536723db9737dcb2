"""Rescan benchmark: a full scan of an unchanged 100,000-file library vs a bare walk.

    .venv/bin/python tests/benchmarks/rescan.py [--files 100000] [--keep DIR]

Prints the time of a bare ``os.scandir`` walk (names only, and with a stat per file as
the scanner needs), and of imageapi's full rescan (walk + one index query + compare),
as ratios measured in the same run. Cold-cache effects are avoided by walking once first.
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
    }
    (base / "plugins.toml").touch()
    kernel = Kernel(load_config(env, env_file=None), only=[])
    kernel.migrate()

    async def scan():
        return await kernel.scanner.scan(full=True)

    start = time.perf_counter()
    first = asyncio.run(scan())
    print(
        f"initial scan: {first.seen} files, {len(first.new)} new, {first.hashed} hashed"
        f" in {time.perf_counter() - start:.1f} s"
    )

    root = str(library)
    bare_walk(root, True)  # warm the dentry and inode caches for every contender
    names = timed(lambda: bare_walk(root, False))
    stats = timed(lambda: bare_walk(root, True))

    def rescan():
        report = asyncio.run(scan())
        assert not report.new and not report.changed and not report.missing

    ours = timed(rescan)
    print(f"\n{'':32}{'seconds':>10}{'ratio':>10}")
    print(f"{'bare os.scandir walk (names)':32}{names:10.3f}{1:10.2f}")
    print(f"{'bare os.scandir walk + stat':32}{stats:10.3f}{stats / names:10.2f}")
    print(f"{'imageapi full rescan':32}{ours:10.3f}{ours / names:10.2f}")
    print(f"\nrescan / bare walk with stat: {ours / stats:.2f}x")


if __name__ == "__main__":
    main()
