"""The /image/tags routes: adding, removing, listing, batches, renames and deletes."""

from __future__ import annotations

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db

FILES = ["a.jpg", "b.jpg", "c.jpg", "2019/d.jpg", "2019/summer/e.jpg"]


@pytest.fixture
def h(tmp_path, library):
    for n, name in enumerate(FILES):
        make_jpeg(library / name, color=(n * 40, 20, 20))
    with harness(tmp_path, ["tags"]) as harness_:
        harness_.scan()
        yield harness_


def add(h, path, **body):
    response = h.post("/image/tags", json={"path": path, **body})
    assert response.status_code == 200, response.text
    return response.json()


def file_tags(h, path):
    response = h.get("/image/tags", params={"path": path})
    assert response.status_code == 200, response.text
    return [tag["name"] for tag in response.json()]


def counts(h, **params):
    return {tag["name"]: tag["count"] for tag in h.get("/image/tags/all", params=params).json()}


def state(h):
    """Everything a user can see of the tags: every tag, its count, and each file's tags."""
    return h.get("/image/tags/all").json(), {path: file_tags(h, path) for path in FILES}


def test_add_by_name_creates_once_case_insensitively_and_is_idempotent(h):
    beach = add(h, "a.jpg", tag_name="  Beach ")
    assert beach["name"] == "Beach" and beach["added"] is True
    assert add(h, "b.jpg", tag_name="BEACH")["id"] == beach["id"]
    again = add(h, "a.jpg", tag_name="beach")
    assert again["id"] == beach["id"] and again["added"] is False
    assert add(h, "c.jpg", tag_id=beach["id"])["name"] == "Beach"
    assert add(h, "c.jpg", tag_id=beach["id"])["added"] is False
    assert add(h, "a.jpg", tag_name="Sunset")["id"] != beach["id"]
    assert file_tags(h, "a.jpg") == ["Beach", "Sunset"]
    listed = h.get("/image/tags/all").json()
    assert [(t["name"], t["count"]) for t in listed] == [("Beach", 3), ("Sunset", 1)]
    assert {"id", "created_at", "updated_at"} <= set(listed[0])
    # the Rust server's clients send the path as file_name
    assert add(h, "2019/d.jpg", file_name="2019/d.jpg", tag_name="beach")["added"] is True


def test_add_refuses_bad_requests(h, library):
    make_jpeg(library / "unscanned.jpg")
    cases = [
        ({"path": "nope.jpg", "tag_name": "x"}, 404, None),
        ({"path": "unscanned.jpg", "tag_name": "x"}, 404, None),
        ({"path": "../etc/passwd", "tag_name": "x"}, 400, None),
        ({"path": "2019", "tag_name": "x"}, 400, None),
        ({"path": "a.jpg", "library": "elsewhere", "tag_name": "x"}, 404, None),
        ({"path": "a.jpg"}, 400, "tag_name"),
        ({"path": "a.jpg", "tag_name": "   "}, 400, "tag_name"),
        ({"path": "a.jpg", "tag_name": "x" * 256}, 400, "tag_name"),
        ({"tag_name": "x"}, 400, "path"),
        ({"path": "a.jpg", "tag_id": 999}, 404, None),
    ]
    for body, status, parameter in cases:
        response = h.post("/image/tags", json=body)
        assert response.status_code == status, (body, response.text)
        if parameter:
            assert response.json()["parameter"] == parameter
    assert h.get("/image/tags/all").json() == []
    assert h.get("/image/tags", params={"path": "nope.jpg"}).status_code == 404


def test_remove_from_a_file(h):
    beach = add(h, "a.jpg", tag_name="beach")
    add(h, "b.jpg", tag_name="beach")
    first = h.delete("/image/tags", json={"path": "a.jpg", "tag_id": beach["id"]})
    assert first.status_code == 200 and first.json()["removed"] is True
    second = h.delete("/image/tags", json={"path": "a.jpg", "tag_id": beach["id"]})
    assert second.status_code == 200 and second.json()["removed"] is False
    assert file_tags(h, "a.jpg") == [] and file_tags(h, "b.jpg") == ["beach"]
    assert counts(h) == {"beach": 1}
    missing_id = h.delete("/image/tags", json={"path": "a.jpg"})
    assert missing_id.status_code == 400 and missing_id.json()["parameter"] == "tag_id"
    unknown = h.delete("/image/tags", json={"path": "a.jpg", "tag_id": 999})
    assert unknown.status_code == 404


def test_counts_within_a_folder(h):
    for path in FILES:
        add(h, path, tag_name="everywhere")
    add(h, "2019/summer/e.jpg", tag_name="deep")
    assert counts(h) == {"deep": 1, "everywhere": 5}
    assert counts(h, path="2019") == {"deep": 0, "everywhere": 1}
    assert counts(h, path="2019", recursive="true") == {"deep": 1, "everywhere": 2}
    assert counts(h, library="1") == {"deep": 1, "everywhere": 5}
    assert h.get("/image/tags/all", params={"path": "a.jpg"}).status_code == 400


def test_batch_adds_and_removes_on_many_files(h):
    old = add(h, "a.jpg", tag_name="old")
    add(h, "b.jpg", tag_name="old")
    kept = add(h, "c.jpg", tag_name="kept")
    body = {
        "paths": ["a.jpg", "b.jpg", "2019/d.jpg", "a.jpg"],
        "add": [kept["id"], "New Tag"],
        "remove": [old["id"]],
    }
    response = h.post("/image/tags/batch", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["files"], result["added"], result["removed"]) == (3, 6, 2)
    assert {t["name"] for t in result["tags_added"]} == {"kept", "New Tag"}
    for path in ("a.jpg", "b.jpg", "2019/d.jpg"):
        assert file_tags(h, path) == ["kept", "New Tag"]
    assert counts(h) == {"kept": 4, "New Tag": 3, "old": 0}
    repeat = h.post("/image/tags/batch", json=body).json()
    assert (repeat["added"], repeat["removed"]) == (0, 0)


def test_batch_is_all_or_nothing(h):
    beach = add(h, "a.jpg", tag_name="beach")
    sea = add(h, "b.jpg", tag_name="sea")
    before = state(h)
    failing = [
        ({"paths": ["a.jpg", "gone.jpg"], "add": ["brand new", beach["id"]]}, 404),
        ({"paths": ["a.jpg", "c.jpg"], "add": ["brand new", 999]}, 404),
        ({"paths": ["a.jpg", "c.jpg"], "add": ["brand new"], "remove": [sea["id"], 999]}, 404),
        # the new name is created, then the clash is found: that creation is rolled back
        ({"paths": ["c.jpg"], "add": ["brand new", "SEA"], "remove": [sea["id"]]}, 400),
        ({"paths": ["c.jpg", "../x.jpg"], "add": ["brand new"]}, 400),
        ({"paths": [], "add": ["brand new"]}, 400),
        ({"paths": ["c.jpg"]}, 400),
        ({"paths": ["c.jpg"], "add": ["  "]}, 400),
    ]
    for body, status in failing:
        response = h.post("/image/tags/batch", json=body)
        assert response.status_code == status, (body, response.text)
        assert state(h) == before, body


def test_rename_and_its_clashes(h):
    beach = add(h, "a.jpg", tag_name="beach")
    add(h, "b.jpg", tag_name="Sea")
    renamed = h.client.patch(
        f"/image/tags/{beach['id']}", json={"name": " Seaside "}, headers=h.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Seaside"
    assert renamed.json()["updated_at"] >= beach["updated_at"]
    assert file_tags(h, "a.jpg") == ["Seaside"]
    recased = h.client.patch(
        f"/image/tags/{beach['id']}", json={"name": "SEASIDE"}, headers=h.headers
    )
    assert recased.status_code == 200 and file_tags(h, "a.jpg") == ["SEASIDE"]
    clash = h.client.patch(f"/image/tags/{beach['id']}", json={"name": "sea"}, headers=h.headers)
    assert clash.status_code == 409
    empty = h.client.patch(f"/image/tags/{beach['id']}", json={"name": ""}, headers=h.headers)
    assert empty.status_code == 400 and empty.json()["parameter"] == "name"
    unknown = h.client.patch("/image/tags/999", json={"name": "x"}, headers=h.headers)
    assert unknown.status_code == 404
    assert counts(h) == {"Sea": 1, "SEASIDE": 1}
    # the case-insensitive uniqueness holds in the database itself
    add(h, "c.jpg", tag_name="seaside")
    assert counts(h) == {"Sea": 1, "SEASIDE": 2}


def test_delete_a_tag_everywhere(h):
    beach = add(h, "a.jpg", tag_name="beach")
    add(h, "b.jpg", tag_id=beach["id"])
    add(h, "b.jpg", tag_name="sea")
    response = h.delete(f"/image/tags/{beach['id']}")
    assert response.status_code == 200 and response.json() == {"deleted": beach["id"], "files": 2}
    assert counts(h) == {"sea": 1}
    assert file_tags(h, "a.jpg") == [] and file_tags(h, "b.jpg") == ["sea"]
    assert h.delete(f"/image/tags/{beach['id']}").status_code == 404
    # the name is free again
    assert add(h, "a.jpg", tag_name="Beach")["id"] != beach["id"]


def test_routes_need_a_token(h):
    assert h.client.get("/image/tags/all").status_code == 401
    assert h.client.post("/image/tags", json={"path": "a.jpg", "tag_name": "x"}).status_code == 401


def test_tag_names_match_regardless_of_case_beyond_ascii(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "b.jpg")
    with harness(tmp_path, ["tags"]) as h:
        h.scan()
        first = h.post("/image/tags", json={"path": "a.jpg", "tag_name": "Ålesund"}).json()
        second = h.post("/image/tags", json={"path": "b.jpg", "tag_name": "ÅLESUND"}).json()
        assert first["id"] == second["id"] and second["name"] == "Ålesund"
        (tag,) = h.get("/image/tags/all").json()
        assert tag["count"] == 2
        other = h.post("/image/tags", json={"path": "a.jpg", "tag_name": "Oslo"}).json()
        clash = h.patch(f"/image/tags/{other['id']}", json={"name": "ålesund"})
        assert clash.status_code == 409
