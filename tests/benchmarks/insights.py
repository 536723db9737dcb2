"""Insights benchmark: the server's own overhead per agentic iteration, and the event
loop's latency while slow LLM calls are in flight.

    .venv/bin/python tests/benchmarks/insights.py [--calls 100] [--concurrency 10]
        [--slow-seconds 5] [--probes 300]

A real app (kernel + insights, exif, tags, thumbnails; SQLite; HTTP through the Litestar
test client) and a fake Ollama on 127.0.0.1 (the tests' fake: real HTTP, NDJSON).

1. **Overhead per iteration.** Every agentic call makes two model calls: the first asks
   for a tool (``get_tags``), the second answers with the JSON insight. The fake answers
   at once. Baseline: the same two ``/api/chat`` requests (same bodies, picture included)
   sent straight to the fake with httpx, at the same concurrency. Overhead per iteration
   = (imageapi's time per call - the baseline's) / 2, at ``--concurrency`` calls at
   once, on a second pass over the photos (the first pass, also printed, includes the
   thumbnailer rendering each preview). Goal: <= 20 ms.
2. **Event loop under slow calls.** ``--concurrency`` agentic calls against a fake that
   takes ``--slow-seconds`` per answer; from their start until the first call ends,
   ``GET /health`` is timed every 10 ms (so the calls' own preparation — context,
   picture, request bodies — is inside the window). Baseline: ``--probes`` probes with
   nothing in flight. Goal: p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "insights"))

import httpx  # noqa: E402
from insights_fakes import INSIGHT, FakeOllama, Say  # noqa: E402

from kernel.testing import harness, make_jpeg  # noqa: E402

MODEL = "llava:7b"
PLUGINS = ["insights", "exif", "tags", "thumbnails"]
PROBE_SPACING = 0.01


def script(body: dict[str, Any]) -> Say:
    """A tool call first, then the answer (a call's second request carries a tool result)."""
    if any(m.get("role") == "tool" for m in body["messages"]):
        return Say(INSIGHT)
    return Say("", [("get_tags", {"path": body["messages"][1]["content"].split()[6]})])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_calls(h: Any, paths: list[str], concurrency: int) -> float:
    """Seconds for all agentic calls, ``concurrency`` at a time."""

    def one(path: str) -> None:
        response = h.post("/insights/generate/agentic", json={"file_path": path})
        assert response.status_code == 200, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - started


async def baseline_calls(url: str, bodies: list[list[dict[str, Any]]], concurrency: int) -> float:
    """The same model requests straight to the fake, ``concurrency`` calls at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(requests: list[dict[str, Any]]) -> None:
            async with gate:
                for body in requests:
                    response = await client.post(url + "/api/chat", json=body)
                    response.raise_for_status()
                    async for _ in response.aiter_lines():
                        pass

        started = time.perf_counter()
        await asyncio.gather(*(one(r) for r in bodies))
        return time.perf_counter() - started


def probe(h: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = h.client.get("/health")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--image-max-side", type=int, default=1024)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FakeOllama() as ollama:
        tmp_path = Path(tmp)
        library = tmp_path / "library"
        paths = [f"day/photo_{n:03d}.jpg" for n in range(args.calls)]
        for n, path in enumerate(paths):
            make_jpeg(library / path, size=(1600, 1200), color=(n % 255, 90, 160))
        env = {
            "OLLAMA_PRIMARY_URL": ollama.url,
            "OLLAMA_PRIMARY_MODEL": MODEL,
            "NOMINATIM_URL": "http://127.0.0.1:9",
        }
        toml = f"[plugins.insights]\nimage_max_side = {args.image_max_side}\n"
        with harness(tmp_path, PLUGINS, env=env, library=library, plugins_toml=toml) as h:
            h.scan()
            h.run(h.kernel.hooks.drain_backlog, 10_000)
            ollama.responder = script
            cold = run_calls(h, paths, args.concurrency)  # previews rendered on demand
            gc.collect()
            gc.freeze()  # as ``imageapi serve`` does once started (kernel.app.create_app)
            ollama.requests.clear()

            # 1. overhead per iteration (previews now on disk, as for any photo seen once)
            elapsed = run_calls(h, paths, args.concurrency)
            chats = [r.body for r in ollama.posted("/api/chat")]
            by_call: dict[str, list[dict[str, Any]]] = {}
            for body in chats:
                by_call.setdefault(body["messages"][1]["content"], []).append(body)
            base = asyncio.run(baseline_calls(ollama.url, list(by_call.values()), args.concurrency))
            per_call = elapsed / args.calls * 1000
            base_per_call = base / args.calls * 1000
            overhead = (per_call - base_per_call) / 2
            print(
                f"agentic calls: {args.calls}, {args.concurrency} at a time, 2 iterations each,"
                f" image_max_side {args.image_max_side}"
            )
            print(f"  first pass   {cold / args.calls * 1000:8.1f} ms per call (previews rendered)")
            print(f"  imageapi     {per_call:8.1f} ms per call (wall / calls)")
            print(f"  bare backend {base_per_call:8.1f} ms per call (same requests, httpx)")
            print(f"  ratio        {per_call / base_per_call:8.2f}x")
            print(f"  overhead     {overhead:8.1f} ms per iteration  (goal <= 20 ms)")

            # 2. event loop latency with slow calls in flight
            idle = probe(h, args.probes)
            ollama.requests.clear()
            ollama.delay = args.slow_seconds
            pool = ThreadPoolExecutor(args.concurrency)
            futures = [
                pool.submit(h.post, "/insights/generate/agentic", json={"file_path": p})
                for p in paths[: args.concurrency]
            ]
            busy: list[float] = []
            while not any(f.done() for f in futures):  # from the first call to the first answer
                busy.extend(probe(h, 1))
                time.sleep(PROBE_SPACING)
            posted = len(ollama.posted("/api/chat"))
            for future in futures:
                assert future.result().status_code == 200
            pool.shutdown()
            print(
                f"GET /health: {len(idle)} idle, then {len(busy)} every {PROBE_SPACING * 1000:g} ms"
                f" while {args.concurrency} calls of {args.slow_seconds:g} s were in flight"
                f" ({posted} model requests sent meanwhile)"
            )
            for name, times in (("idle", idle), ("busy", busy)):
                print(
                    f"  {name}  p50 {statistics.median(times):6.2f} ms"
                    f"  p99 {percentile(times, 0.99):6.2f} ms  max {max(times):6.2f} ms"
                )
            ratio = percentile(busy, 0.99) / percentile(idle, 0.99)
            print(f"  busy/idle p99 {ratio:.2f}x  (goal: busy p99 <= 20 ms)")


if __name__ == "__main__":
    main()
