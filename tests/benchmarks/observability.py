"""Observability overhead: ``GET /photos`` p50 with metrics on vs off, and with tracing
exporting (to a local OTLP/HTTP receiver) vs off.

    .venv/bin/python tests/benchmarks/observability.py [--files 5000] [--requests 100]
        [--rounds 10] [--live]

One index (``--files`` rows inserted with SQL, the tags and favorites plugins on) and the
same requests (``limit=100`` pages at changing offsets) through the whole app (Litestar
TestClient: routing, auth, hooks, SQL, JSON) for each case, the cases taking turns for
``--rounds`` rounds so drift hits them alike (many short rounds: on a shared machine,
three rounds of 300 let one burst of load from elsewhere decide a case's p50). The
TestClient is not an ``httpx.HTTPTransport``, so the httpx instrumentation makes no
client span on the test side: what tracing costs here is the server's. Prints each
case's p50 and its ratio to the baseline (the metrics plugin not enabled) against the
goals: metrics within 5 %, tracing within 15 %; beside it, the process's CPU time per
request (every thread: the span exporter's too), which load from other processes
disturbs far less than wall-clock time.

``--live`` measures what a client sees instead: each case is a real ``imageapi serve
--no-scan --workers 1`` process (uvicorn, its own plugins.toml) on 127.0.0.1, and this
process sends the same requests over one keep-alive connection, one at a time; the
CPU column is then the server process's alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from litestar.testing import TestClient

from kernel.app import create_app
from kernel.auth import create_user, issue_token, list_users
from kernel.core import Kernel
from kernel.index import split_rel_path
from kernel.tables import files
from kernel.testing import make_config

REPO = Path(__file__).resolve().parents[2]

PLUGINS = ["tags", "favorites"]
GOALS = {"metrics on": 1.05, "tracing exporting": 1.15, "metrics + tracing": 1.15}


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts and drops every export."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def populate(kernel: Kernel, count: int) -> None:
    now = time.time()
    rows = []
    for n in range(count):
        rel = f"d{n % 50}/p{n:06d}.jpg"
        parent, name = split_rel_path(rel)
        rows.append(
            {
                "library_id": 1, "rel_path": rel, "parent_dir": parent, "name": name,
                "size": 1000 + n, "mtime_ns": n, "media_type": "photo", "status": "present",
                "content_hash": f"{n:064x}", "discovered_at": now, "updated_at": now,
            }
        )  # fmt: skip
    with kernel.db.write() as conn:
        conn.execute(files.insert(), rows)


def measure(
    base: Path, plugins: list[str], env: dict[str, str], requests: int
) -> tuple[list[float], float]:
    """(each timed request's milliseconds, the process's CPU seconds from the end of the
    warm-up to the app's shutdown, exports included)."""
    config = make_config(
        base / "cfg", f"sqlite:///{base / 'bench.db'}", library=base / "library", env=env
    )
    kernel = Kernel(config, only=plugins)
    app = create_app(kernel, background=False)
    user = next(u for u in list_users(kernel.db) if u.username == "bench")
    headers = {"Authorization": f"Bearer {issue_token(config.secret_key, user.id)}"}
    timings = []
    cpu_started = 0.0
    with TestClient(app=app) as client:
        for n in range(30 + requests):
            if n == 30:
                cpu_started = time.process_time()
            params = {"limit": 100, "offset": (n * 100) % 2000, "recursive": "true"}
            started = time.perf_counter()
            response = client.get("/photos", params=params, headers=headers)
            took = time.perf_counter() - started
            assert response.status_code == 200, response.text
            if n >= 30:  # warm-up excluded
                timings.append(took * 1000)
    return timings, time.process_time() - cpu_started


def measure_live(
    base: Path, plugins: list[str], env: dict[str, str], requests: int
) -> tuple[list[float], float]:
    """``measure`` against a real server process: the client's milliseconds, and the
    server's CPU seconds over the timed requests."""
    import tomllib

    import httpx
    from serving import CLI, cpu_seconds, free_port, server_env, start, stop, wait_up

    shipped = tomllib.loads((REPO / "plugins.toml").read_text())["plugins"]
    toml = "".join(
        f"[plugins.{name}]\nenabled = {'true' if name in plugins else 'false'}\n"
        for name in shipped
    )
    live = base / "live"
    live.mkdir(exist_ok=True)
    (live / "plugins.toml").write_text(toml)
    port = free_port()
    variables = server_env(
        live, port, base / "library",
        IMAGEAPI_CONFIG=str(live / "plugins.toml"),
        DATABASE_URL=f"sqlite:///{base / 'bench.db'}",
        **env,
    )  # fmt: skip
    server = start([*CLI, "serve", "--no-scan", "--workers", "1"], variables,
                   live / "server.log", live)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    timings = []
    try:
        wait_up(f"{url}/health")
        with httpx.Client(base_url=url) as client:
            login = {"username": "bench", "password": "password-123"}
            token = client.post("/login", json=login).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            cpu_started = 0.0
            for n in range(30 + requests):
                if n == 30:
                    cpu_started = cpu_seconds(server.pid)
                params = {"limit": 100, "offset": (n * 100) % 2000, "recursive": "true"}
                started = time.perf_counter()
                response = client.get("/photos", params=params, headers=headers)
                took = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if n >= 30:
                    timings.append(took * 1000)
            cpu_used = cpu_seconds(server.pid) - cpu_started
    finally:
        stop(server)
    return timings, cpu_used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--live", action="store_true", help="a real server per case")
    args = parser.parse_args()
    run = measure_live if args.live else measure
    base = Path(tempfile.mkdtemp(prefix="imageapi-bench-obs-"))
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    try:
        (base / "library").mkdir()
        config = make_config(
            base / "cfg", f"sqlite:///{base / 'bench.db'}", library=base / "library"
        )
        kernel = Kernel(config, only=PLUGINS)
        kernel.migrate()
        create_user(kernel.db, "bench", "password-123")
        populate(kernel, args.files)
        kernel.db.dispose()
        cases = {
            "baseline (no metrics plugin)": (PLUGINS, {}),
            "metrics on": ([*PLUGINS, "metrics"], {"METRICS_BIND": "127.0.0.1:0"}),
            "tracing exporting": (
                [*PLUGINS, "metrics"],
                {"METRICS_BIND": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp},
            ),
            "metrics + tracing": (
                [*PLUGINS, "metrics"],
                {"METRICS_BIND": "127.0.0.1:0", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp},
            ),
        }
        results: dict[str, list[float]] = {name: [] for name in cases}
        cpu = dict.fromkeys(cases, 0.0)
        for _ in range(args.rounds):
            for name, (plugins, env) in cases.items():
                timings, cpu_seconds = run(base, plugins, env, args.requests)
                results[name] += timings
                cpu[name] += cpu_seconds
        baseline = statistics.median(results["baseline (no metrics plugin)"])
        base_name = "baseline (no metrics plugin)"
        base_cpu = cpu[base_name] * 1000 / len(results[base_name])
        how = "a live server per case" if args.live else "in process (TestClient)"
        print(f"GET /photos (limit=100) on {args.files} files, {args.rounds} x {args.requests},"
              f" {how}")  # fmt: skip
        for name, timings in results.items():
            p50 = statistics.median(timings)
            ratio = p50 / baseline
            goal = GOALS.get(name)
            verdict = (
                ""
                if goal is None
                else f"  goal <= {goal:.2f}: {'ok' if ratio <= goal else 'MISSED'}"
            )
            per_request = cpu[name] * 1000 / len(timings)
            print(
                f"  {name:<30} p50 {p50:7.2f} ms  x{ratio:.3f}{verdict}"
                f"  | CPU {per_request:.2f} ms/request x{per_request / base_cpu:.3f}"
            )
    finally:
        sink.shutdown()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
