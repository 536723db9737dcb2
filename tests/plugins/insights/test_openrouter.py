"""OpenRouter (OpenAI chat completions over SSE) in the hybrid backend: the local model
describes the picture, the loop runs on OpenRouter; the allowlist; the key kept secret."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from conftest import KEY, MODEL, Context, env_for
from insights_fakes import INSIGHT, Say

from kernel.testing import harness
from plugins.insights import store
from plugins.insights.messages import Message, load
from plugins.insights.ollama import Ollama
from plugins.insights.openrouter import OpenRouter
from plugins.insights.settings import Environment

pytestmark = pytest.mark.db
BODY = {"file_path": "trip/lake.jpg", "backend": "hybrid"}


def app(tmp_path, env):
    return harness(tmp_path, ["insights"], extra_plugins={"context": Context(tmp_path)}, env=env)


def test_hybrid_describes_locally_and_loops_on_openrouter(tmp_path, photo, ollama, openrouter):
    ollama.default = Say("Two people swim in a lake at dusk; pine trees behind them.")
    openrouter.script = [
        Say("Checking.", [("count_beans", {"n": 5}), ("get_insight", {"path": "trip/lake.jpg"})]),
        Say(INSIGHT),
    ]
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        response = h.post("/insights/generate/agentic", json={**BODY, "temperature": 0.5})
        assert response.status_code == 200, response.text
        made = response.json()
        assert made["backend"] == "hybrid" and made["model"] == "anthropic/claude-haiku-4-5"
        assert made["tools_called"] == ["count_beans", "get_insight"]

        (describe,) = ollama.posted("/api/chat")
        assert describe.body["messages"][0]["images"] and "tools" not in describe.body
        first, second = openrouter.posted("/api/v1/chat/completions")
        headers = {k.lower(): v for k, v in first.headers.items()}
        assert headers["authorization"] == f"Bearer {KEY}"
        assert headers["http-referer"] == "https://photos.example"
        assert headers["x-title"] == "ImageApi"
        sent = first.body
        assert sent["stream"] is True and sent["temperature"] == 0.5
        assert sent["model"] == "anthropic/claude-haiku-4-5"
        assert {t["function"]["name"] for t in sent["tools"]} >= {"count_beans", "search_photos"}
        user = sent["messages"][1]
        assert isinstance(user["content"], str)  # no image: the description is inlined
        assert "pine trees behind them" in user["content"]
        # The streamed tool calls (arguments in two pieces each) went back as OpenAI wants.
        assistant, bean, insight = second.body["messages"][2:5]
        assert assistant["tool_calls"][0]["function"] == {
            "name": "count_beans",
            "arguments": '{"n":5}',
        }
        assert bean == {"role": "tool", "tool_call_id": "call_0", "content": '{"beans":10}'}
        assert insight["tool_call_id"] == "call_1"
        assert "no insight has been written" in json.loads(insight["content"])["error"]
        # The stored transcript replays on either backend: text only.
        plugin = h.kernel.plugin("insights")
        row = h.run(plugin.service.file, None, "trip/lake.jpg")
        assert row is not None
        stored = store.current(h.kernel.db, row.library_id, row.rel_path)
        messages = load(stored.training_messages)
        assert [m.role for m in messages] == [
            "system", "user", "assistant", "tool", "tool", "assistant"
        ]  # fmt: skip
        assert not any(m.images for m in messages)


def test_the_allowlist_decides_which_models_a_client_may_pick(tmp_path, photo, ollama, openrouter):
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        refused = h.post("/insights/generate/agentic", json={**BODY, "model": "openai/o3-pro"})
        assert refused.status_code == 400
        assert "'openai/o3-pro' is not allowed" in refused.json()["detail"]
        assert not openrouter.requests and not ollama.posted("/api/chat")
        allowed = h.post("/insights/generate/agentic", json={**BODY, "model": "openai/gpt-4o-mini"})
        assert allowed.status_code == 200 and allowed.json()["model"] == "openai/gpt-4o-mini"
        assert openrouter.requests[-1].body["model"] == "openai/gpt-4o-mini"
        listed = h.get("/insights/openrouter/models").json()
        assert listed == {
            "models": ["openai/gpt-4o-mini", "google/gemini-2.5-flash"],
            "default_model": "anthropic/claude-haiku-4-5",
            "configured": True,
        }


def test_the_key_never_reaches_logs_errors_or_responses(
    tmp_path, photo, ollama, openrouter, caplog
):
    openrouter.mode = "error"  # its error body echoes the Authorization header
    with caplog.at_level(logging.DEBUG), app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        response = h.post("/insights/generate/agentic", json=BODY)
        assert response.status_code == 502
        assert "No auth credentials found" in response.json()["detail"]
        assert "[redacted]" in response.json()["detail"]
        listed = h.get("/insights/openrouter/models")
        everything = [response.text, listed.text, caplog.text]
        everything += [r.getMessage() for r in caplog.records]
        assert openrouter.requests  # the key was sent, to OpenRouter only
        for text in everything:
            assert KEY not in text
        plugin = h.kernel.plugin("insights")
        assert KEY not in repr(plugin.service.openrouter)


def test_broken_tool_arguments_and_a_dropped_stream(tmp_path, photo, ollama, openrouter):
    openrouter.script = [Say("", [("count_beans", '{"n": 5')]), Say(INSIGHT)]
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        response = h.post("/insights/generate/agentic", json=BODY)
        assert response.status_code == 200, response.text
        tool = openrouter.posted("/api/v1/chat/completions")[1].body["messages"][-1]
        assert "must be a JSON object" in json.loads(tool["content"])["error"]
        openrouter.script = [Say("A long answer cut off in the middle")]
        openrouter.mode = "drop_mid"
        dropped = h.post("/insights/generate/agentic", json=BODY)
        assert dropped.status_code == 502
        assert "connection dropped mid-answer" in dropped.json()["detail"]


def test_hybrid_needs_a_local_vision_model(tmp_path, photo, ollama, openrouter):
    ollama.models = {MODEL: ["completion", "tools"]}
    with app(tmp_path, env_for(ollama, openrouter=openrouter)) as h:
        h.scan()
        response = h.post("/insights/generate/agentic", json=BODY)
        assert response.status_code == 503 and "OLLAMA_PRIMARY_MODEL" in response.json()["detail"]


def test_the_clients_also_speak_the_unstreamed_forms(ollama, openrouter):
    """``stream: false`` on both protocols (one JSON answer, tool-call arguments as a
    JSON string on OpenRouter), and Ollama's model discovery helpers."""
    env = Environment.read(env_for(ollama, openrouter=openrouter))
    openrouter.script = [Say("", [("count_beans", {"n": 3})]), Say("plain words")]
    ollama.script = [Say("", [("count_beans", {"n": 4})])]

    async def talk():
        async with httpx.AsyncClient() as http:
            remote = OpenRouter(env, http, 1 << 20)
            asked = [Message("user", "hi")]
            first = await remote.chat(asked, model="openai/gpt-4o-mini")
            second = await remote.chat(asked, model="openai/gpt-4o-mini")
            local = Ollama(env, http, 1 << 20)
            reply = await local.chat(asked)
            available = await local.is_model_available(local.servers[0], MODEL)
            absent = await local.is_model_available(local.servers[0], "mistral")
            return first, second, reply, available, absent

    first, second, reply, available, absent = asyncio.run(talk())
    assert openrouter.requests[0].body["stream"] is False
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("count_beans", {"n": 3})]
    assert second.content == "plain words" and not second.tool_calls
    assert ollama.posted("/api/chat")[0].body["stream"] is False
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("count_beans", {"n": 4})]
    assert reply.server_index == 0 and available and not absent
