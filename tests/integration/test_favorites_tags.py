"""Favourites and tags together: both plugins' filters in one listing, per user."""

from __future__ import annotations

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("tags", "favorites")]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def favorite(h, path, headers=None):
    response = h.post("/favorites", json={"path": path}, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def test_favorites_with_tag_filters_and_paging(tmp_path, library):
    for n in range(8):
        make_jpeg(library / f"p{n}.jpg", color=(n * 30, 0, 0))
    with harness(tmp_path, ["tags", "favorites"]) as h:
        h.scan()
        other = bearer(h.login_as("other"))
        for n in (0, 1, 2, 3, 4):
            h.post("/image/tags", json={"path": f"p{n}.jpg", "tag_name": "beach"})
        for n in (1, 3, 4, 6):
            favorite(h, f"p{n}.jpg")
        favorite(h, "p0.jpg", headers=other)
        beach = h.get("/image/tags/all").json()[0]["id"]
        params = {"favorites": "true", "tag_ids": str(beach), "limit": 2}
        first = h.get("/photos", params=params).json()
        assert first["photos"] == ["p1.jpg", "p3.jpg"] and first["total"] == 3
        second = h.get("/photos", params={**params, "offset": 2}).json()
        assert second["photos"] == ["p4.jpg"] and second["total"] == 3
        entry = second["files"][0]
        assert entry["favorite"] is True and entry["tags"] == [{"id": beach, "name": "beach"}]
        not_mine = h.get("/photos", params={"favorites": "false", "tag_ids": str(beach)}).json()
        assert not_mine["photos"] == ["p0.jpg", "p2.jpg"]
        theirs = h.get("/photos", params={**params, "limit": 10}, headers=other).json()
        assert theirs["photos"] == ["p0.jpg"]
        excluded = h.get(
            "/photos", params={"favorites": "true", "exclude_tag_ids": str(beach)}
        ).json()
        assert excluded["photos"] == ["p6.jpg"]
