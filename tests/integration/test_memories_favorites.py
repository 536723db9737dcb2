"""Memories with favourites: each user's answer carries that user's favourite flags, and
a kept answer (memories keeps its encoded answer until the database changes) follows a
favourite as soon as it is set or dropped."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kernel.testing import Harness, harness, make_jpeg

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("memories", "favorites")]


def flags(h: Harness, headers: dict[str, str] | None = None) -> dict[str, Any]:
    params = {"date": "2026-11-23", "tz": "UTC"}
    response = h.get("/memories", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return {item["path"]: item["favorite"] for g in response.json()["years"] for item in g["items"]}


def test_each_user_sees_their_own_favourites_at_once(tmp_path: Path, library: Path) -> None:
    for name, when in (("a.jpg", datetime(2024, 11, 24, 12)), ("b.jpg", datetime(2022, 11, 25))):
        path = make_jpeg(library / name)
        os.utime(path, (when.timestamp(),) * 2)  # no exif: memories dates by mtime
    with harness(tmp_path, ["memories", "favorites"]) as h:
        h.scan()
        other = {"Authorization": f"Bearer {h.login_as('other')}"}
        assert flags(h) == {"a.jpg": False, "b.jpg": False}
        assert flags(h, other) == {"a.jpg": False, "b.jpg": False}
        assert h.post("/favorites", json={"path": "a.jpg"}).status_code == 200
        assert flags(h) == {"a.jpg": True, "b.jpg": False}
        assert flags(h, other) == {"a.jpg": False, "b.jpg": False}
        assert h.post("/favorites", json={"path": "b.jpg"}, headers=other).status_code == 200
        assert flags(h, other) == {"a.jpg": False, "b.jpg": True}
        assert flags(h) == {"a.jpg": True, "b.jpg": False}
        assert h.delete("/favorites", json={"path": "a.jpg"}).status_code == 200
        assert flags(h) == {"a.jpg": False, "b.jpg": False}
