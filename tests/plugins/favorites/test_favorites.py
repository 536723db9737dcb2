"""Favourites: the /favorites routes, one user never seeing another's, the /photos filter
and flag, the LLM tool, and the migration going down cleanly."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, select

from kernel import hookimpl, migrate
from kernel.catalog import ENTRY_FIELDS
from kernel.tables import users
from kernel.testing import harness, make_jpeg
from kernel.types import ToolContext

pytestmark = pytest.mark.db

FILES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "trip/e.jpg"]


@pytest.fixture
def h(tmp_path, library):
    for n, name in enumerate(FILES):
        make_jpeg(library / name, color=(20, 20, n * 40))
    with harness(tmp_path, ["favorites"]) as harness_:
        harness_.scan()
        yield harness_


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def favorite(h, path, headers=None, **body):
    response = h.post("/favorites", json={"path": path, **body}, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def my_favorites(h, headers=None, **params):
    response = h.get("/favorites", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def user_id(h, username):
    with h.kernel.db.read() as conn:
        return conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()


def test_add_list_newest_first_and_remove(h):
    assert favorite(h, "b.jpg")["added"] is True
    favorite(h, "trip/e.jpg", library="1")
    favorite(h, "a.jpg")
    again = favorite(h, "b.jpg")
    assert again == {"path": "b.jpg", "library": 1, "favorite": True, "added": False}
    body = my_favorites(h)
    assert body["photos"] == ["a.jpg", "trip/e.jpg", "b.jpg"] and body["total"] == 3
    assert body["files"][0]["library"] == 1 and body["files"][0]["media_type"] == "photo"
    page = my_favorites(h, limit=1, offset=1)
    assert page["photos"] == ["trip/e.jpg"] and page["total"] == 3
    removed = h.delete("/favorites", json={"path": "trip/e.jpg"})
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert h.delete("/favorites", json={"path": "trip/e.jpg"}).json()["removed"] is False
    assert my_favorites(h)["photos"] == ["a.jpg", "b.jpg"]


class Stars:
    """Another plugin with a field in every file entry."""

    @hookimpl
    def file_extras(self, files):
        return {ref.id: {"stars": len(ref.name)} for ref in files}


def test_listing_entries_are_the_catalogs_with_when_they_became_favourites(tmp_path, library):
    for n, name in enumerate(FILES):
        make_jpeg(library / name, color=(20, 20, n * 40))
    with harness(tmp_path, ["favorites"], extra_plugins={"stars": Stars()}) as h:
        h.scan()
        for path in ("c.jpg", "trip/e.jpg", "a.jpg"):
            favorite(h, path)
        body = my_favorites(h)
        listed = {
            f["path"]: f for f in h.get("/photos", params={"recursive": "true"}).json()["files"]
        }
        doc = h.client.get("/schema/openapi.json").json()
    assert body["photos"] == ["a.jpg", "trip/e.jpg", "c.jpg"]  # newest favourite first
    for entry in body["files"]:
        # the one file shape of every listing (the kernel's fields, every plugin's) ...
        assert set(entry) == ENTRY_FIELDS | {"favorite", "stars", "favorited_at"}
        assert entry["favorite"] is True and entry["stars"] == len(entry["name"])
        assert {k: v for k, v in entry.items() if k != "favorited_at"} == listed[entry["path"]]
    # ... and when it became a favourite, newest first
    times = [entry["favorited_at"] for entry in body["files"]]
    assert times == sorted(times, reverse=True) and all(isinstance(t, float) for t in times)
    listing = doc["components"]["schemas"]["FavoriteListing"]["properties"]
    assert set(listing) == set(body)
    assert listing["files"]["items"] == {"$ref": "#/components/schemas/FileEntry"}
    for method, name in (("post", "FavoriteAdded"), ("delete", "FavoriteRemoved")):
        content = doc["paths"]["/favorites"][method]["responses"]["200"]["content"]
        assert content["application/json"]["schema"]["$ref"].endswith(f"/{name}")


def test_a_page_of_favourites_and_their_extras_take_one_thread_hop(tmp_path, library, request):
    make_jpeg(library / "a.jpg")
    with harness(tmp_path, ["favorites"], extra_plugins={"stars": Stars()}) as h:
        h.scan()
        favorite(h, "a.jpg")
        my_favorites(h)  # warm
        hops = request.getfixturevalue("thread_hops")  # counting from here
        (entry,) = my_favorites(h)["files"]
        assert (entry["path"], entry["favorite"], entry["stars"]) == ("a.jpg", True, 5)
        assert len(hops) == 1, hops


def test_bad_requests(h, library):
    make_jpeg(library / "unscanned.jpg")
    for body, status in (
        ({"path": "nope.jpg"}, 404),
        ({"path": "unscanned.jpg"}, 404),
        ({"path": "trip"}, 400),
        ({"path": "../x.jpg"}, 400),
        ({"path": "a.jpg", "library": "nowhere"}, 404),
        ({}, 400),
    ):
        assert h.post("/favorites", json=body).status_code == status, body
    for params, name in (({"limit": "x"}, "limit"), ({"offset": "-1"}, "offset")):
        response = h.get("/favorites", params=params)
        assert response.status_code == 400 and response.json()["parameter"] == name
    assert h.client.get("/favorites").status_code == 401
    assert my_favorites(h)["total"] == 0


def test_one_user_never_sees_anothers_favorites(h):
    other = bearer(h.login_as("other"))
    favorite(h, "a.jpg")
    favorite(h, "b.jpg", headers=other)
    favorite(h, "c.jpg", headers=other)
    assert my_favorites(h)["photos"] == ["a.jpg"]
    assert my_favorites(h, headers=other)["photos"] == ["c.jpg", "b.jpg"]
    # removing mine leaves theirs alone
    h.delete("/favorites", json={"path": "b.jpg"})
    assert my_favorites(h, headers=other)["total"] == 2

    def listing(headers=None, **params):
        response = h.get("/photos", params=params, headers=headers or {})
        assert response.status_code == 200, response.text
        return response.json()

    assert listing(favorites="true")["photos"] == ["a.jpg"]
    assert listing(headers=other, favorites="true")["photos"] == ["b.jpg", "c.jpg"]
    assert listing(favorites="false")["photos"] == ["b.jpg", "c.jpg", "d.jpg"]
    assert listing(headers=other, favorites="0")["photos"] == ["a.jpg", "d.jpg"]
    flags = {f["path"]: f["favorite"] for f in listing()["files"]}
    assert flags == {"a.jpg": True, "b.jpg": False, "c.jpg": False, "d.jpg": False}
    flags = {f["path"]: f["favorite"] for f in listing(headers=other)["files"]}
    assert flags == {"a.jpg": False, "b.jpg": True, "c.jpg": True, "d.jpg": False}
    bad = h.get("/photos", params={"favorites": "maybe"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "favorites"


def test_favorites_come_back_with_a_missing_file(h, library):
    favorite(h, "c.jpg")
    kept = (library / "c.jpg").read_bytes()
    (library / "c.jpg").unlink()
    h.scan()
    assert my_favorites(h)["total"] == 0
    (library / "c.jpg").write_bytes(kept)
    h.scan()
    assert my_favorites(h)["photos"] == ["c.jpg"]
    assert h.get("/photos", params={"favorites": "true"}).json()["photos"] == ["c.jpg"]


def test_list_favorites_tool_is_per_user(h):
    other = bearer(h.login_as("other"))
    for path in ("a.jpg", "b.jpg", "c.jpg"):
        favorite(h, path)
    favorite(h, "d.jpg", headers=other)
    tool = h.kernel.tools["list_favorites"]
    mine = h.run(tool.invoke, {"limit": 2}, ToolContext(h.kernel, user_id(h, "tester")))
    assert mine == {
        "favorites": [{"path": "c.jpg", "library": 1}, {"path": "b.jpg", "library": 1}],
        "total": 3,
    }
    theirs = h.run(tool.invoke, {}, ToolContext(h.kernel, user_id(h, "other")))
    assert theirs["favorites"] == [{"path": "d.jpg", "library": 1}]
    assert "error" in h.run(tool.invoke, {}, ToolContext(h.kernel, None))
    assert tool.json_schema()["properties"]["limit"]["maximum"] == 500


def test_migration_downgrades_and_upgrades_cleanly(h):
    favorite(h, "a.jpg")
    (branch,) = [b for b in h.kernel.migration_branches() if b.name == "favorites"]
    migrate.downgrade(h.kernel.db, branch)
    tables = set(inspect(h.kernel.db.engine).get_table_names())
    assert "favorites" not in tables and {"files", "users"} <= tables
    migrate.upgrade(h.kernel.db, branch)
    assert my_favorites(h)["total"] == 0
    assert favorite(h, "a.jpg")["added"] is True


def test_file_removed_from_disk_can_still_be_unfavorited(h, library):
    favorite(h, "d.jpg")
    os.remove(library / "d.jpg")
    h.scan()
    response = h.delete("/favorites", json={"path": "d.jpg"})
    assert response.status_code == 200 and response.json()["removed"] is True
