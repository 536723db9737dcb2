"""A thumbnail of a file that just arrived answers at once: a file copied in (not yet seen
by the watcher or a scan) is indexed on demand by ``GET /image`` and rendered, once for
fifty concurrent first requests; an upload is indexed by the uploads plugin and gets its
thumbnail the same way. What a scan would not index is not indexed on demand either."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select, text

from kernel.tables import files
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db
NO_PREGENERATION = "[plugins.thumbnails]\npregenerate_sizes = []\ngif = false\n"


def indexed(h) -> list[str]:
    with h.kernel.db.read() as conn:
        return sorted(conn.execute(select(files.c.rel_path)).scalars())


def render_attempts(h, rel_path: str) -> list[tuple[int, list[str]]]:
    """The thumbnails plugin's record of its renders of one file."""
    query = text(
        "SELECT t.attempts, t.sizes FROM thumbnails t JOIN files f ON f.id = t.file_id"
        " WHERE f.rel_path = :path"
    )
    with h.kernel.db.read() as conn:
        return [(n, sizes.split()) for n, sizes in conn.execute(query, {"path": rel_path})]


@pytest.mark.requires_plugins("thumbnails")
def test_fifty_first_requests_for_a_file_just_copied_in(tmp_path, library):
    with harness(tmp_path, ["thumbnails"], plugins_toml=NO_PREGENERATION) as h:
        h.scan()
        Image.new("RGB", (2400, 1600), (30, 120, 200)).save(library / "new.jpg", "JPEG")
        assert indexed(h) == []  # no watcher, no scan: only the request can know it

        async def fifty() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=h.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                params = {"path": "new.jpg", "size": "thumb"}
                return await asyncio.gather(
                    *(client.get("/image", params=params, headers=h.headers) for _ in range(50))
                )

        responses = h.run(fifty)
        assert [r.status_code for r in responses] == [200] * 50, responses[0].text
        assert len({r.content for r in responses}) == 1
        assert responses[0].headers["content-type"] == "image/jpeg"
        assert indexed(h) == ["new.jpg"]
        assert render_attempts(h, "new.jpg") == [(1, ["thumb.jpg@200"])]  # rendered once
        with h.kernel.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(files)).scalar_one() == 1
        assert h.get("/photos").json()["photos"] == ["new.jpg"]


@pytest.mark.requires_plugins("thumbnails")
def test_what_a_scan_would_not_index_is_not_indexed_on_demand(tmp_path, library):
    thumbs = library / ".thumbs"  # THUMBNAILS inside the library, a common layout
    make_jpeg(library / "album" / "a.jpg")
    (library / "notes.txt").write_text("not a photo")
    os.symlink(library, library / "loop")  # a folder link back into the library
    env = {"THUMBNAILS": str(thumbs)}
    with harness(tmp_path, ["thumbnails"], plugins_toml=NO_PREGENERATION, env=env) as h:
        make_jpeg(thumbs / "1" / "fake.jpg")
        for path in ("loop/album/a.jpg", ".thumbs/1/fake.jpg", "notes.txt"):
            response = h.get("/image", params={"path": path, "size": "thumb"})
            assert response.status_code == 404, (path, response.text)
            assert h.get("/image", params={"path": path}).status_code == 200  # the original
        assert indexed(h) == []
        assert h.get("/image", params={"path": "album/a.jpg", "size": "thumb"}).status_code == 200
        assert indexed(h) == ["album/a.jpg"]


@pytest.mark.requires_plugins("uploads", "thumbnails")
def test_an_upload_has_its_thumbnail_at_once(tmp_path, library):
    make_jpeg(library / "x.jpg")
    photo = (library / "x.jpg").read_bytes()
    (library / "x.jpg").unlink()
    with harness(tmp_path, ["uploads", "thumbnails"], plugins_toml=NO_PREGENERATION) as h:
        uploaded = h.post("/image", files={"file": ("up.jpg", photo, "image/jpeg")})
        assert uploaded.status_code == 201
        thumb = h.get("/image", params={"path": "up.jpg", "size": "thumb"})
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert render_attempts(h, "up.jpg") == [(1, ["thumb.jpg@200"])]
