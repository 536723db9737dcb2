"""Backends failing the ways real ones do: down (failover), stalled, garbage, 1 GiB,
dropped connections, error answers — each a 502 with the reason, never a hang or a 500,
and the server answering other requests meanwhile."""

from __future__ import annotations

import logging
import threading

import pytest
from conftest import MODEL, Context, env_for
from insights_fakes import GIB, INSIGHT, Say

from kernel.testing import harness

pytestmark = pytest.mark.db
BODY = {"file_path": "trip/lake.jpg"}


def app(tmp_path, env):
    return harness(tmp_path, ["insights"], extra_plugins={"context": Context(tmp_path)}, env=env)


def test_failover_to_the_fallback_server_with_the_primary_model(
    tmp_path, photo, ollama, refused_url, caplog
):
    with app(tmp_path, env_for(refused_url, fallback=ollama)) as h:
        h.scan()
        ollama.script = [Say("", [("count_beans", {"n": 2})]), Say(INSIGHT)]
        with caplog.at_level(logging.INFO, logger="plugins.insights"):
            response = h.post("/insights/generate/agentic", json=BODY)
        assert response.status_code == 200, response.text
        assert response.json()["model"] == MODEL
        assert [r.body["model"] for r in ollama.posted("/api/chat")] == [MODEL, MODEL]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("failing over to " + ollama.url in r.getMessage() for r in warnings)
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert f"insights: Ollama fallback at {ollama.url} answered with {MODEL}" in infos


def test_the_fallback_model_is_its_own_when_set(tmp_path, photo, ollama, refused_url):
    ollama.models = {"llama3.2:3b": ["completion", "vision", "tools"]}
    env = env_for(refused_url, fallback=ollama, OLLAMA_FALLBACK_MODEL="llama3.2:3b")
    with app(tmp_path, env) as h:
        h.scan()
        made = h.post("/insights/generate", json=BODY)
        assert made.status_code == 200 and made.json()["model"] == "llama3.2:3b"


def test_legacy_variables_still_configure_the_primary(tmp_path, photo, ollama):
    env = {"OLLAMA_URL": ollama.url, "OLLAMA_MODEL": MODEL, "NOMINATIM_URL": "http://127.0.0.1:9"}
    with app(tmp_path, env) as h:
        h.scan()
        assert h.post("/insights/generate", json=BODY).status_code == 200
        assert ollama.posted("/api/chat")[0].body["model"] == MODEL


def test_every_server_down_is_a_502_naming_them(tmp_path, photo, ollama, ollama2):
    ollama.mode = ollama2.mode = "drop"
    with app(tmp_path, env_for(ollama, fallback=ollama2)) as h:
        h.scan()
        response = h.post("/insights/generate", json=BODY)
        assert response.status_code == 502
        detail = response.json()["detail"]
        assert "no Ollama server reachable" in detail
        assert ollama.url in detail and ollama2.url in detail


@pytest.mark.parametrize("route", ["/insights/generate", "/insights/generate/agentic"])
@pytest.mark.parametrize(
    ("mode", "complaint"),
    [
        ("garbage", "invalid JSON"),
        ("huge", "larger than 16 MiB"),
        ("error", "answered 500: model runner has crashed"),
        ("drop_mid", "connection dropped mid-answer"),
    ],
)
def test_a_misbehaving_backend_is_a_502_with_the_reason(
    tmp_path, photo, ollama, route, mode, complaint
):
    with app(tmp_path, env_for(ollama)) as h:
        h.scan()
        ollama.responder = lambda body: Say(INSIGHT)
        h.post("/insights/generate", json=BODY)  # capabilities known, then it breaks
        ollama.mode = mode
        response = h.post(route, json=BODY)
        if mode == "drop_mid" and route == "/insights/generate":
            assert response.status_code == 200  # not streamed: the fake drops only streams
            return
        assert response.status_code == 502, response.text
        assert complaint in response.json()["detail"]
        assert ollama.bytes_sent < GIB // 4  # a huge answer is abandoned, not read


def test_a_stalled_backend_times_out_while_the_server_keeps_answering(tmp_path, photo, ollama):
    with app(tmp_path, env_for(ollama, OLLAMA_REQUEST_TIMEOUT_SECONDS="3")) as h:
        h.scan()
        h.post("/insights/generate", json=BODY)
        ollama.mode = "stall"
        outcome: dict[str, object] = {}
        started = threading.Event()

        def slow_call() -> None:
            started.set()
            outcome["response"] = h.post("/insights/generate", json=BODY)

        worker = threading.Thread(target=slow_call)
        worker.start()
        started.wait()
        while len(ollama.posted("/api/chat")) < 2:  # the stalled call is in flight
            threading.Event().wait(0.01)
        health = h.client.get("/health")
        current = h.get("/insights", params={"path": "trip/lake.jpg"})
        assert health.status_code == 200 and current.status_code == 200
        assert "response" not in outcome  # answered while the LLM call was still pending
        worker.join()
        response = outcome["response"]
        assert response.status_code == 502
        assert "no complete answer within 3 s" in response.json()["detail"]
