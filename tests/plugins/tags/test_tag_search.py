"""Tags in /photos: filters (any / all / exclude), tag-count sorts, each file's tags in the
listing, and tags that outlive a file going missing."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import event

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db

# file -> tags it gets
TAGGING = {
    "a.jpg": ["beach", "sun", "family"],
    "b.jpg": ["beach", "sun"],
    "c.jpg": ["beach"],
    "d.jpg": ["family"],
    "e.jpg": [],
}


@pytest.fixture
def h(tmp_path, library):
    for n, name in enumerate(TAGGING):
        make_jpeg(library / name, color=(20, n * 40, 20))
    with harness(tmp_path, ["tags"]) as harness_:
        harness_.scan()
        for path, names in TAGGING.items():
            for name in names:
                response = harness_.post("/image/tags", json={"path": path, "tag_name": name})
                assert response.status_code == 200, response.text
        yield harness_


def ids(h):
    return {tag["name"]: tag["id"] for tag in h.get("/image/tags/all").json()}


def photos(h, **params):
    response = h.get("/photos", params=params)
    assert response.status_code == 200, response.text
    return response.json()["photos"]


def test_filter_by_any_or_all_of_the_tags(h):
    tag = ids(h)
    beach_or_family = f"{tag['beach']},{tag['family']}"
    assert photos(h, tag_ids=beach_or_family) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert photos(h, tag_ids=beach_or_family, tag_match="any") == photos(h, tag_ids=beach_or_family)
    assert photos(h, tag_ids=beach_or_family, tag_match="all") == ["a.jpg"]
    beach_and_sun = f"{tag['beach']},{tag['sun']}, {tag['sun']}"  # a repeated id is one tag
    assert photos(h, tag_ids=beach_and_sun, tag_match="all") == ["a.jpg", "b.jpg"]
    # the Rust server's spelling
    assert photos(h, tag_ids=beach_and_sun, tag_filter_mode="All") == ["a.jpg", "b.jpg"]
    assert photos(h, tag_ids=beach_and_sun, tag_filter_mode="Any") == ["a.jpg", "b.jpg", "c.jpg"]
    assert photos(h, tag_ids="999") == []
    assert photos(h, tag_ids="") == photos(h)


def test_exclude_tags(h):
    tag = ids(h)
    assert photos(h, exclude_tag_ids=str(tag["sun"])) == ["c.jpg", "d.jpg", "e.jpg"]
    assert photos(h, tag_ids=str(tag["beach"]), exclude_tag_ids=str(tag["sun"])) == ["c.jpg"]
    both = f"{tag['family']},{tag['beach']}"
    assert photos(h, exclude_tag_ids=both) == ["e.jpg"]


def test_tag_filters_page_and_count(h):
    tag = ids(h)
    body = h.get("/photos", params={"tag_ids": str(tag["beach"]), "limit": 2, "offset": 1}).json()
    assert body["photos"] == ["b.jpg", "c.jpg"] and body["total"] == 3


def test_bad_filter_values_are_400_naming_the_parameter(h):
    for params, name in (
        ({"tag_ids": "1,beach"}, "tag_ids"),
        ({"exclude_tag_ids": "x"}, "exclude_tag_ids"),
        ({"tag_ids": "1", "tag_match": "most"}, "tag_match"),
        ({"tag_ids": "1", "tag_filter_mode": "Some"}, "tag_filter_mode"),
    ):
        response = h.get("/photos", params=params)
        assert response.status_code == 400, params
        assert response.json()["parameter"] == name


def test_sort_by_tag_count(h):
    counts = {name: len(tags) for name, tags in TAGGING.items()}
    most_first = photos(h, sort="TagCountDesc")
    fewest_first = photos(h, sort="TagCountAsc")
    assert [counts[name] for name in most_first] == [3, 2, 1, 1, 0]
    assert [counts[name] for name in fewest_first] == [0, 1, 1, 2, 3]
    assert most_first[2:4] == fewest_first[1:3]  # ties keep one order (file id) both ways
    tag = ids(h)
    page = h.get(
        "/photos", params={"sort": "TagCountDesc", "tag_ids": str(tag["family"]), "limit": 1}
    ).json()
    assert page["photos"] == ["a.jpg"] and page["total"] == 2


def test_listing_carries_each_files_tags(h):
    entries = {e["path"]: e for e in h.get("/photos").json()["files"]}
    assert [t["name"] for t in entries["a.jpg"]["tags"]] == ["beach", "family", "sun"]
    assert entries["e.jpg"]["tags"] == []
    assert set(entries["c.jpg"]["tags"][0]) == {"id", "name"}


def test_listing_tags_cost_the_same_for_a_big_page(h, library):
    for n in range(30):
        make_jpeg(library / "many" / f"{n:02}.jpg")
    h.scan()
    everything = [f"many/{n:02}.jpg" for n in range(30)]
    response = h.post("/image/tags/batch", json={"paths": everything, "add": ["bulk"]})
    assert response.status_code == 200

    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(h.kernel.db.engine, "before_cursor_execute", count)
    try:
        small = len(h.get("/photos", params={"path": "many", "limit": 2}).json()["files"])
        small_cost = len(statements)
        statements.clear()
        files = h.get("/photos", params={"path": "many"}).json()["files"]
        big_cost = len(statements)
    finally:
        event.remove(h.kernel.db.engine, "before_cursor_execute", count)
    assert (small, len(files)) == (2, 30)
    assert all(f["tags"][0]["name"] == "bulk" for f in files)
    assert big_cost <= small_cost


def test_tags_come_back_with_a_missing_file(h, library):
    tag = ids(h)
    original = library / "a.jpg"
    kept, stat = original.read_bytes(), original.stat()
    original.unlink()
    h.scan()
    assert "a.jpg" not in photos(h, tag_ids=str(tag["family"]))
    counts = {t["name"]: t["count"] for t in h.get("/image/tags/all").json()}
    assert counts == {"beach": 2, "family": 1, "sun": 1}
    assert h.get("/image/tags", params={"path": "a.jpg"}).status_code == 404

    original.write_bytes(kept)
    os.utime(original, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    h.scan()
    assert photos(h, tag_ids=str(tag["family"]), tag_match="all") == ["a.jpg", "d.jpg"]
    names = [t["name"] for t in h.get("/image/tags", params={"path": "a.jpg"}).json()]
    assert names == ["beach", "family", "sun"]
    counts = {t["name"]: t["count"] for t in h.get("/image/tags/all").json()}
    assert counts == {"beach": 3, "family": 2, "sun": 2}
