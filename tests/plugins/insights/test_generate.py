"""Single-shot and agentic generation on a (fake) Ollama: the wire format, the context
gathered through hooks, storage, and the not-configured answers."""

from __future__ import annotations

import base64
import io
import json

import pytest
from conftest import MODEL, Context, env_for
from insights_fakes import INSIGHT, Say
from PIL import Image

from kernel.testing import harness

pytestmark = pytest.mark.db


def app(tmp_path, env, context=True, **kwargs):
    extra = {"context": Context(tmp_path)} if context else {}
    return harness(tmp_path, ["insights"], extra_plugins=extra, env=env, **kwargs)


def test_unconfigured_routes_answer_503_naming_the_variable(tmp_path, photo):
    with app(tmp_path, {}) as h:
        h.scan()
        body = {"file_path": "trip/lake.jpg"}
        for url in ("/insights/generate", "/insights/generate/agentic"):
            response = h.post(url, json=body)
            assert response.status_code == 503, response.text
            assert "OLLAMA_PRIMARY_URL" in response.json()["detail"]
        assert h.get("/insights/models").status_code == 503
        hybrid = h.post("/insights/generate/agentic", json={**body, "backend": "hybrid"})
        assert hybrid.status_code == 503 and "OPENROUTER_API_KEY" in hybrid.json()["detail"]
        models = h.get("/insights/openrouter/models").json()
        assert models == {"models": [], "default_model": None, "configured": False}
        assert h.get("/insights", params={"path": "trip/lake.jpg"}).status_code == 404
        # Inert: no geocoding tool offered, nothing resolved.
        assert "reverse_geocode" not in h.kernel.tools and "get_insight" in h.kernel.tools


def test_single_shot_sends_the_picture_and_facts_and_stores_the_insight(
    tmp_path, photo, ollama, nominatim
):
    env = env_for(ollama, nominatim=nominatim)
    with app(tmp_path, env) as h:
        h.scan()
        body = {"file_path": "trip/lake.jpg", "temperature": 0.2, "num_ctx": 8192, "top_k": 40}
        response = h.post("/insights/generate", json=body)
        assert response.status_code == 200, response.text
        made = response.json()
        assert made["title"] == "A day at the lake" and made["backend"] == "local"
        assert made["model"] == MODEL and made["is_current"] and made["has_training_messages"]
        (chat,) = ollama.posted("/api/chat")
        sent = chat.body
        assert sent["model"] == MODEL and sent["stream"] is False
        assert sent["options"] == {"num_ctx": 8192, "temperature": 0.2, "top_k": 40}
        assert sent["format"]["required"] == ["title", "summary"]
        user = sent["messages"][1]
        assert user["role"] == "user"
        for fact in (
            "2024-07-14T18:30:00+02:00",
            "Canon EOS R6",
            "RF 35mm",
            "lake, summer",
            "Alice, Bob",
            "Cambridge, Massachusetts, United States",
            "42.374100",
        ):
            assert fact in user["content"], fact  # fmt: skip
        (image,) = user["images"]
        with Image.open(io.BytesIO(base64.b64decode(image))) as picture:
            assert picture.format == "JPEG" and max(picture.size) == 1024  # preview, scaled
        assert h.kernel.plugin("context").rendered == ["trip/lake.jpg:preview:jpeg"]

        current = h.get("/insights", params={"path": "trip/lake.jpg"}).json()
        assert current["id"] == made["id"] and current["has_training_messages"]
        again = h.post("/insights/generate", json={"file_path": "trip/lake.jpg"}).json()
        history = h.get("/insights/all", params={"path": "trip/lake.jpg"}).json()
        assert [i["id"] for i in history] == [again["id"], made["id"]]
        assert [i["is_current"] for i in history] == [True, False]
        assert h.get("/insights", params={"path": "trip/lake.jpg"}).json()["id"] == again["id"]


def test_single_shot_asks_once_more_for_json_then_gives_up_with_502(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        ollama.script = [Say("Here you go: a lovely lake!"), Say(f"```json\n{INSIGHT}\n```")]
        response = h.post("/insights/generate", json={"file_path": "trip/lake.jpg"})
        assert response.status_code == 200, response.text
        chats = ollama.posted("/api/chat")
        assert len(chats) == 2 and "not the JSON" in chats[1].body["messages"][-1]["content"]
        ollama.script = [Say("nope"), Say('{"title": ""}')]
        failed = h.post("/insights/generate", json={"file_path": "trip/lake.jpg"})
        assert failed.status_code == 502 and "asked twice" in failed.json()["detail"]
        assert len(h.get("/insights/all", params={"path": "trip/lake.jpg"}).json()) == 1


def test_a_model_without_vision_gets_no_picture(tmp_path, photo, ollama):
    ollama.models = {MODEL: ["completion", "tools"]}
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        assert h.post("/insights/generate", json={"file_path": "trip/lake.jpg"}).status_code == 200
        user = ollama.posted("/api/chat")[0].body["messages"][1]
        assert "images" not in user and "No picture attached" in user["content"]


def test_agentic_loop_runs_tools_and_streams(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        ollama.script = [
            Say("Let me count.", [("count_beans", {"n": 21})]),
            Say(INSIGHT),
        ]
        response = h.post("/insights/generate/agentic", json={"file_path": "trip/lake.jpg"})
        assert response.status_code == 200, response.text
        made = response.json()
        assert made["iterations"] == 2 and made["tools_called"] == ["count_beans"]
        assert not made["iteration_cap_reached"]
        first, second = (r.body for r in ollama.posted("/api/chat"))
        assert first["stream"] is True
        names = {t["function"]["name"] for t in first["tools"]}
        assert {"count_beans", "search_photos", "get_insight", "reverse_geocode"} <= names
        assert first["messages"][1]["images"]
        assistant, tool = second["messages"][-2:]
        assert assistant["tool_calls"] == [
            {"function": {"name": "count_beans", "arguments": {"n": 21}}}
        ]
        assert tool == {"role": "tool", "content": '{"beans":42}', "tool_name": "count_beans"}
        assert h.kernel.plugin("context").tool_calls == [21]


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"n": "five"}, "invalid arguments for count_beans: Expected `int`, got `str`"),
        ({"n": 1, "m": 2}, "invalid arguments for count_beans: Object contains unknown field"),
        ({}, "invalid arguments for count_beans: Object missing required field `n`"),
        ({"n": -1}, "count_beans failed: ValueError: negative beans"),
    ],
)
def test_bad_tool_calls_become_errors_the_model_sees(tmp_path, photo, ollama, arguments, complaint):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        ollama.script = [
            Say("", [("count_beans", arguments), ("no_such_tool", {})]),
            Say(INSIGHT),
        ]
        response = h.post("/insights/generate/agentic", json={"file_path": "trip/lake.jpg"})
        assert response.status_code == 200, response.text
        results = ollama.posted("/api/chat")[1].body["messages"][-2:]
        assert complaint in json.loads(results[0]["content"])["error"]
        assert "there is no tool 'no_such_tool'" in json.loads(results[1]["content"])["error"]


def test_the_loop_stops_at_the_iteration_cap(tmp_path, photo, ollama):
    env = env_for(ollama, AGENTIC_CHAT_MAX_ITERATIONS="3")
    with app(tmp_path, env) as h:
        h.scan()

        def always_a_tool(body):
            if not body.get("tools"):
                return Say(INSIGHT)
            return Say("", [("count_beans", {"n": 1})])

        ollama.responder = always_a_tool
        body = {"file_path": "trip/lake.jpg", "max_iterations": 50}  # clamped to 3
        made = h.post("/insights/generate/agentic", json=body).json()
        assert made["iterations"] == 3 and made["iteration_cap_reached"]
        chats = [r.body for r in ollama.posted("/api/chat")]
        assert [bool(c.get("tools")) for c in chats] == [True, True, True, False]
        assert "used every tool call" in chats[-1]["messages"][-1]["content"]
        ollama.requests.clear()
        made = h.post("/insights/generate/agentic", json={**body, "max_iterations": 1}).json()
        assert made["iterations"] == 1
        assert len(ollama.posted("/api/chat")) == 2


def test_a_model_that_cannot_call_tools_is_refused_for_agentic(tmp_path, photo, ollama):
    ollama.models = {MODEL: ["completion", "vision"]}
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        response = h.post("/insights/generate/agentic", json={"file_path": "trip/lake.jpg"})
        assert response.status_code == 400 and MODEL in response.json()["detail"]
        bad = h.post(
            "/insights/generate/agentic", json={"file_path": "trip/lake.jpg", "backend": "cloud"}
        )
        assert bad.status_code == 400 and "cloud" in bad.json()["detail"]


def test_unknown_files_and_paths_outside_the_library(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        missing = h.post("/insights/generate", json={"file_path": "trip/nope.jpg"})
        assert missing.status_code == 404
        outside = h.post("/insights/generate", json={"file_path": "../../etc/passwd"})
        assert outside.status_code in (400, 403, 404)
        assert not ollama.posted("/api/chat")


def test_models_lists_each_server_with_capabilities(tmp_path, ollama, refused_url):
    ollama.models = {MODEL: ["completion", "vision", "tools"], "qwen3:8b": ["completion"]}
    with app(tmp_path, env_for(ollama, fallback=refused_url), context=False) as h:
        servers = h.get("/insights/models").json()["servers"]
        primary, fallback = servers
        assert primary["role"] == "primary" and primary["reachable"]
        assert {m["name"]: m["capabilities"] for m in primary["models"]} == {
            MODEL: ["completion", "tools", "vision"],
            "qwen3:8b": ["completion"],
        }
        assert fallback["role"] == "fallback" and not fallback["reachable"]
        assert "cannot connect" in fallback["error"]
        assert fallback["default_model"] == MODEL  # the fallback model defaults to the primary's
