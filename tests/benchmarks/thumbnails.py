"""Thumbnail ingest benchmark: imageapi's whole ingest path against the JPEG decode floor.

    .venv/bin/python tests/benchmarks/thumbnails.py [--jpegs 40] [--heic 12] [--raw 12]
        [--videos 6] [--shipped] [--keep DIR]

The floor is the least any thumbnailer must do for a 24-megapixel JPEG:
``Image.open`` + ``draft('RGB', (200, 200))`` + ``load()``, on all cores (a thread pool
of ``os.cpu_count()`` workers). imageapi's path is a full kernel scan of a fresh
database with only the thumbnails plugin enabled: walk, index, blake3 hash, magic-byte
check, thumbnail render, atomic write and state rows. Both run over the same files in
the same process, with the files in the page cache; the ratio is floor time over
imageapi time (1.0 = as fast as the bare decode). HEIC, RAW previews and video poster
frames are reported as files per second, bare render core vs whole ingest.

``--shipped`` adds what an operator runs: ``imageapi scan --full`` as a command (a fresh
process, start-up included) on the shipped plugins.toml (EXIF, thumbnails, faces inert,
...) over the same JPEGs, against the same floor; its CPU column is the command's. Beside
it: the same command on an empty library (its start-up: imports, migrations, plugins), and
the best ratio any ``scan --full`` of these files could reach, start-up then the hash +
render core alone.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from PIL import Image

from kernel.config import load_config
from kernel.core import Kernel
from kernel.hashing import hash_file
from kernel.media.ffmpeg import run_ffmpeg
from plugins.thumbnails.dispatch import render

CPUS = os.cpu_count() or 1
LAST_CPU = [0.0]  # CPU seconds of the last ingest scan (all threads)
W, H = 6000, 4000  # 24 megapixels


# --- inputs --------------------------------------------------------------------------------


def exif_bytes(n: int, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "imageapi"
    exif[0x0110] = "Bench 24"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = f"2024:05:{1 + n % 28:02d} 12:00:00"
    return exif.tobytes()


def only(folder: Path, count: int, pattern: str) -> None:
    """Make ``folder`` (reused with --keep) hold no more than ``count`` inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob(pattern))[count:]:
        path.unlink()


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """24 MP photos with sensor-like noise, so they compress like camera files (>= 5 MB)."""
    only(folder, count, "*.jpg")
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 8, (H, W, 3)).astype(np.int16)
    x = np.linspace(0, 1, W, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    base = np.stack([80 + 120 * x + 0 * y, 60 + 100 * y + 0 * x, 150 - 80 * x * y], axis=2).astype(
        np.int16
    )

    def one(n: int) -> Path:
        path = folder / f"DSC_{n:04d}.jpg"
        if not path.exists():
            shifted = np.roll(noise, n * 7919, axis=1)
            pixels = np.clip(base + shifted, 0, 255).astype(np.uint8)
            orientation = 6 if n % 5 == 0 else 1
            Image.fromarray(pixels).save(path, "JPEG", quality=90, exif=exif_bytes(n, orientation))
        return path

    with ThreadPoolExecutor(CPUS) as pool:
        paths = list(pool.map(one, range(count)))
    small = [p for p in paths if p.stat().st_size < 5_000_000]
    assert not small, f"{len(small)} JPEGs under 5 MB"
    return paths


def make_heics(folder: Path, count: int) -> list[Path]:
    """12 MP phone-like HEICs with a 320 px embedded thumbnail, as iPhones write them."""
    import pillow_heif

    only(folder, count, "*.heic")
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 6, (3024, 4032, 3)).astype(np.int16)
    base = np.full((3024, 4032, 3), (90, 140, 200), dtype=np.int16)

    def one(n: int) -> Path:
        path = folder / f"IMG_{n:04d}.heic"
        if not path.exists():
            pixels = np.clip(base + np.roll(noise, n * 104729, axis=1), 0, 255).astype(np.uint8)
            heif = pillow_heif.from_pillow(Image.fromarray(pixels))
            heif.save(path, quality=80, thumbnails=[320], exif=exif_bytes(n))
        return path

    with ThreadPoolExecutor(CPUS) as pool:
        return list(pool.map(one, range(count)))


def raw_file(preview: bytes, thumb: bytes, sensor: int) -> bytes:
    """A NEF/DNG-shaped TIFF: a small JPEG in IFD0, the full-size preview in a SubIFD,
    and ``sensor`` bytes standing in for the raw data the walker never reads."""
    ifd0_at, entries0, entries1 = 8, 4, 3
    sub_at = ifd0_at + 2 + 12 * entries0 + 4
    data_at = sub_at + 2 + 12 * entries1 + 4
    thumb_at, preview_at = data_at, data_at + len(thumb)

    def ifd(values: list[tuple[int, int, int]]) -> bytes:
        out = struct.pack("<H", len(values))
        for tag, typ, value in values:
            packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, typ, 1) + packed
        return out + struct.pack("<I", 0)

    head = b"II*\x00" + struct.pack("<I", ifd0_at)
    head += ifd([(254, 4, 1), (330, 4, sub_at), (513, 4, thumb_at), (514, 4, len(thumb))])
    head += ifd([(254, 4, 0), (513, 4, preview_at), (514, 4, len(preview))])
    assert len(head) == data_at
    return head + thumb + preview + os.urandom(16) * (sensor // 16)


def make_raws(folder: Path, count: int, jpeg: Path) -> list[Path]:
    only(folder, count, "*.nef")
    preview = jpeg.read_bytes()
    with Image.open(jpeg) as im:
        im.draft("RGB", (160, 120))
        small = io.BytesIO()
        im.convert("RGB").resize((160, 107)).save(small, "JPEG")
    paths = []
    for n in range(count):
        path = folder / f"DSC_{n:04d}.nef"
        if not path.exists():
            path.write_bytes(raw_file(preview, small.getvalue(), 2_000_000) + n.to_bytes(4, "big"))
        paths.append(path)
    return paths


def make_videos(folder: Path, count: int) -> list[Path]:
    """10 s 1080p H.264 clips."""
    only(folder, count, "*.mp4")
    paths = []
    for n in range(count):
        path = folder / f"VID_{n:04d}.mp4"
        if not path.exists():
            run_ffmpeg(
                ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration=10,hue=h={n * 30}",
                 "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
                 "-y", str(path)],
                timeout=300,
            )  # fmt: skip
        paths.append(path)
    return paths


# --- contenders ------------------------------------------------------------------------------


def on_all_cores(paths: list[Path], work: Callable[[Path], object]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(CPUS) as pool:
        list(pool.map(work, paths))
    return time.perf_counter() - start


def render_thumb(path: Path) -> None:
    render(path, "", 200, "jpeg")


def jpeg_floor(path: Path) -> None:
    with Image.open(path) as im:
        im.draft("RGB", (200, 200))
        im.load()


def ingest(base: Path, library: Path, toml: str = "") -> tuple[float, int, dict[str, int]]:
    """A fresh database and thumbnail folder, one full kernel scan; (seconds, hashed, rows)."""
    run_dir = base / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "plugins.toml").write_text(toml)
    env = {
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(run_dir / "data"),
        "SECRET_KEY": "x" * 40,
        "IMAGEAPI_CONFIG": str(run_dir / "plugins.toml"),
    }
    kernel = Kernel(load_config(env, env_file=None), only=["thumbnails"])
    kernel.migrate()

    async def scan() -> tuple[float, int]:
        await kernel.hooks.on_startup()
        start, cpu = time.perf_counter(), time.process_time()
        report = await kernel.scanner.scan(full=True)
        elapsed = time.perf_counter() - start
        LAST_CPU[0] = time.process_time() - cpu
        await kernel.hooks.on_shutdown()
        return elapsed, report.hashed

    elapsed, hashed = asyncio.run(scan())
    with kernel.db.read() as conn:
        rows = dict(
            conn.exec_driver_sql("SELECT status, count(*) FROM thumbnails GROUP BY 1").all()
        )
    kernel.scanner.close()
    kernel.db.dispose()
    return elapsed, hashed, rows


def cli_scan(base: Path, library: Path) -> tuple[float, float]:
    """``imageapi scan --full`` with the shipped plugins.toml on a fresh data folder:
    (wall seconds of the command, its CPU seconds)."""
    run_dir = base / "run-cli"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(run_dir / "data"),
        "IMAGEAPI_CONFIG": str(repo / "plugins.toml"),
        "LOG_LEVEL": "warning",
        "METRICS_BIND": "off",
        "PYTHONPATH": str(repo),
    }
    cli = [sys.executable, "-c", "from kernel.cli import main; main()", "scan", "--full"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cli, env=env, cwd=run_dir, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def timed(run: Callable[[], float]) -> tuple[float, float]:
    """(wall seconds as ``run`` reports them, process CPU seconds)."""
    cpu = time.process_time()
    wall = run()
    return wall, time.process_time() - cpu


def best(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """The fastest run (least disturbed by other work on the machine)."""
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jpegs", type=int, default=40)
    parser.add_argument("--heic", type=int, default=12)
    parser.add_argument("--raw", type=int, default=12)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each contender")
    parser.add_argument("--shipped", action="store_true", help="also imageapi scan --full")
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated inputs here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="imageapi-thumb-bench-"))
    print(f"inputs in {base}; {CPUS} CPUs", flush=True)

    jpegs = make_jpegs(base / "jpeg" / "2024" / "05", args.jpegs)
    mb = sum(p.stat().st_size for p in jpegs) / len(jpegs) / 1e6
    print(f"{len(jpegs)} JPEGs of {W}x{H}, {mb:.1f} MB each on average", flush=True)
    others: list[tuple[str, list[Path], Path, str]] = []
    if args.heic:
        heics = make_heics(base / "heic", args.heic)
        others.append(("HEIC 12 MP (320 px thumbnail inside)", heics, base / "heic", ""))
    if args.raw:
        raws = make_raws(base / "raw", args.raw, jpegs[1])
        others.append(("RAW preview (24 MP JPEG inside)", raws, base / "raw", ""))
    if args.videos:
        clips = make_videos(base / "video", args.videos)
        no_gif = "[plugins.thumbnails]\ngif = false\n"
        others.append(("video poster frame (1080p, 10 s)", clips, base / "video", no_gif))
        others.append(("video poster + animated GIF", clips, base / "video", ""))

    print(f"\nbest of {args.rounds} interleaved rounds; CPU = process CPU seconds")
    print(f"\n{'':56}{'files':>6}{'seconds':>9}{'files/s':>9}{'CPU s':>7}{'ratio':>7}")

    def row(label: str, count: int, seconds: float, cpu: float, ratio: str = "") -> None:
        rate = f"{count / seconds:9.1f}" if count else f"{'':9}"
        print(f"{label:56}{count:6d}{seconds:9.2f}{rate}{cpu:7.2f}{ratio:>7}")

    def hash_and_render(path: Path) -> None:
        st = path.stat()
        hash_file(0, path, st.st_size, st.st_mtime_ns)
        render(path, "photo", 200, "jpeg")

    on_all_cores(jpegs, lambda p: p.read_bytes())  # page cache, for every contender
    floors, ideals, ours, shipped, startups = [], [], [], [], []
    (base / "empty").mkdir(exist_ok=True)
    for _ in range(args.rounds):  # interleaved, so drift hits all alike
        if args.shipped:
            shipped.append(cli_scan(base, base / "jpeg"))
            startups.append(cli_scan(base, base / "empty"))
        floors.append(timed(lambda: on_all_cores(jpegs, jpeg_floor)))
        ideals.append(timed(lambda: on_all_cores(jpegs, hash_and_render)))
        elapsed, hashed, rows = ingest(base, base / "jpeg")
        assert hashed == len(jpegs) and rows == {"done": len(jpegs)}, (hashed, rows)
        ours.append((elapsed, LAST_CPU[0]))
    floor_s, ideal_s, ours_s = best(floors), best(ideals), best(ours)
    row("JPEG 24 MP: floor (open + draft + load)", len(jpegs), *floor_s, "1.00")
    ratio = f"{floor_s[0] / ideal_s[0]:.2f}"
    row("JPEG 24 MP: hash + render core, no DB", len(jpegs), *ideal_s, ratio)
    ratio = f"{floor_s[0] / ours_s[0]:.2f}"
    row("JPEG 24 MP: imageapi ingest (scan, thumbnails)", len(jpegs), *ours_s, ratio)
    if shipped:
        ratio = f"{floor_s[0] / best(shipped)[0]:.2f}"
        row("JPEG 24 MP: imageapi scan --full, shipped plugins", len(jpegs), *best(shipped), ratio)
        row("  the same command on an empty library (start-up)", 0, *best(startups))
        # The command renders nothing before it has started, and the work of the
        # hash + render core alone (no index, no other plugin) follows: no scan --full
        # of these files can do better than this, whatever imageapi's own code costs.
        bound = floor_s[0] / (best(startups)[0] + ideal_s[0])
        print(f"{'  best scan --full could reach: start-up, then the core alone':56}"
              f"{'':38}{bound:7.2f}")  # fmt: skip

    for label, paths, folder, toml in others:
        on_all_cores(paths, lambda p: p.read_bytes())
        cores, runs = [], []
        for _ in range(args.rounds):
            cores.append(timed(partial(on_all_cores, paths, render_thumb)))
            elapsed, hashed, rows = ingest(base, folder, toml)
            assert rows == {"done": len(paths)}, rows
            runs.append((elapsed, LAST_CPU[0]))
        if "GIF" not in label:
            row(f"{label}: render core", len(paths), *best(cores))
        row(f"{label}: imageapi ingest", len(paths), *best(runs))

    cpu_ratio = floor_s[1] / ours_s[1]
    print(f"\nJPEG ingest / floor: {floor_s[0] / ours_s[0]:.3f} by wall time,"
          f" {cpu_ratio:.3f} by CPU time (goal >= 0.90)")  # fmt: skip
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
