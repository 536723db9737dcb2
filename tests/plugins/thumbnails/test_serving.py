"""An already-made thumbnail is answered without asking the database again, as one body,
after another file's commit too (its row is checked by id on the spot and the state of
its thumbnail is kept by the file's content); a changed file is looked up and rendered
again, and a rendition deleted behind the server's back is made again."""

from __future__ import annotations

from sqlalchemy import event

from kernel.testing import harness, make_jpeg


def _statements(kernel) -> list[str]:
    seen: list[str] = []
    event.listen(kernel.db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_made_thumbnail_costs_no_query_until_the_database_changes(tmp_path, library):
    make_jpeg(library / "a.jpg", size=(640, 480))
    with harness(tmp_path, ["thumbnails"], library=library) as h:
        h.scan()
        first = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        h.get("/image", params={"path": "a.jpg", "size": "thumb"})  # after its state commit
        statements = _statements(h.kernel)
        for _ in range(10):
            again = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
            assert again.status_code == 200 and again.content == first.content
            assert again.headers["content-length"] == str(len(first.content))
            assert "transfer-encoding" not in again.headers  # one body, not a stream
        assert statements == []

        make_jpeg(library / "b.jpg")  # another file's commit: the kept row is checked by its
        h.scan()  # id on the spot, the thumbnail's state is kept by the file's content
        statements.clear()
        assert h.get("/image", params={"path": "a.jpg", "size": "thumb"}).content == first.content
        assert statements == []

        make_jpeg(library / "a.jpg", size=(480, 640))  # the file itself changed
        h.scan()
        changed = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        assert changed.status_code == 200 and changed.content != first.content
        assert [s for s in statements if "FROM files" in s]  # looked up again, then rendered


def test_a_rendition_deleted_behind_the_servers_back_is_made_again(tmp_path, library):
    make_jpeg(library / "a.jpg", size=(640, 480))
    with harness(tmp_path, ["thumbnails"], library=library) as h:
        h.scan()
        first = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        plugin = h.kernel.plugin("thumbnails")
        for made in plugin.storage.roots[0].rglob("*"):
            if made.is_file() and made.suffix in (".jpg", ".jpeg"):
                made.unlink()
        again = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        assert again.status_code == 200 and again.content == first.content
