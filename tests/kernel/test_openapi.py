"""The OpenAPI document describes the API: typed responses for the kernel's routes, one
``FileEntry`` component that admits plugins' fields, every declared listing parameter on
``GET /photos``, the bearer token; with no plugin for a page, only the document."""

from __future__ import annotations

from typing import Any

import pytest

from kernel import SearchParam, SearchSort, hookimpl
from kernel.catalog import ENTRY_FIELDS, KERNEL_PARAMS
from kernel.manager import builtin_plugin_names
from kernel.tables import files
from kernel.testing import Harness, harness, make_jpeg

pytestmark = pytest.mark.db


class Stars:
    """A plugin with a listing parameter of every type, a described sort, an entry field."""

    @hookimpl
    def search_params(self) -> list[SearchParam]:
        return [
            SearchParam("stars", int, "At least this many stars."),
            SearchParam("ratio", float, "Width over height."),
            SearchParam("starred", bool, "Only starred files."),
            SearchParam("star_ids", list[int], "Star ids, comma-separated."),
            SearchParam("label", str, "A label."),
        ]

    @hookimpl
    def search_sorts(self) -> list[SearchSort]:
        by_id = SearchSort(
            "StarsDesc",
            lambda select, query, plan: select.order_by(files.c.rel_path.desc(), files.c.id),
            description="Most stars first.",
        )
        return [by_id]

    @hookimpl
    def file_extras(self, files: Any) -> dict[int, dict[str, Any]]:
        return {ref.id: {"stars": 3} for ref in files}


@pytest.fixture
def h(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "b.jpg", color=(0, 0, 200))
    with harness(tmp_path, extra_plugins={"stars": Stars()}) as harness_:
        harness_.scan()
        yield harness_


def document(h: Harness) -> dict[str, Any]:
    response = h.client.get("/schema/openapi.json")  # no token: the document is public
    assert response.status_code == 200
    return response.json()


def component(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def success_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    (ok,) = [r for status, r in responses.items() if status.startswith("2")]
    (content,) = ok["content"].values()
    return content["schema"]


def test_photos_lists_every_declared_parameter_and_the_sorts(h):
    operation = document(h)["paths"]["/photos"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == set(KERNEL_PARAMS) | {"stars", "ratio", "starred", "star_ids", "label"}
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    types = {name: p["schema"]["type"] for name, p in params.items()}
    assert types["stars"] == "integer" and types["ratio"] == "number"
    assert types["starred"] == "boolean" and types["label"] == "string"
    assert types["star_ids"] == "string"  # sent as 1,2,3
    assert params["star_ids"]["schema"]["pattern"] == "^[0-9]+(,[0-9]+)*$"
    assert params["stars"]["description"] == "At least this many stars."
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 100_000}
    sort = params["sort"]
    assert sort["schema"]["enum"] == ["NameAsc", "NameDesc", "Shuffle", "StarsDesc"]
    assert sort["schema"]["default"] == "NameAsc"
    assert "StarsDesc: Most stars first." in sort["description"]
    assert "400" in operation["responses"]
    # The handler still reads them from the query, as the document says.
    listing = h.get(
        "/photos",
        params={"stars": 2, "ratio": 1.5, "starred": "true", "star_ids": "1,2", "label": "x",
                "sort": "StarsDesc"},
    )  # fmt: skip
    assert listing.status_code == 200, listing.text
    assert listing.json()["photos"] == ["b.jpg", "a.jpg"]


def test_the_document_follows_the_enabled_plugins(tmp_path):
    with harness(tmp_path) as h:
        params = {p["name"]: p for p in document(h)["paths"]["/photos"]["get"]["parameters"]}
    assert set(params) == set(KERNEL_PARAMS)
    assert params["sort"]["schema"]["enum"] == ["NameAsc", "NameDesc", "Shuffle"]


def test_file_entries_are_one_component_open_to_plugin_fields(h):
    doc = document(h)
    entry = doc["components"]["schemas"]["FileEntry"]
    assert set(entry["properties"]) == ENTRY_FIELDS  # the kernel names no plugin's field
    assert set(entry["required"]) == ENTRY_FIELDS
    assert entry["additionalProperties"] is True
    assert entry["properties"]["content_hash"]["oneOf"] == [{"type": "string"}, {"type": "null"}]
    listing = component(doc, success_schema(doc, "/photos", "get"))
    assert listing["properties"]["files"]["items"] == {"$ref": "#/components/schemas/FileEntry"}
    (first, _) = h.get("/photos").json()["files"]
    assert set(first) == ENTRY_FIELDS | {"stars"}


def test_kernel_responses_are_typed_with_todays_fields(h):
    """Every JSON answer of the kernel has a component, and the component's fields are
    exactly the ones the route sends."""
    doc = document(h)
    login = h.client.post("/login", json={"username": "tester", "password": "password-123"})
    answers = {
        ("/login", "post"): login.json(),
        ("/health", "get"): h.client.get("/health").json(),
        ("/libraries", "get"): h.get("/libraries").json()[0],
        ("/tools", "get"): h.get("/tools").json()[0],
        ("/photos", "get"): h.get("/photos").json(),
    }
    for (path, method), body in answers.items():
        schema = success_schema(doc, path, method)
        if schema.get("type") == "array":
            schema = schema["items"]
        fields = component(doc, schema)["properties"]
        assert set(fields) == set(body), (path, method)
    tool = component(doc, {"$ref": "#/components/schemas/ToolInfo"})
    assert tool["properties"]["function"] == {"$ref": "#/components/schemas/ToolFunction"}
    assert answers[("/photos", "get")]["library"] == {"id": 1, "name": "main"}
    image = doc["paths"]["/image"]["get"]["responses"]["200"]["content"]
    assert list(image) == ["application/octet-stream"]
    problem = component(doc, doc["paths"]["/photos"]["get"]["responses"]["400"]["content"]
                        ["application/json"]["schema"])  # fmt: skip
    bad = h.get("/photos", params={"limit": "x"}).json()
    assert set(bad) <= set(problem["properties"]) and bad["parameter"] == "limit"


def test_the_bearer_token_is_in_the_document(h):
    doc = document(h)
    scheme = doc["components"]["securitySchemes"]["BearerToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert doc["security"] == [{"BearerToken": []}]
    assert doc["paths"]["/login"]["post"]["security"] == []
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/photos"]["get"]  # the document's applies


def test_no_dependency_shows_up_as_a_parameter(tmp_path):
    """``kernel``, ``user`` and a plugin class's ``plugin`` are injected, not sent: with
    every built-in plugin on, no operation asks a client for them."""
    with harness(tmp_path, builtin_plugin_names()) as h:
        doc = document(h)
    injected = {"kernel", "user", "plugin", "request", "state"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            assert not names & injected, (method, path, names & injected)


def test_without_the_docs_plugin_the_schema_is_the_document_alone(h):
    """No page from a CDN fills the gap: ``/schema`` answers the JSON document."""
    root = h.client.get("/schema")
    assert root.status_code == 200 and root.json() == document(h)
    for page in ("/schema/swagger", "/schema/redoc", "/schema/scalar", "/schema/assets/x.js"):
        assert h.client.get(page).status_code == 404, page
