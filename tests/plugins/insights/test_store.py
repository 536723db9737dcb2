"""``photo_insights``: one current row per file, history, ratings, the transcript stored
for chat to replay, the ``get_insight`` tool and ``imageapi insights export``."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from conftest import Context, env_for
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from kernel.manager import build_plugin_manager
from kernel.testing import harness
from kernel.types import ToolContext
from plugins.insights import store
from plugins.insights.messages import Message, ToolCall, dump, load, to_ollama, to_openai
from plugins.insights.tables import photo_insights

pytestmark = pytest.mark.db
BODY = {"file_path": "trip/lake.jpg"}


def new(title: str, rel_path: str = "trip/lake.jpg") -> store.NewInsight:
    return store.NewInsight(1, rel_path, "abc", title, "s", "local", "m", dump([]))


def test_storing_flips_is_current_and_the_index_allows_one_current(tmp_path):
    with harness(tmp_path, ["insights"]) as h:
        db = h.kernel.db
        indexes = {i["name"] for i in sa_inspect(db.engine).get_indexes("photo_insights")}
        assert {"uq_photo_insights_current", "ix_photo_insights_file"} <= indexes
        first = store.store(db, new("one"))
        second = store.store(db, new("two"))
        other = store.store(db, new("elsewhere", "x.jpg"))
        assert store.current(db, 1, "trip/lake.jpg").id == second.id
        assert [r.title for r in store.history(db, 1, "trip/lake.jpg")] == ["two", "one"]
        assert store.by_id(db, first.id).is_current is False
        assert store.current(db, 1, "x.jpg").id == other.id
        with pytest.raises(IntegrityError), db.write() as conn:
            conn.execute(photo_insights.update().values(is_current=True))
        assert store.replace_transcript(db, second.id, dump([Message("user", "hi")]))
        assert load(store.by_id(db, second.id).training_messages)[0].content == "hi"


def test_transcript_round_trip_and_wire_forms():
    messages = [
        Message("system", "be brief"),
        Message("user", "look", images=["QUJD"]),
        Message("assistant", "", tool_calls=[ToolCall("c1", "count_beans", {"n": 1})]),
        Message("tool", '{"beans":2}', tool_call_id="c1", name="count_beans"),
        Message("assistant", "", tool_calls=[ToolCall("c2", "count_beans", '{"n": ')]),
    ]
    assert load(dump(messages)) == messages
    assert to_ollama(messages[1]) == {"role": "user", "content": "look", "images": ["QUJD"]}
    assert to_ollama(messages[3])["tool_name"] == "count_beans"
    assert to_ollama(messages[4])["tool_calls"][0]["function"]["arguments"] == {"_raw": '{"n": '}
    openai_user = to_openai(messages[1])
    assert openai_user["content"][1]["image_url"]["url"] == "data:image/jpeg;base64,QUJD"
    assert to_openai(messages[2])["tool_calls"][0]["function"]["arguments"] == '{"n":1}'
    assert to_openai(messages[2])["content"] is None
    assert to_openai(messages[3]) == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": '{"beans":2}',
    }


def test_rating_history_and_the_get_insight_tool(tmp_path, photo, ollama):
    env = env_for(ollama)
    with harness(tmp_path, ["insights"], extra_plugins={"c": Context(tmp_path)}, env=env) as h:
        h.scan()
        made = h.post("/insights/generate", json=BODY).json()
        up = h.post("/insights/rate", json={"insight_id": made["id"], "rating": "up"})
        assert up.status_code == 200 and up.json()["rating"] == "up"
        cleared = h.post("/insights/rate", json={"insight_id": made["id"], "rating": None})
        assert cleared.json()["rating"] is None
        bad = h.post("/insights/rate", json={"insight_id": made["id"], "rating": "meh"})
        assert bad.status_code == 400
        assert h.post("/insights/rate", json={"insight_id": 999, "rating": "up"}).status_code == 404
        tool = h.kernel.tools["get_insight"]
        found = h.run(tool.invoke, {"path": "trip/lake.jpg"}, ToolContext(h.kernel, None))
        assert found["title"] == "A day at the lake"
        missing = h.run(tool.invoke, {"path": "nope.jpg"}, ToolContext(h.kernel, None))
        assert "error" in missing


def test_export_writes_rated_transcripts_as_jsonl(tmp_path, photo, ollama):
    env = env_for(ollama)
    with harness(tmp_path, ["insights"], extra_plugins={"c": Context(tmp_path)}, env=env) as h:
        h.scan()
        first = h.post("/insights/generate", json=BODY).json()
        h.post("/insights/generate", json=BODY)
        h.post("/insights/rate", json={"insight_id": first["id"], "rating": "down"})
        config = h.kernel.config
        root = click.Group("imageapi")
        build_plugin_manager(config, only=["insights"]).declarations.cli_commands(root)
        out = tmp_path / "rated.jsonl"
        runner = CliRunner()
        result = runner.invoke(
            root, ["insights", "export", "--rated", "-o", str(out)], env=dict(config.env)
        )
        assert result.exit_code == 0, result.output
        (line,) = out.read_text().splitlines()
        record = json.loads(line)
        assert record["insight_id"] == first["id"] and record["rating"] == "down"
        roles = [m["role"] for m in record["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert record["messages"][1]["content"][1]["type"] == "image_url"
        everything = runner.invoke(root, ["insights", "export"], env=dict(config.env))
        assert len(everything.stdout.strip().splitlines()) == 2
