"""HLS benchmark: imageapi's whole path against ffmpeg running the same command line bare.

    .venv/bin/python tests/benchmarks/hls.py [--seconds 60] [--rounds 3] [--keep DIR]

Two 1080p clips (30 fps, with sound): H.264/AAC in MP4, which imageapi remuxes, and
VP9/Opus in WebM, which it transcodes to H.264/AAC. For each, rounds alternate between

* **bare**: the exact argument list imageapi builds (``runner.ffmpeg_args``) run by
  ``subprocess`` in an empty folder; first segment = the moment ``index.m3u8`` appears
  (ffmpeg renames it into place after the first segment), total = ffmpeg's exit;
* **imageapi**: a real app (kernel + hls plugin, SQLite, HTTP through the test client):
  ``POST /video/generate``, then ``GET /video/stream`` (which waits for the first
  segment) answered with a playlist naming a segment = first segment; ``/video/status``
  polled every 100 ms until ``done`` = total (at most one poll late).

Both clocks start before the first request / the process start. Reported: the best
round of each, and imageapi / bare (1.00 = no overhead). The issue's goal is a first
segment within 2 s for the 1080p H.264 clip.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel.media.ffmpeg import ffmpeg_path, run_ffmpeg
from kernel.testing import harness
from plugins.hls import runner
from plugins.hls.settings import HlsSettings

POLL = 0.1
CLIPS = {
    "h264_1080p.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-g", "30",
                       "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "vp9_1080p.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                       "-row-mt", "1", "-b:v", "6M", "-g", "60", "-c:a", "libopus"],
}  # fmt: skip


def make_clips(folder: Path, seconds: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, codec in CLIPS.items():
        path = folder / f"{seconds}s_{name}"
        if not path.exists():
            print(f"encoding {path.name} ...", flush=True)
            run_ffmpeg(
                ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                 "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                 *codec, "-shortest", "-y", str(path)],
                timeout=3600,
            )  # fmt: skip
        made[name] = path
    return made


def bare(path: Path, work: Path) -> tuple[float, float, str]:
    """(first segment, total, mode) of ffmpeg alone with imageapi's arguments."""
    settings = HlsSettings()
    source = runner.inspect(path)
    args = runner.ffmpeg_args(source, path, settings)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    playlist = work / "index.m3u8"
    started = time.perf_counter()
    proc = subprocess.Popen([ffmpeg_path(), *args], cwd=work, stdout=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and playlist.exists():
            first = time.perf_counter() - started
        time.sleep(0.002)
    total = time.perf_counter() - started
    assert proc.returncode == 0, proc.returncode
    return first if first is not None else total, total, source.mode


def through_imageapi(h: object, name: str) -> tuple[float, float, str]:
    """(first segment, total, mode) of the same clip through imageapi's HTTP API."""
    started = time.perf_counter()
    queued = h.post("/video/generate", json={"path": name})  # type: ignore[attr-defined]
    assert queued.status_code == 202, queued.text
    stream = h.get("/video/stream", params={"path": name})  # type: ignore[attr-defined]
    assert stream.status_code == 200, stream.text
    assert any(line and not line.startswith("#") for line in stream.text.splitlines())
    first = time.perf_counter() - started
    while True:
        state = h.get("/video/status", params={"path": name}).json()  # type: ignore[attr-defined]
        if state["status"] in ("done", "failed"):
            break
        time.sleep(POLL)
    total = time.perf_counter() - started
    assert state["status"] == "done", state
    return first, total, state["mode"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse/keep the encoded clips here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="imageapi-hls-bench-"))
    clips = make_clips(args.keep or base / "clips", args.seconds)
    results: dict[str, dict[str, list[tuple[float, float, str]]]] = {}
    for name, path in clips.items():
        path.read_bytes()  # page cache, for both contenders
        results[name] = {"bare": [], "imageapi": []}
        for n in range(args.rounds):
            results[name]["bare"].append(bare(path, base / "bare"))
            run_dir = base / f"run-{name}-{n}"
            library = run_dir / "library"
            library.mkdir(parents=True)
            (library / name).hardlink_to(path)
            toml = "[plugins.hls]\npregenerate = false\n"
            with harness(run_dir, ["hls"], plugins_toml=toml, library=library) as h:
                h.scan()
                results[name]["imageapi"].append(through_imageapi(h, name))
            shutil.rmtree(run_dir, ignore_errors=True)

    print(f"\n{args.seconds} s 1080p30 clips, best of {args.rounds} rounds (seconds)\n")
    head = f"{'clip':18}{'mode':>10} | {'first segment':^29} | {'total':^29}"
    print(head)
    columns = f"{'bare':>9}{'imageapi':>10}{'ratio':>9}"
    sub = f"{'':28} | {columns} | {columns}"
    print(sub)
    print("-" * len(sub))
    for name, runs in results.items():
        b_first = min(r[0] for r in runs["bare"])
        b_total = min(r[1] for r in runs["bare"])
        i_first = min(r[0] for r in runs["imageapi"])
        i_total = min(r[1] for r in runs["imageapi"])
        mode = runs["imageapi"][0][2]
        print(
            f"{name:18}{mode:>10} | {b_first:9.3f}{i_first:10.3f}{i_first / b_first:9.2f}"
            f" | {b_total:9.3f}{i_total:10.3f}{i_total / b_total:9.2f}"
        )
    h264_first = min(r[0] for r in results["h264_1080p.mp4"]["imageapi"])
    verdict = "met" if h264_first <= 2.0 else "MISSED"
    print(f"\ngoal: first H.264 1080p segment within 2 s of the request: {h264_first:.3f} s"
          f" ({verdict})")  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
