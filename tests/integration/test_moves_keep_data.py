"""A user's story: tag and favourite ``a/x.jpg``, ``mv a/x.jpg b/x.jpg``, wait for the
watcher: ``b/x.jpg`` is listed with its tags, its favourite, its EXIF and in memories,
and nothing is left at the old path. A copy starts untagged."""

from __future__ import annotations

import shutil
import time
from datetime import datetime

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = [
    pytest.mark.db,
    pytest.mark.requires_plugins("tags", "favorites", "exif", "memories", "thumbnails"),
]
PLUGINS = ["tags", "favorites", "exif", "memories", "thumbnails"]


async def _start_watcher(kernel):
    kernel.spawn_background(kernel.watcher.run(), "watcher under test")


def entry(h, path):
    folder = path.rpartition("/")[0]
    listed = h.get("/photos", params={"path": folder, "recursive": "false"}).json()
    return next((f for f in listed["files"] if f["path"] == path), None)


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_tags_favourites_exif_and_memories_follow_a_move_under_the_watcher(tmp_path, library):
    today = datetime.now()
    taken = datetime(today.year - 3, today.month, today.day, 12, 0)
    make_jpeg(library / "a" / "x.jpg", taken=taken, make="Canon")
    other = tmp_path / "other"
    other.mkdir()
    toml = f'[[kernel.libraries]]\nid = 2\nname = "family"\npath = "{other}"\n'
    with harness(tmp_path, PLUGINS, plugins_toml=toml) as h:
        h.scan()
        assert h.post("/image/tags", json={"path": "a/x.jpg", "tag_name": "beach"}).is_success
        assert h.post("/favorites", json={"path": "a/x.jpg"}).is_success
        before = entry(h, "a/x.jpg")
        assert before["tags"] and before["favorite"] is True and before["exif"]
        h.run(_start_watcher, h.kernel)
        time.sleep(0.5)
        (library / "b").mkdir()
        (library / "a" / "x.jpg").rename(library / "b" / "x.jpg")
        assert wait_for(lambda: entry(h, "b/x.jpg") is not None)
        after = entry(h, "b/x.jpg")
        for field in ("id", "tags", "favorite", "exif", "date_taken", "content_hash"):
            assert after[field] == before[field], field
        assert entry(h, "a/x.jpg") is None
        favourites = h.get("/favorites").json()
        assert [f["path"] for f in favourites["files"]] == ["b/x.jpg"]
        remembered = h.get("/memories", params={"span": "day"}).json()
        paths = [item["path"] for year in remembered["years"] for item in year["items"]]
        assert paths == ["b/x.jpg"]
        thumb = h.get("/image", params={"path": "b/x.jpg", "size": "thumb"})
        assert thumb.status_code == 200

        shutil.copy2(library / "b" / "x.jpg", library / "b" / "copy.jpg")
        assert wait_for(lambda: entry(h, "b/copy.jpg") is not None)
        copy = entry(h, "b/copy.jpg")
        assert copy["id"] != after["id"] and not copy["tags"] and copy["favorite"] is False
        assert entry(h, "b/x.jpg")["tags"] == before["tags"]

        shutil.move(library / "b" / "x.jpg", other / "x.jpg")  # to another library
        assert wait_for(lambda: h.get("/favorites").json()["files"][0]["library"] == 2)
        moved = h.get("/photos", params={"library": "family"}).json()["files"][0]
        assert (moved["id"], moved["tags"], moved["favorite"]) == (
            before["id"],
            before["tags"],
            True,
        )
