"""``POST /insights/chat/stream`` on a live uvicorn, read by a real SSE client as the
events arrive: text reaches the client while the backend is still answering, a client
that hangs up cancels the backend call and leaves the transcript as it was, and ten
concurrent turns on one insight are all kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from conftest import env_for
from insights_fakes import Say
from live_app import FILE, Live, live

pytestmark = pytest.mark.db
WHERE = {"path": FILE}


def sse(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """``(event, data)`` as each event's blank line arrives."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


def history(base: Live) -> list[dict]:
    answer = httpx.get(f"{base.url}/insights/chat/history", params=WHERE, headers=base.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"]


def stream(client: httpx.Client, base: Live, text: str, **body):
    return client.stream(
        "POST",
        f"{base.url}/insights/chat/stream",
        json={"file_path": FILE, "user_message": text, **body},
        headers=base.headers,
        timeout=60,
    )


def test_events_arrive_as_the_backend_streams(tmp_path, photo, ollama):
    with live(tmp_path, env_for(ollama), fake=ollama) as base:
        ollama.script = [
            Say("Let me count.", [("count_beans", {"n": 2})]),
            Say("There were four beans by the lake."),
        ]
        ollama.hold = True  # every answer waits before its last chunk until released
        seen: list[tuple[str, dict]] = []
        finished_at_first_text = None
        with httpx.Client() as client, stream(client, base, "Beans?") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for event, data in sse(response):
                seen.append((event, data))
                if event == "text" and finished_at_first_text is None:
                    finished_at_first_text = ollama.finished
                    ollama.release_last.set()
        # The first text event reached the client while the model had not finished.
        assert finished_at_first_text == 0
        names = [e for e, _ in seen]
        assert names[0] == "iteration_start" and names[-1] == "done"
        assert "error_message" not in names and "truncated" not in names
        first_call = names.index("tool_call")
        assert set(names[1:first_call]) == {"text"}
        assert names[first_call : first_call + 3] == ["tool_call", "tool_result", "iteration_start"]
        assert seen[0][1] == {"iteration": 1}
        assert seen[first_call][1] == {"name": "count_beans", "arguments": {"n": 2}}
        assert seen[first_call + 1][1] == {"name": "count_beans", "result": '{"beans":4}'}
        texts = [d["delta"] for e, d in seen if e == "text"]
        assert "".join(texts) == "Let me count.There were four beans by the lake."
        done = seen[-1][1]
        assert done["reply"] == "There were four beans by the lake." and done["iterations"] == 2
        assert done["tools"] == [{"name": "count_beans", "arguments": {"n": 2},
                                  "result": '{"beans":4}'}]  # fmt: skip
        assert history(base)[-1]["content"] == "There were four beans by the lake."


def test_a_client_that_hangs_up_cancels_the_turn(tmp_path, photo, ollama):
    with live(tmp_path, env_for(ollama), fake=ollama) as base:
        before = history(base)
        ollama.script = [Say("This answer is never finished.")]
        ollama.hold = True  # and never released: only a hang-up ends it
        with httpx.Client() as client, stream(client, base, "Go on") as response:
            _event, data = next(e for e in sse(response) if e[0] == "text")
            assert data["delta"]
        # The client is gone: the server cancelled the backend call (the fake saw its
        # client hang up), and the transcript is as it was before the turn.
        assert ollama.hung_up.wait(30)
        assert ollama.finished == 0
        assert history(base) == before
        # The lock was released: the next turn runs and is the only one kept.
        ollama.hold = False
        ollama.script = [Say("Finished this time.")]
        turn = httpx.post(
            f"{base.url}/insights/chat",
            json={"file_path": FILE, "user_message": "Again"},
            headers=base.headers,
            timeout=60,
        )
        assert turn.status_code == 200, turn.text
        after = history(base)
        assert after[: len(before)] == before
        assert [m["content"] for m in after[len(before) :]] == ["Again", "Finished this time."]


def test_a_failing_backend_is_an_error_event_and_keeps_the_transcript(tmp_path, photo, ollama):
    with live(tmp_path, env_for(ollama), fake=ollama) as base:
        before = history(base)
        ollama.script = [Say("Half an answer that will be cut.")]
        ollama.mode = "drop_mid"
        with httpx.Client() as client, stream(client, base, "Hm?") as response:
            assert response.status_code == 200
            events = list(sse(response))
        assert events[-1][0] == "error_message"
        assert events[-1][1]["status"] == 502 and "mid-answer" in events[-1][1]["message"]
        assert "done" not in [e for e, _ in events]
        assert history(base) == before
        # Refused before the turn starts: an ordinary HTTP error, not a stream.
        with httpx.Client() as client, stream(client, base, "?", backend="hybrid") as refused:
            refused.read()
            assert refused.status_code == 400


def test_ten_concurrent_turns_are_all_kept(tmp_path, photo, ollama):
    def answer(body):
        question = body["messages"][-1]["content"]
        return Say(f"answer to {question}")

    with live(tmp_path, env_for(ollama), fake=ollama) as base:
        ollama.responder = answer

        async def turns() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base.url, headers=base.headers) as client:
                return await asyncio.gather(*(
                    client.post("/insights/chat", timeout=120,
                                json={"file_path": FILE, "user_message": f"question {n}"})
                    for n in range(10)
                ))  # fmt: skip

        responses = asyncio.run(turns())
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        messages = history(base)[2:]
        questions = [m["content"] for m in messages[0::2]]
        assert sorted(questions) == sorted(f"question {n}" for n in range(10))
        assert [m["content"] for m in messages[1::2]] == [f"answer to {q}" for q in questions]
        # Each turn saw every turn before it: the k-th model call carried k-1 of them.
        sent = [r.body["messages"] for r in ollama.posted("/api/chat")]
        assert sorted(sum(m["role"] == "user" for m in s) for s in sent) == list(range(2, 12))
