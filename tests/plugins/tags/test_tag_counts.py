"""``tag_counts`` — each file's number of tags, which the TagCount sorts walk — stays
equal to what ``tagged_photo`` says through every way tags change: adding, removing,
batches, deleting a tag (a cascade), a write by another program, and a migration that
builds it from existing tags."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from kernel import migrate
from kernel.testing import harness, make_jpeg
from plugins.tags.tables import tag_counts, tagged_photo

pytestmark = pytest.mark.db
NAMES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


@pytest.fixture
def h(tmp_path, library):
    for n, name in enumerate(NAMES):
        make_jpeg(library / name, color=(n * 50, 30, 30))
    with harness(tmp_path, ["tags"]) as harness_:
        harness_.scan()
        yield harness_


def stored_counts(h) -> dict[int, int]:
    with h.kernel.db.read() as conn:
        return dict(conn.execute(select(tag_counts.c.file_id, tag_counts.c.tag_count)).all())


def true_counts(h) -> dict[int, int]:
    with h.kernel.db.read() as conn:
        rows = conn.execute(
            select(tagged_photo.c.file_id, func.count()).group_by(tagged_photo.c.file_id)
        ).all()
    return dict(rows)


def by_count(h) -> list[str]:
    return h.get("/photos", params={"sort": "TagCountDesc"}).json()["photos"]


def tag(h, path, name):
    response = h.post("/image/tags", json={"path": path, "tag_name": name})
    assert response.status_code == 200, response.text
    return response.json()


def test_counts_follow_every_kind_of_change(h):
    assert stored_counts(h) == {}
    sun = tag(h, "c.jpg", "sun")
    tag(h, "c.jpg", "sea")
    tag(h, "b.jpg", "sea")
    assert stored_counts(h) == true_counts(h) and len(stored_counts(h)) == 2
    assert by_count(h)[:2] == ["c.jpg", "b.jpg"]

    batch = {"paths": ["a.jpg", "d.jpg"], "add": ["x", "y", "z"], "remove": []}
    assert h.post("/image/tags/batch", json=batch).status_code == 200
    assert stored_counts(h) == true_counts(h)
    assert set(by_count(h)[:2]) == {"a.jpg", "d.jpg"}

    x_id = next(t["id"] for t in h.get("/image/tags/all").json() if t["name"] == "x")
    response = h.delete("/image/tags", json={"path": "a.jpg", "tag_id": x_id})
    assert response.status_code == 200, response.text
    assert stored_counts(h) == true_counts(h)

    assert h.delete(f"/image/tags/{sun['id']}").status_code == 200  # cascades
    assert stored_counts(h) == true_counts(h)

    with h.kernel.db.write() as conn:  # another program deleting rows directly
        conn.execute(text("DELETE FROM tagged_photo"))
    assert stored_counts(h) == {}
    assert by_count(h) == h.get("/photos", params={"sort": "TagCountAsc"}).json()["photos"]


def test_the_migration_counts_tags_that_already_exist(h):
    tag(h, "a.jpg", "one")
    tag(h, "a.jpg", "two")
    tag(h, "b.jpg", "one")
    (branch,) = [b for b in h.kernel.migration_branches() if b.name == "tags"]
    migrate.downgrade(h.kernel.db, branch, "tags_0001")
    with h.kernel.db.write() as conn:  # tagged while the counts table did not exist
        conn.execute(
            text(
                "INSERT INTO tagged_photo (tag_id, file_id, created_at)"
                " SELECT t.id, f.id, 0 FROM tags t, files f"
                " WHERE t.name = 'two' AND f.name = 'c.jpg'"
            )
        )
    migrate.upgrade(h.kernel.db, branch)
    assert stored_counts(h) == true_counts(h) and sorted(stored_counts(h).values()) == [1, 1, 2]
    tag(h, "d.jpg", "three")  # and the triggers are back
    assert stored_counts(h) == true_counts(h)
