"""Serving benchmark: thumbnails and originals under 64 connections, against nginx and a
bare Litestar route serving the same bytes, all measured with wrk in the same run.

    .venv/bin/python tests/benchmarks/serving.py [--workers 2] [--seconds 10]
        [--connections 64] [--rounds 1] [--keep DIR]

Needs ``wrk`` and ``nginx`` (the distribution's packages; benchmarks only, never the
default install). Builds a small library (one 640x480 photo for thumbnails, one ~6 MB
photo for originals), scans it with the shipped plugins so the thumbnail is already
rendered, then runs three servers on 127.0.0.1:

* imageapi: ``imageapi serve --workers N --no-scan``, ``GET /image?path=...&size=thumb``
  and ``GET /image?path=big.jpg`` with a bearer token;
* bare Litestar: one route returning the thumbnail's bytes and one the original's (each
  read once at start-up, so no file is read while serving), the same uvicorn stack
  (uvloop, httptools) and process count: the framework's ceiling;
* nginx: the same two files as static files, ``worker_processes N``.

The three servers run at once and the six cases take turns, ``--rounds`` times, so that
load from elsewhere falls on every case alike (one case after another, a burst could
decide a ratio: originals measured 0.72 and 1.08 of nginx in two runs of the same code).
Prints each case's median requests/s, p99 latency and bytes/s, and imageapi's ratio to each
reference (the issue's goals: thumbnails >= 0.5 of bare Litestar with p99 <= 50 ms;
originals >= 0.8 of nginx's bytes per second).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

BARE_APP = """
import os
from litestar import Litestar, get, Response
BODY = open(os.environ["BENCH_FILE"], "rb").read()
ORIGINAL = open(os.environ["BENCH_ORIGINAL"], "rb").read()

@get("/image", media_type="image/jpeg")
async def image() -> Response[bytes]:
    return Response(BODY, media_type="image/jpeg")

@get("/original", media_type="image/jpeg")
async def original() -> Response[bytes]:
    return Response(ORIGINAL, media_type="image/jpeg")

app = Litestar([image, original])
"""

NGINX_CONF = """
worker_processes {workers};
pid {home}/nginx.pid;
error_log {home}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


#: ``imageapi`` as a command, from this tree whatever is installed
CLI = [sys.executable, "-c", "from kernel.cli import main; main()"]


def server_env(home: Path, port: int, library: Path, **more: str) -> dict[str, str]:
    """The environment of an ``imageapi`` command run by a benchmark: its data under
    ``home``, the shipped plugins.toml, quiet logs, no metrics listener (``more`` adds
    or overrides variables)."""
    return {
        **os.environ,
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(home / "data"),
        "IMAGEAPI_CONFIG": str(REPO / "plugins.toml"),
        "BIND_URL": f"127.0.0.1:{port}",
        "LOG_LEVEL": "warning",
        "METRICS_BIND": "off",
        "PYTHONPATH": str(REPO),
        **more,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, tries: int = 600) -> None:
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and all its descendants so far."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{pid}/task").glob("*"):
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str], server: int
) -> dict[str, float]:
    """wrk's figures, and the server's CPU time per request (steadier than throughput on
    a machine doing other work: it says what the server would do with the cores alone)."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    before = cpu_seconds(server)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(server) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    scale = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}[transfer.group(2)]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "cpu_ms": used * 1000 / max(done, 1),
        "rps": rps,
        "bytes_per_s": float(transfer.group(1)) * scale,
        "p99_ms": float(p99.group(1)) * unit,
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def build_library(home: Path) -> Path:
    library = home / "library"
    library.mkdir(parents=True)
    rng = np.random.default_rng(1)
    # Noise compresses badly, so the thumbnail is the size of a real one (~14 kB) and
    # the original ~6 MB.
    small = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    Image.fromarray(small).save(library / "thumb-source.jpg", quality=90)
    big = rng.integers(0, 256, (2000, 2600, 3), dtype=np.uint8)
    Image.fromarray(big).save(library / "big.jpg", quality=90)
    return library


def start(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="turns of every case")
    parser.add_argument("--keep", type=Path)
    opts = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk nginx)")
    home = opts.keep or Path(tempfile.mkdtemp(prefix="imageapi-serving-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # mkdtemp's 0700 kept nginx's workers (another user) out: 403s
    library = build_library(home) if not (home / "library").exists() else home / "library"
    port = free_port()
    env = server_env(home, port, library)
    subprocess.run([*CLI, "scan"], env=env, cwd=home, check=True, capture_output=True)
    subprocess.run(
        [*CLI, "user", "add", "bench", "--password-stdin"],
        env=env, cwd=home, input=b"bench-password\n", capture_output=True,
    )  # fmt: skip
    servers: list[subprocess.Popen] = []
    try:
        cases, thumb_size = start_servers(opts, home, library, env, port, servers)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for _ in range(opts.rounds):  # the cases take turns: drift hits them alike
            for name, (url, headers, pid) in cases.items():
                samples[name].append(wrk(url, opts.seconds, opts.connections, headers, pid))
    finally:
        for server in servers:
            stop(server)
    results = {name: median_run(runs) for name, runs in samples.items()}
    report(opts, results, thumb_size, (library / "big.jpg").stat().st_size)
    if opts.keep is None:
        shutil.rmtree(home, ignore_errors=True)


def start_servers(
    opts: argparse.Namespace,
    home: Path,
    library: Path,
    env: dict[str, str],
    port: int,
    servers: list[subprocess.Popen],
) -> tuple[dict[str, tuple[str, dict[str, str], int]], int]:
    """imageapi, the bare Litestar app and nginx, all up at once (each added to
    ``servers`` as it starts): every case as (URL, headers, server pid), and the size
    of the thumbnail."""
    imageapi = start([*CLI, "serve", "--no-scan", "--workers", str(opts.workers)],
                     env, home / "imageapi.log", home)  # fmt: skip
    servers.append(imageapi)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/health")
    login = {"username": "bench", "password": "bench-password"}
    auth = {"Authorization": f"Bearer {httpx.post(f'{base}/login', json=login).json()['token']}"}
    thumb_url = f"{base}/image?path=thumb-source.jpg&size=thumb"
    thumb = httpx.get(thumb_url, headers=auth)
    thumb.raise_for_status()
    (home / "static").mkdir(exist_ok=True)
    (home / "static" / "thumb.jpg").write_bytes(thumb.content)
    shutil.copy(library / "big.jpg", home / "static" / "big.jpg")

    bare_port = free_port()
    (home / "bare_app.py").write_text(BARE_APP)
    bare_env = {
        **env,
        "BENCH_FILE": str(home / "static" / "thumb.jpg"),
        "BENCH_ORIGINAL": str(home / "static" / "big.jpg"),
        "PYTHONPATH": str(home),
    }
    bare = start(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port),
         "--workers", str(opts.workers), "--log-level", "warning", "--no-access-log"],
        bare_env, home / "bare.log", home,
    )  # fmt: skip
    servers.append(bare)
    bare_url = f"http://127.0.0.1:{bare_port}"
    wait_up(f"{bare_url}/image")

    nginx_port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(workers=opts.workers, home=home, port=nginx_port, root=home / "static")
    )
    nginx = start(["nginx", "-c", str(conf), "-g", "daemon off;"], env, home / "nginx.log", home)
    servers.append(nginx)
    static = f"http://127.0.0.1:{nginx_port}"
    wait_up(f"{static}/thumb.jpg")
    cases = {
        "imageapi thumb": (thumb_url, auth, imageapi.pid),
        "bare litestar thumb": (f"{bare_url}/image", {}, bare.pid),
        "nginx thumb": (f"{static}/thumb.jpg", {}, nginx.pid),
        "imageapi original": (f"{base}/image?path=big.jpg", auth, imageapi.pid),
        "bare litestar original": (f"{bare_url}/original", {}, bare.pid),
        "nginx original": (f"{static}/big.jpg", {}, nginx.pid),
    }
    return cases, len(thumb.content)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over a case's runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def report(
    opts: argparse.Namespace, results: dict[str, dict[str, float]], thumb_size: int,
    big_size: int,
) -> None:  # fmt: skip
    print(f"{opts.workers} processes, {opts.connections} connections, {opts.seconds} s each,"
          f" median of {opts.rounds} rounds taking turns;"
          f" thumbnail {thumb_size} bytes, original {big_size} bytes")  # fmt: skip
    print(f"{'case':<22} {'req/s':>10} {'p99 ms':>8} {'MB/s':>9} {'errors':>7} {'CPU ms/req':>11}")
    for name, r in results.items():
        print(f"{name:<22} {r['rps']:>10.0f} {r['p99_ms']:>8.1f}"
              f" {r['bytes_per_s'] / 1e6:>9.1f} {r['errors']:>7.0f}"
              f" {r['cpu_ms']:>11.3f}")  # fmt: skip
    thumb_ratio = results["imageapi thumb"]["rps"] / results["bare litestar thumb"]["rps"]
    nginx_ratio = results["imageapi thumb"]["rps"] / results["nginx thumb"]["rps"]
    original_ratio = (
        results["imageapi original"]["bytes_per_s"] / results["nginx original"]["bytes_per_s"]
    )
    ceiling = (
        results["bare litestar original"]["bytes_per_s"] / results["nginx original"]["bytes_per_s"]
    )
    print(f"thumbnails: {thumb_ratio:.2f} of bare Litestar (goal >= 0.5),"
          f" {nginx_ratio:.3f} of nginx; p99 {results['imageapi thumb']['p99_ms']:.1f} ms"
          " (goal <= 50)")  # fmt: skip
    print(f"originals: {original_ratio:.2f} of nginx's bytes per second (goal >= 0.8);"
          f" the bare route sending them from memory: {ceiling:.2f}")  # fmt: skip
    cpu_ratio = results["bare litestar thumb"]["cpu_ms"] / results["imageapi thumb"]["cpu_ms"]
    print(f"thumbnails by CPU per request: {cpu_ratio:.2f} of bare Litestar")


if __name__ == "__main__":
    main()
