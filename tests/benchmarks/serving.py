"""Serving benchmark: thumbnails and originals under 64 connections, against nginx and a
bare Litestar route serving the same bytes, all measured with wrk in the same run.

    .venv/bin/python tests/benchmarks/serving.py [--workers 2] [--seconds 10]
        [--connections 64] [--keep DIR]

Needs ``wrk`` and ``nginx`` (the distribution's packages; benchmarks only, never the
default install). Builds a small library (one 640x480 photo for thumbnails, one ~6 MB
photo for originals), scans it with the shipped plugins so the thumbnail is already
rendered, then runs each server in turn on 127.0.0.1:

* imageapi: ``imageapi serve --workers N --no-scan``, ``GET /image?path=...&size=thumb``
  and ``GET /image?path=big.jpg`` with a bearer token;
* bare Litestar: one route returning the thumbnail's bytes and one the original's (each
  read once at start-up, so no file is read while serving), the same uvicorn stack
  (uvloop, httptools) and process count: the framework's ceiling;
* nginx: the same two files as static files, ``worker_processes N``.

Prints requests/s, p99 latency and bytes/s per case, and imageapi's ratio to each
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
    parser.add_argument("--keep", type=Path)
    opts = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk nginx)")
    home = opts.keep or Path(tempfile.mkdtemp(prefix="imageapi-serving-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # mkdtemp's 0700 kept nginx's workers (another user) out: 403s
    library = build_library(home) if not (home / "library").exists() else home / "library"
    python = sys.executable
    port = free_port()
    env = server_env(home, port, library)
    cli = CLI
    subprocess.run([*cli, "scan"], env=env, cwd=home, check=True, capture_output=True)
    subprocess.run(
        [*cli, "user", "add", "bench", "--password-stdin"],
        env=env, cwd=home, input=b"bench-password\n", capture_output=True,
    )  # fmt: skip
    server = start([*cli, "serve", "--no-scan", "--workers", str(opts.workers)],
                   env, home / "imageapi.log", home)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/health")
        login = {"username": "bench", "password": "bench-password"}
        token = httpx.post(f"{base}/login", json=login).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        thumb_url = f"{base}/image?path=thumb-source.jpg&size=thumb"
        thumb = httpx.get(thumb_url, headers=auth)
        thumb.raise_for_status()
        (home / "static").mkdir(exist_ok=True)
        (home / "static" / "thumb.jpg").write_bytes(thumb.content)
        shutil.copy(library / "big.jpg", home / "static" / "big.jpg")
        results = {
            "imageapi thumb": wrk(thumb_url, opts.seconds, opts.connections, auth, server.pid),
            "imageapi original": wrk(
                f"{base}/image?path=big.jpg", opts.seconds, opts.connections, auth, server.pid
            ),
        }
    finally:
        stop(server)

    bare_port = free_port()
    (home / "bare_app.py").write_text(BARE_APP)
    bare_env = {
        **env,
        "BENCH_FILE": str(home / "static" / "thumb.jpg"),
        "BENCH_ORIGINAL": str(home / "static" / "big.jpg"),
        "PYTHONPATH": str(home),
    }
    bare = start(
        [python, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), "--workers",
         str(opts.workers), "--log-level", "warning", "--no-access-log"],
        bare_env, home / "bare.log", home,
    )  # fmt: skip
    try:
        wait_up(f"http://127.0.0.1:{bare_port}/image")
        url = f"http://127.0.0.1:{bare_port}/image"
        results["bare litestar thumb"] = wrk(url, opts.seconds, opts.connections, {}, bare.pid)
        results["bare litestar original"] = wrk(
            url.replace("/image", "/original"), opts.seconds, opts.connections, {}, bare.pid
        )
    finally:
        stop(bare)

    nginx_port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(workers=opts.workers, home=home, port=nginx_port, root=home / "static")
    )
    nginx = start(["nginx", "-c", str(conf), "-g", "daemon off;"], env, home / "nginx.log", home)
    try:
        wait_up(f"http://127.0.0.1:{nginx_port}/thumb.jpg")
        static = f"http://127.0.0.1:{nginx_port}"
        for name, file in (("nginx thumb", "thumb.jpg"), ("nginx original", "big.jpg")):
            results[name] = wrk(f"{static}/{file}", opts.seconds, opts.connections, {}, nginx.pid)
    finally:
        stop(nginx)

    big_size = (library / "big.jpg").stat().st_size
    print(f"{opts.workers} processes, {opts.connections} connections, {opts.seconds} s each;"
          f" thumbnail {len(thumb.content)} bytes, original {big_size} bytes")  # fmt: skip
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
    print(f"thumbnails: {thumb_ratio:.2f} of bare Litestar (goal >= 0.5),"
          f" {nginx_ratio:.3f} of nginx; p99 {results['imageapi thumb']['p99_ms']:.1f} ms"
          " (goal <= 50)")  # fmt: skip
    ceiling = (
        results["bare litestar original"]["bytes_per_s"] / results["nginx original"]["bytes_per_s"]
    )
    print(f"originals: {original_ratio:.2f} of nginx's bytes per second (goal >= 0.8);"
          f" the bare route sending them from memory: {ceiling:.2f}")  # fmt: skip
    cpu_ratio = results["bare litestar thumb"]["cpu_ms"] / results["imageapi thumb"]["cpu_ms"]
    print(f"thumbnails by CPU per request: {cpu_ratio:.2f} of bare Litestar")
    if opts.keep is None:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
