"""Chat benchmark: how late a backend's token reaches the client as an SSE event, and
how long the rendered history of a long chat takes.

    .venv/bin/python tests/benchmarks/chat.py [--turns 20] [--tokens 50] [--renders 100]

A real app (kernel + insights, uvicorn on 127.0.0.1 in a thread, SQLite) and the tests'
fake Ollama (real HTTP, NDJSON), streaming each answer ``--tokens`` chunks 5 ms apart.

1. **Token → SSE event.** For every content chunk the fake writes, the time from its
   write (``perf_counter`` in the fake) to the ``text`` event's arrival at an httpx
   client reading ``POST /insights/chat/stream`` (same process, same clock), over
   ``--turns`` turns. Baseline: the same chunks read by httpx straight from the fake.
   Goal: p50 <= 5 ms.
2. **History of 200 messages.** A transcript of 100 turns (every other answer with a
   tool call and a 3,000-character result) stored on the insight; ``GET
   /insights/chat/history`` timed ``--renders`` times. Baseline: ``GET /insights`` (the
   same row, no transcript rendering). Goal: p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "insights"))

import httpx  # noqa: E402
from insights_fakes import FakeOllama, Say  # noqa: E402
from live_app import FILE, live  # noqa: E402

from kernel.testing import make_jpeg  # noqa: E402
from plugins.insights.messages import Message, ToolCall, dump, load  # noqa: E402

MODEL = "llava:7b"
PIECE = "word " + "x" * 2  # seven characters: one chunk each (the fake splits by 7)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def sse_text_arrivals(client: httpx.Client, base: Any, text: str) -> list[float]:
    arrivals: list[float] = []
    body = {"file_path": FILE, "user_message": text}
    with client.stream("POST", f"{base.url}/insights/chat/stream", json=body,
                       headers=base.headers, timeout=60) as response:  # fmt: skip
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "text":
                    arrivals.append(time.perf_counter())
                elif event == "error_message":
                    raise RuntimeError(next(response.iter_lines()))
    return arrivals


def baseline_arrivals(client: httpx.Client, ollama: FakeOllama) -> list[float]:
    arrivals: list[float] = []
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with client.stream("POST", f"{ollama.url}/api/chat", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line and not json.loads(line)["done"]:
                arrivals.append(time.perf_counter())
    return arrivals


def token_latency(args: argparse.Namespace, tmp: Path) -> None:
    with FakeOllama() as ollama:
        env = {"OLLAMA_PRIMARY_URL": ollama.url, "OLLAMA_PRIMARY_MODEL": MODEL,
               "NOMINATIM_URL": "http://127.0.0.1:9"}  # fmt: skip
        make_jpeg(tmp / "library" / FILE, size=(320, 200))
        with live(tmp, env, fake=ollama) as base, httpx.Client() as client:
            ollama.default = Say(PIECE * args.tokens)
            ollama.piece_delay = 0.005
            served: list[float] = []
            direct: list[float] = []
            for turn in range(args.turns + 1):
                ollama.sent_at.clear()
                arrivals = sse_text_arrivals(client, base, f"question {turn}")
                sent = list(ollama.sent_at)
                assert len(arrivals) == len(sent) == args.tokens, (len(arrivals), len(sent))
                if turn:  # the first turn warms connections and caches
                    served += [a - s for a, s in zip(arrivals, sent, strict=True)]
                ollama.sent_at.clear()
                arrivals = baseline_arrivals(client, ollama)
                sent = list(ollama.sent_at)
                if turn:
                    direct += [a - s for a, s in zip(arrivals, sent, strict=True)]
    p50, p99 = percentile(served, 0.5), percentile(served, 0.99)
    b50, b99 = percentile(direct, 0.5), percentile(direct, 0.99)
    print(f"token -> SSE event ({len(served)} tokens over {args.turns} turns):")
    print(f"  imageapi: p50 {ms(p50)}, p99 {ms(p99)}  (goal p50 <= 5 ms)")
    print(f"  baseline (httpx straight from the fake): p50 {ms(b50)}, p99 {ms(b99)}")
    print(f"  ratio p50: {p50 / b50:.1f}x; added p50 {ms(p50 - b50)}")


def long_transcript(start: list[Message], turns: int) -> list[Message]:
    messages = list(start)
    for n in range(turns):
        messages.append(Message("system", "The user now talks with you about this photo."))
        messages.append(Message("user", f"Question {n}: what else happened that day?"))
        if n % 2:
            call = ToolCall("call_0", "search_photos", {"date_from": "2024-07-14", "limit": 20})
            messages.append(Message("assistant", "", tool_calls=[call]))
            messages.append(Message("tool", "y" * 3000, tool_call_id="call_0",
                                    name="search_photos"))  # fmt: skip
        messages.append(Message("assistant", f"Answer {n}: " + "a sentence. " * 20))
    return messages


def history_render(args: argparse.Namespace, tmp: Path) -> None:
    with FakeOllama() as ollama:
        env = {"OLLAMA_PRIMARY_URL": ollama.url, "OLLAMA_PRIMARY_MODEL": MODEL,
               "NOMINATIM_URL": "http://127.0.0.1:9"}  # fmt: skip
        make_jpeg(tmp / "library" / FILE, size=(320, 200))
        with live(tmp, env, fake=ollama) as base, httpx.Client() as client:
            from sqlalchemy import create_engine, select

            from plugins.insights.tables import photo_insights

            engine = create_engine(f"sqlite:///{tmp / 'imageapi.db'}")
            with engine.begin() as conn:
                row = conn.execute(select(photo_insights)).one()
                messages = long_transcript(load(row.training_messages)[:3], 99)
                conn.execute(photo_insights.update().values(training_messages=dump(messages)))
            engine.dispose()

            def timed(url: str, params: dict[str, str]) -> list[float]:
                times = []
                for n in range(args.renders + 5):
                    started = time.perf_counter()
                    answer = client.get(url, params=params, headers=base.headers)
                    elapsed = time.perf_counter() - started
                    assert answer.status_code == 200, answer.text
                    if n >= 5:
                        times.append(elapsed)
                return times

            rendered = client.get(f"{base.url}/insights/chat/history", params={"path": FILE},
                                  headers=base.headers).json()["messages"]  # fmt: skip
            history = timed(f"{base.url}/insights/chat/history", {"path": FILE})
            current = timed(f"{base.url}/insights", {"path": FILE})
    size = len(dump(messages))
    print(f"history of {len(rendered)} rendered messages ({len(messages)} stored, {size} bytes):")
    print(f"  GET /insights/chat/history: p50 {ms(statistics.median(history))},"
          f" p99 {ms(percentile(history, 0.99))}  (goal p50 <= 20 ms)")  # fmt: skip
    print(f"  baseline GET /insights (same row): p50 {ms(statistics.median(current))}")
    print(f"  ratio p50: {statistics.median(history) / statistics.median(current):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--renders", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        token_latency(args, Path(one))
        history_render(args, Path(two))


if __name__ == "__main__":
    main()
