"""Chat on a stored transcript (``POST /insights/chat``): append and amend, the rendered
history with its tools, rewind, the routing rules and the context budget — against fake
Ollama and OpenRouter servers speaking their streaming protocols."""

from __future__ import annotations

import json

import pytest
from conftest import MODEL, Context, env_for
from insights_fakes import INSIGHT, Say

from kernel.testing import harness
from plugins.insights import store
from plugins.insights.messages import Message, dump, load

pytestmark = pytest.mark.db
FILE = "trip/lake.jpg"
WHERE = {"path": FILE}


def app(tmp_path, env, **kwargs):
    extra = {"c": Context(tmp_path)}
    return harness(tmp_path, ["insights"], extra_plugins=extra, env=env, **kwargs)


def agentic(h, fake, *before: Say, **body):
    """An agentic insight of the photo, the model calling ``before``'s tools first."""
    fake.script = [*before, Say(INSIGHT)]
    made = h.post("/insights/generate/agentic", json={"file_path": FILE, **body})
    assert made.status_code == 200, made.text
    fake.requests.clear()
    return made.json()


def ask(h, text, **body):
    return h.post("/insights/chat", json={"file_path": FILE, "user_message": text, **body})


def test_a_turn_appends_to_the_transcript_and_the_history_renders_it(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        made = agentic(h, ollama, Say("Counting.", [("count_beans", {"n": 21})]))
        ollama.script = [
            Say("Let me check.", [("count_beans", {"n": 2})]),
            Say("At the lake, at dusk."),
        ]
        response = ask(h, "Where was this?", temperature=0.5)
        assert response.status_code == 200, response.text
        turn = response.json()
        assert turn == {
            "insight_id": made["id"],
            "reply": "At the lake, at dusk.",
            "backend": "local",
            "model": MODEL,
            "iterations": 2,
            "iteration_cap_reached": False,
            "truncated": False,
            "tools": [{"name": "count_beans", "arguments": {"n": 2}, "result": '{"beans":4}'}],
            "amended_insight_id": None,
        }
        first, second = (r.body for r in ollama.posted("/api/chat"))
        assert first["stream"] is True and first["options"] == {"temperature": 0.5}
        assert {"count_beans", "search_photos"} <= {t["function"]["name"] for t in first["tools"]}
        sent = first["messages"]
        assert sent[1]["images"]  # the photo stays in the replayed transcript
        assert sent[-2]["role"] == "system" and "plain prose" in sent[-2]["content"]
        assert sent[-1] == {"role": "user", "content": "Where was this?"}
        assert second["messages"][-1]["tool_name"] == "count_beans"

        chat = h.get("/insights/chat/history", params=WHERE).json()
        assert chat["insight_id"] == made["id"] and chat["backend"] == "local"
        messages = chat["messages"]
        assert [(m["index"], m["role"]) for m in messages] == [
            (0, "user"),
            (1, "assistant"),
            (2, "user"),
            (3, "assistant"),
        ]
        assert messages[0]["images"] == 1 and "Canon EOS R6" in messages[0]["content"]
        assert "tools" not in messages[0] and "tools" not in messages[2]
        assert json.loads(messages[1]["content"])["title"] == "A day at the lake"
        assert messages[1]["tools"] == [
            {"name": "count_beans", "arguments": {"n": 21}, "result": '{"beans":42}'}
        ]
        assert messages[2]["content"] == "Where was this?"
        assert messages[3] == {
            "index": 3,
            "role": "assistant",
            "content": "At the lake, at dusk.",
            "tools": turn["tools"],
        }
        # Appended to the same row: still one insight, title and summary untouched.
        (only,) = h.get("/insights/all", params=WHERE).json()
        assert only["id"] == made["id"] and only["title"] == "A day at the lake"


def test_long_tool_results_are_cut_in_the_history_only(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        agentic(h, ollama)
        ollama.script = [
            Say("", [("echo", {"text": "ab", "times": 2500}), ("echo", {"text": "hi"})]),
            Say("Done."),
        ]
        turn = ask(h, "Echo please").json()
        long, short = turn["tools"]
        assert len(long["result"]) == 2000 and long["result_truncated"] is True
        assert short == {"name": "echo", "arguments": {"text": "hi"}, "result": "hi"}
        (rendered,) = [m for m in h.get("/insights/chat/history", params=WHERE).json()["messages"]
                       if m["index"] == 3]  # fmt: skip
        assert rendered["tools"] == [long, short]
        # The model itself saw the whole result (up to tool_result_max_chars).
        tool = ollama.posted("/api/chat")[1].body["messages"][-2]
        assert len(tool["content"]) == 5000


def test_rewind_drops_a_message_its_scaffolding_and_what_follows(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        agentic(h, ollama)
        ollama.script = [Say("First answer.")]
        ask(h, "First question")
        ollama.script = [Say("", [("count_beans", {"n": 1})]), Say("Second answer.")]
        ask(h, "Second question")
        before = h.get("/insights/chat/history", params=WHERE).json()["messages"]
        assert [m["content"] for m in before[2:]] == [
            "First question",
            "First answer.",
            "Second question",
            "Second answer.",
        ]
        for index, status in ((0, 400), (6, 400), (-1, 400)):
            refused = h.post("/insights/chat/rewind", json={**WHERE, "index": index})
            assert refused.status_code == status, (index, refused.text)
        assert h.get("/insights/chat/history", params=WHERE).json()["messages"] == before

        # Rewinding the second answer drops its tool call and result too.
        kept = h.post("/insights/chat/rewind", json={**WHERE, "index": 5}).json()["messages"]
        assert [m["content"] for m in kept[2:]] == [
            "First question",
            "First answer.",
            "Second question",
        ]
        row = store.current(h.kernel.db, 1, FILE)
        stored = load(row.training_messages)
        assert stored[-1] == Message("user", "Second question")
        assert not any(m.role == "tool" and "beans" in m.content for m in stored[4:])

        # "Try again from here": rewind the question too, then ask another.
        kept = h.post("/insights/chat/rewind", json={**WHERE, "index": 4}).json()["messages"]
        assert [m["content"] for m in kept[2:]] == ["First question", "First answer."]
        assert load(store.current(h.kernel.db, 1, FILE).training_messages)[-1].role == "assistant"
        ollama.script = [Say("Another answer.")]
        ask(h, "Another question")
        sent = ollama.posted("/api/chat")[-1].body["messages"]
        contents = [m["content"] for m in sent if m["role"] in ("user", "assistant")]
        assert "Second question" not in contents and contents[-1] == "Another question"
        missing = h.post("/insights/chat/rewind", json={"path": "trip/none.jpg", "index": 1})
        assert missing.status_code == 404


def test_routing_rules_and_the_model_override(tmp_path, photo, ollama, openrouter):
    ollama.models = {
        MODEL: ["completion", "vision", "tools"],
        "qwen3:8b": ["completion", "tools"],
        "gemma3:1b": ["completion"],
    }
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        agentic(h, ollama)
        refused = ask(h, "Go cloud", backend="hybrid")
        assert refused.status_code == 400 and "local backend" in refused.json()["detail"]
        assert ask(h, "?", backend="cloud").status_code == 400
        assert not ollama.posted("/api/chat") and not openrouter.requests

        ollama.script = [Say("From a smaller model.")]
        turn = ask(h, "Shorter?", model="qwen3:8b").json()
        assert turn["model"] == "qwen3:8b" and turn["backend"] == "local"
        (sent,) = ollama.posted("/api/chat")
        assert sent.body["model"] == "qwen3:8b"
        assert "images" not in sent.body["messages"][1]  # no vision: no picture sent...
        stored = load(store.current(h.kernel.db, 1, FILE).training_messages)
        assert stored[1].images  # ...but the transcript keeps it
        no_tools = ask(h, "Tools?", model="gemma3:1b")
        assert no_tools.status_code == 400 and "cannot call tools" in no_tools.json()["detail"]


def test_a_hybrid_insight_continues_on_openrouter_or_replays_on_ollama(
    tmp_path, photo, ollama, openrouter
):
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        ollama.script = [Say("Two people swim in a lake at dusk.")]  # the description
        made = agentic(h, openrouter, backend="hybrid", model="openai/gpt-4o-mini")
        openrouter.script = [Say("", [("count_beans", {"n": 3})]), Say("Cloudy answer.")]
        turn = ask(h, "What is this?").json()
        assert turn["backend"] == "hybrid" and turn["model"] == "openai/gpt-4o-mini"
        first = openrouter.posted("/api/v1/chat/completions")[0].body
        assert first["model"] == "openai/gpt-4o-mini" and first["stream"] is True
        assert "Two people swim" in first["messages"][1]["content"]
        bad = ask(h, "?", model="some/other-model")
        assert bad.status_code == 400 and "not allowed" in bad.json()["detail"]

        ollama.requests.clear()
        ollama.script = [Say("Local answer.")]
        local = ask(h, "And locally?", backend="local").json()
        assert local["backend"] == "local" and local["model"] == MODEL
        (sent,) = ollama.posted("/api/chat")
        stored = load(store.current(h.kernel.db, 1, FILE).training_messages)
        # Replayed verbatim: the stored messages, then this turn's note and question.
        replayed = [m["content"] for m in sent.body["messages"]]
        assert replayed == [m.content for m in stored[: len(replayed)]]
        assert not any(m.get("images") for m in sent.body["messages"])
        row = store.current(h.kernel.db, 1, FILE)
        assert row.id == made["id"] and row.backend == "hybrid"  # the stored backend stays


def test_amend_stores_a_new_insight_with_a_new_title(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        made = agentic(h, ollama)
        ollama.script = [
            Say("Alice and Bob swam across the lake as the sun set."),
            Say('Title: "Sunset swim"'),
        ]
        response = ask(h, "Mention the sunset", amend=True)
        assert response.status_code == 200, response.text
        turn = response.json()
        new_id = turn["amended_insight_id"]
        assert new_id and new_id != made["id"] and turn["insight_id"] == made["id"]
        sent = ollama.posted("/api/chat")
        assert "new insight's text" in sent[0].body["messages"][-2]["content"]
        assert (
            sent[1].body.get("tools") is None and "title" in sent[1].body["messages"][-1]["content"]
        )
        current = h.get("/insights", params=WHERE).json()
        assert current["id"] == new_id and current["title"] == "Sunset swim"
        assert current["summary"] == "Alice and Bob swam across the lake as the sun set."
        (old,) = [i for i in h.get("/insights/all", params=WHERE).json() if i["id"] == made["id"]]
        assert old["is_current"] is False
        assert len(load(store.by_id(h.kernel.db, made["id"]).training_messages)) == 3
        chat = h.get("/insights/chat/history", params=WHERE).json()
        assert chat["insight_id"] == new_id
        assert [m["content"] for m in chat["messages"][-2:]] == [
            "Mention the sunset",
            "Alice and Bob swam across the lake as the sun set.",
        ]


def test_the_context_budget_drops_the_oldest_tool_pairs(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        agentic(
            h,
            ollama,
            *(Say("", [("echo", {"text": str(n), "times": 3000})]) for n in (1, 2, 3)),
        )
        ollama.script = [Say("Fine.")]
        turn = ask(h, "Summarise", num_ctx=4096).json()
        assert turn["truncated"] is True
        sent = ollama.posted("/api/chat")[-1].body["messages"]
        assert sent[0]["role"] == "system" and sent[1]["images"]  # never dropped
        results = [m["content"][:1] for m in sent if m["role"] == "tool"]
        assert results == ["3"]  # the two oldest pairs went, the newest fits
        assert sum(len(json.dumps(m)) for m in sent if not m.get("images")) < (4096 - 2048) * 4
        history = h.get("/insights/chat/history", params=WHERE).json()["messages"]
        assert [t["arguments"]["text"] for t in history[1]["tools"]] == ["3"]

        ollama.script = [Say("Still here.")]
        tiny = ask(h, "Again", num_ctx=256).json()  # nothing fits: all pairs go, not the rest
        assert tiny["truncated"] is True
        sent = ollama.posted("/api/chat")[-1].body["messages"]
        assert [m["role"] for m in sent][:3] == ["system", "user", "assistant"]
        assert not any(m["role"] == "tool" for m in sent)
        ollama.script = [Say("Roomy.")]
        assert ask(h, "Once more", num_ctx=65536).json()["truncated"] is False


def test_refusals_before_a_turn(tmp_path, photo, ollama):
    with app(tmp_path, {}) as h:
        h.scan()
        for url in ("/insights/chat", "/insights/chat/stream"):
            body = {"file_path": FILE, "user_message": "Hello?"}
            unconfigured = h.post(url, json=body)
            assert unconfigured.status_code == 503, unconfigured.text
            assert "OLLAMA_PRIMARY_URL" in unconfigured.json()["detail"]
    with app(tmp_path / "on", env_for(ollama), library=photo.parents[1]) as h:
        h.scan()
        assert ask(h, "Hello?").status_code == 404  # no insight yet
        empty = h.post("/insights/chat", json={"file_path": FILE, "user_message": ""})
        assert empty.status_code == 400
        row = store.store(
            h.kernel.db, store.NewInsight(1, FILE, None, "t", "s", "local", MODEL, None)
        )
        refused = ask(h, "Hello?")
        assert refused.status_code == 400, refused.text
        assert "no transcript" in refused.json()["detail"]
        store.replace_transcript(h.kernel.db, row.id, dump([]))
        assert ask(h, "Hello?").status_code == 400
        agentic(h, ollama)
        ollama.mode = "error"
        failed = ask(h, "Hello?")
        assert failed.status_code == 502 and "crashed" in failed.json()["detail"]
        ollama.mode = "ok"
        assert len(h.get("/insights/chat/history", params=WHERE).json()["messages"]) == 2
