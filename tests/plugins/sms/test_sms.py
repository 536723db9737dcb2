"""The sms plugin against a fake SMS API: the ``search_messages`` tool (the contract's
parameters and token, results fitted to the caller's budget, failures as errors the
model reads) and the ``photo_context`` hook (messages of ±1 day of the photo)."""

from __future__ import annotations

import logging

import msgspec
import pytest
from fake_sms import TOKEN

from kernel.testing import harness, make_jpeg
from kernel.types import ToolContext

TAKEN = "2024-07-14T18:30:00+02:00"


def app(tmp_path, sms=None, token=TOKEN, **kwargs):
    env = {}
    if sms is not None:
        env["SMS_API_URL"] = sms.url + "/"
        if token:
            env["SMS_API_TOKEN"] = token
    return harness(tmp_path, ["sms"], env=env, **kwargs)


def search(h, budget=None, **arguments):
    ctx = ToolContext(h.kernel, None, result_limit=budget)
    return h.run(h.kernel.tools["search_messages"].invoke, arguments, ctx)


def context_of(h, entry):
    make_jpeg(h.library / "a.jpg")
    h.scan()
    ref = h.kernel.index.get(next(iter(h.kernel.libraries)).id, "a.jpg")
    return h.run(h.kernel.hooks.photo_context, ref, entry)


def test_without_sms_api_url_the_plugin_is_inert(tmp_path, sms_api):
    with app(tmp_path) as h:
        assert "search_messages" not in h.kernel.tools
        assert context_of(h, {"date_taken": TAKEN}) == []
    assert sms_api.requests == []


def test_search_messages_follows_the_contract(tmp_path, sms_api):
    with app(tmp_path, sms_api) as h:
        found = search(h, query="lake", date_from="2024-07-13", date_to="2024-07-15", limit=5)
        assert found == {
            "messages": [
                {"timestamp": "2024-07-13T20:15:00", "sender": "Alice",
                 "body": "Lake tomorrow? Bring towels"},
                {"timestamp": "2024-07-14T17:55:00", "sender": "Bob",
                 "body": "At the lake, where are you"},
            ]
        }  # fmt: skip
        path, query, headers = sms_api.requests[-1]
        assert path == "/api/messages"
        assert query == {"q": "lake", "from": "2024-07-13", "to": "2024-07-15", "limit": "5"}
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        everything = search(h)
        assert sms_api.requests[-1][1] == {"limit": "20"}  # absent parameters are left out
        assert everything["messages"][3]["timestamp"] == "2024-07-14T23:33:20+00:00"
        schema = h.kernel.tools["search_messages"].json_schema()
        assert set(schema["properties"]) == {"query", "date_from", "date_to", "limit"}


def test_results_are_fitted_to_the_tool_result_budget(tmp_path, sms_api):
    sms_api.messages = [
        {"timestamp": f"2024-07-14T{n % 24:02d}:00:00", "sender": "Alice", "body": "x" * 200}
        for n in range(100)
    ]
    with app(tmp_path, sms_api) as h:
        found = search(h, limit=100)  # no budget given: 16,000 characters
        assert found["omitted"] == 100 - len(found["messages"]) > 0
        assert 15_000 < len(msgspec.json.encode(found)) <= 16_000
        fitted = search(h, budget=1000, limit=100)
        assert 0 < len(fitted["messages"]) < 10
        assert fitted["omitted"] == 100 - len(fitted["messages"])
        assert len(msgspec.json.encode(fitted)) <= 1000


@pytest.mark.parametrize("mode", ["error", "garbage", "stall", "token"])
def test_failures_are_errors_the_model_reads(tmp_path, sms_api, caplog, mode):
    toml = "[plugins.sms]\ntimeout_seconds = 0.3\n"
    token = "wrong" if mode == "token" else TOKEN
    sms_api.mode = "ok" if mode == "token" else mode
    with caplog.at_level(logging.WARNING), app(tmp_path, sms_api, token, plugins_toml=toml) as h:
        found = search(h, query="lake")
        assert set(found) == {"error"} and "could not be searched" in found["error"]
        assert "wrong" not in found["error"] and TOKEN not in found["error"]
        assert context_of(h, {"date_taken": TAKEN}) == []
    assert any(r.name == "plugins.sms" and r.levelno == logging.WARNING for r in caplog.records)


def test_bad_dates_are_refused_without_a_request(tmp_path, sms_api):
    with app(tmp_path, sms_api) as h:
        found = search(h, date_from="last tuesday")
        assert "date_from must be an ISO date" in found["error"]
        assert sms_api.requests == []


def test_a_photos_context_carries_the_messages_of_one_day_around_it(tmp_path, sms_api):
    with app(tmp_path, sms_api) as h:
        ((plugin, text),) = context_of(h, {"date_taken": TAKEN})
        assert plugin == "sms"
        assert text.splitlines() == [
            "Text messages from the day before to the day after the photo:",
            "- 2024-07-13T20:15:00 Alice: Lake tomorrow? Bring towels",
            "- 2024-07-14T17:55:00 Bob: At the lake, where are you",
            "- 2024-07-14T23:33:20+00:00 Alice: Best swim of the summer",
        ]
        assert sms_api.requests[-1][1] == {"from": "2024-07-13", "to": "2024-07-15", "limit": "20"}
        sms_api.requests.clear()
        assert h.run(h.kernel.hooks.photo_context, h.kernel.index.get(1, "a.jpg"), {}) == []
        assert sms_api.requests == []  # no date, no question
        quiet = {"date_taken": "2019-01-01T10:00:00"}
        assert h.run(h.kernel.hooks.photo_context, h.kernel.index.get(1, "a.jpg"), quiet) == []
