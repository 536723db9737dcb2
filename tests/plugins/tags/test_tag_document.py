"""The tags plugin in the OpenAPI document: each route's answer is a component with the
fields it sends, and /photos lists the tag filters and sorts."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


@pytest.fixture
def h(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "b.jpg", color=(0, 0, 200))
    with harness(tmp_path, ["tags"]) as harness_:
        harness_.scan()
        yield harness_


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "array":
        schema = schema["items"]
    return doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]


def documented(doc: dict[str, Any], path: str, method: str, status: str = "200") -> set[str]:
    (content,) = doc["paths"][path][method]["responses"][status]["content"].values()
    return set(resolve(doc, content["schema"])["properties"])


def test_every_tag_route_answers_its_documented_fields(h):
    doc = h.client.get("/schema/openapi.json").json()
    added = h.post("/image/tags", json={"path": "a.jpg", "tag_name": "beach"}).json()
    tag_id = added["id"]
    answers = {
        ("/image/tags", "post"): added,
        ("/image/tags", "get"): h.get("/image/tags", params={"path": "a.jpg"}).json()[0],
        ("/image/tags/all", "get"): h.get("/image/tags/all").json()[0],
        ("/image/tags/batch", "post"): h.post(
            "/image/tags/batch", json={"paths": ["b.jpg"], "add": ["sea", tag_id]}
        ).json(),
        ("/image/tags/{tag_id}", "patch"): h.patch(
            f"/image/tags/{tag_id}", json={"name": "Beach"}
        ).json(),
        ("/image/tags", "delete"): h.delete(
            "/image/tags", json={"path": "a.jpg", "tag_id": tag_id}
        ).json(),
        ("/image/tags/{tag_id}", "delete"): h.delete(f"/image/tags/{tag_id}").json(),
    }
    for (path, method), body in answers.items():
        assert documented(doc, path, method) == set(body), (path, method)
    batch = resolve(doc, {"$ref": "#/components/schemas/BatchResult"})["properties"]
    assert batch["tags_added"]["items"] == {"$ref": "#/components/schemas/Tag"}
    assert batch["tags_removed"]["items"] == {"type": "integer"}
    bad = h.post("/image/tags", json={"path": "a.jpg"}).json()
    assert set(bad) <= documented(doc, "/image/tags", "post", "400")
    assert bad["parameter"] == "tag_name"


def test_photos_document_lists_the_tag_filters_and_sorts(h):
    operation = h.client.get("/schema/openapi.json").json()["paths"]["/photos"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    for name in ("tag_ids", "exclude_tag_ids"):
        assert params[name]["schema"] == {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"}
    assert params["tag_match"]["description"].startswith("any (default) or all")
    assert "tag_filter_mode" in params
    sort = params["sort"]
    assert {"TagCountAsc", "TagCountDesc"} <= set(sort["schema"]["enum"])
    assert "TagCountDesc: By number of tags, most first" in sort["description"]
