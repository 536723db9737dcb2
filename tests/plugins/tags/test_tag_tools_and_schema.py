"""The tags plugin's LLM tools, and its migration going down and up again cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from kernel import migrate
from kernel.testing import harness, make_jpeg
from kernel.types import ToolContext

pytestmark = pytest.mark.db


@pytest.fixture
def h(tmp_path, library):
    make_jpeg(library / "trip" / "a.jpg")
    make_jpeg(library / "trip" / "b.jpg", color=(10, 10, 200))
    with harness(tmp_path, ["tags"]) as harness_:
        harness_.scan()
        yield harness_


def call(h, name, arguments):
    tool = h.kernel.tools[name]
    return h.run(tool.invoke, arguments, ToolContext(h.kernel, None))


def test_get_tags_and_add_tag_tools(h):
    assert h.kernel.tools["get_tags"].plugin == "tags"
    assert call(h, "get_tags", {"path": "trip/a.jpg"}) == {
        "path": "trip/a.jpg",
        "library": 1,
        "tags": [],
    }
    h.post("/image/tags", json={"path": "trip/a.jpg", "tag_name": "Grandma"})
    assert call(h, "get_tags", {"path": "trip/a.jpg", "library": "1"})["tags"] == ["Grandma"]
    added = call(h, "add_tag", {"path": "trip/a.jpg", "name": " lake "})
    assert added["tags"] == ["Grandma", "lake"]
    call(h, "add_tag", {"path": "trip/b.jpg", "name": "GRANDMA"})
    counts = {t["name"]: t["count"] for t in h.get("/image/tags/all").json()}
    assert counts == {"Grandma": 2, "lake": 1}
    # the model is told what went wrong instead of the loop crashing
    assert "error" in call(h, "get_tags", {"path": "trip/none.jpg"})
    assert "error" in call(h, "add_tag", {"path": "trip/a.jpg", "name": ""})
    assert "error" in call(h, "get_tags", {"path": "../outside.jpg"})
    listed = {t["function"]["name"] for t in h.get("/tools").json()}
    assert {"get_tags", "add_tag"} <= listed


def test_migration_downgrades_and_upgrades_cleanly(h):
    h.post("/image/tags", json={"path": "trip/a.jpg", "tag_name": "x"})
    (branch,) = [b for b in h.kernel.migration_branches() if b.name == "tags"]
    migrate.downgrade(h.kernel.db, branch)
    tables = set(inspect(h.kernel.db.engine).get_table_names())
    assert not {"tags", "tagged_photo"} & tables
    assert "files" in tables
    migrate.upgrade(h.kernel.db, branch)
    assert migrate.current(h.kernel.db, branch) == migrate.head(branch)
    assert h.get("/image/tags/all").json() == []
    assert h.post("/image/tags", json={"path": "trip/a.jpg", "tag_name": "x"}).status_code == 200
