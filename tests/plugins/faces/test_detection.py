"""Detection end to end: scan, Apollo, rows keyed by content; what is never sent; the
inert plugin; manual faces and re-runs."""

from __future__ import annotations

import pytest
from faces_support import drain, faces_app, faces_of, photo
from sqlalchemy import delete, select

from kernel.testing import make_video

pytestmark = pytest.mark.db

RED = (230, 40, 40)
BLUE = (40, 40, 230)


def test_scan_detects_each_photo_once_and_normalises_boxes(tmp_path, library, apollo):
    photo(library / "one.jpg", RED, size=(96, 64))
    photo(library / "two.jpg", BLUE, size=(200, 80))  # twice as wide: two faces
    photo(library / "dark.jpg", (5, 5, 5))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        one = faces_of(h, "one.jpg")
        assert one["status"] == "detected" and len(one["faces"]) == 1
        face = one["faces"][0]
        assert face["bbox"] == pytest.approx([0.25, 0.25, 0.5, 0.5], abs=0.02)
        assert face["source"] == "auto" and face["model_version"].startswith("buffalo_l")
        assert face["confidence"] == pytest.approx(0.98)
        two = faces_of(h, "two.jpg")
        assert [f["bbox"] for f in two["faces"]] == [
            pytest.approx([0, 0, 0.5, 1], abs=0.02),
            pytest.approx([0.5, 0, 0.5, 1], abs=0.02),
        ]
        assert faces_of(h, "dark.jpg")["status"] == "no_faces"
        assert len(apollo.detect_calls()) == 3
        h.scan()
        drain(h)
        assert len(apollo.detect_calls()) == 3  # scanned photos are never sent again


def test_boxes_are_relative_to_the_upright_photo(tmp_path, library, apollo):
    """Stored 200x80 but shown turned (orientation 6): the fake sees 80x200, one face."""
    photo(library / "turned.jpg", RED, size=(200, 80), orientation=6)
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        (face,) = faces_of(h, "turned.jpg")["faces"]
        assert face["bbox"] == pytest.approx([0.25, 0.25, 0.5, 0.5], abs=0.02)


def test_a_copy_in_a_second_library_costs_no_call(tmp_path, library, apollo):
    backup = tmp_path / "backup"
    photo(library / "a.jpg", RED)
    photo(backup / "copy" / "a.jpg", RED)
    (backup / "copy" / "a.jpg").write_bytes((library / "a.jpg").read_bytes())
    toml = f'[[kernel.libraries]]\nid = 2\nname = "backup"\npath = "{backup}"\n'
    with faces_app(tmp_path, apollo.url, plugins_toml=toml) as h:
        h.scan()
        drain(h)
        assert len(apollo.detect_calls()) == 1
        original = faces_of(h, "a.jpg")["faces"]
        copy = faces_of(h, "copy/a.jpg", library="backup")["faces"]
        assert original == copy and len(copy) == 1


def test_videos_and_excluded_folders_are_never_sent(tmp_path, library, apollo):
    photo(library / "keep.jpg", RED)
    photo(library / "private" / "secret.jpg", BLUE)
    photo(library / "x" / "@eaDir" / "junk.jpg", BLUE)
    make_video(library / "clip.mp4")
    env = {"EXCLUDED_DIRS": "/private,@eaDir"}
    with faces_app(tmp_path, apollo.url, env=env) as h:
        h.scan()
        drain(h)
        drain(h)
        assert len(apollo.detect_calls()) == 1
        assert faces_of(h, "keep.jpg")["status"] == "detected"
        assert faces_of(h, "private/secret.jpg")["status"] == "pending"
        assert h.get("/image/faces", params={"path": "clip.mp4"}).status_code == 400


def test_inert_without_a_url(tmp_path, library, apollo):
    photo(library / "a.jpg", RED)
    with faces_app(tmp_path, None) as h:
        h.scan()
        assert drain(h) == 0
        response = h.get("/image/faces", params={"path": "a.jpg"})
        assert response.status_code == 503
        detail = "face detection is not configured (set APOLLO_FACE_API_BASE_URL)"
        assert response.json()["detail"] == detail
        for call in (
            lambda: h.get("/faces/1"),
            lambda: h.get("/faces/unassigned"),
            lambda: h.post("/image/faces", json={"path": "a.jpg", "bbox": [0, 0, 1, 1]}),
            lambda: h.post("/image/faces/rerun", json={"path": "a.jpg"}),
        ):
            assert call().status_code == 503
        created = h.post("/persons", json={"name": "Alice"})
        assert created.status_code == 201, created.text
        assert [p["name"] for p in h.get("/persons").json()] == ["Alice"]
        assert h.get("/photos", params={"person_ids": "1"}).json()["total"] == 0
    assert apollo.detect_calls() == []


def test_apollo_api_base_url_is_the_fallback(tmp_path, library, apollo):
    photo(library / "a.jpg", RED)
    with faces_app(tmp_path, None, env={"APOLLO_API_BASE_URL": apollo.url}) as h:
        h.scan()
        drain(h)
        assert faces_of(h, "a.jpg")["status"] == "detected"


def test_manual_face_and_force(tmp_path, library, apollo):
    photo(library / "a.jpg", (5, 5, 5), size=(100, 100))  # dark: the detector sees nothing
    photo(library / "b.jpg", RED, size=(100, 100))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        body = {"path": "a.jpg", "bbox": [0.1, 0.1, 0.3, 0.3]}
        refused = h.post("/image/faces", json=body)
        assert refused.status_code == 422, refused.text
        forced = h.post("/image/faces", json={**body, "force": True})
        assert forced.status_code == 201, forced.text
        assert forced.json()["source"] == "manual" and forced.json()["bbox"] == [0.1, 0.1, 0.3, 0.3]
        drawn = h.post("/image/faces", json={"path": "b.jpg", "bbox": [0.5, 0.5, 0.5, 0.5]})
        assert drawn.status_code == 201, drawn.text
        embed_calls = [p for p, _ in apollo.calls if p.endswith("/embed")]
        assert len(embed_calls) == 3
        for bad, word in (
            ([0.5, 0.5, 0.6, 0.2], "bbox"),
            ([0.1, 0.1, 0, 0.2], "bbox"),
            ([-0.1, 0.1, 0.2, 0.2], "bbox"),
            ([0.1, 0.1, 0.2], "bbox"),
        ):
            response = h.post("/image/faces", json={"path": "b.jpg", "bbox": bad})
            assert response.status_code == 400 and word in response.text, (bad, response.text)
        missing = h.post("/image/faces", json={**body, "person_id": 999})
        assert missing.status_code == 404


def test_manual_only_photo_is_never_detected_and_rerun_keeps_manual_rows(tmp_path, library, apollo):
    photo(library / "hand.jpg", RED)
    photo(library / "mixed.jpg", BLUE)
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        # hand.jpg: a manual face before any detection stored anything
        table = _faces_table(h)
        hand_hash = _hash(h, "hand.jpg")
        with h.kernel.db.write() as conn:
            conn.execute(delete(table).where(table.c.content_hash == hand_hash))
        manual = h.post("/image/faces", json={"path": "hand.jpg", "bbox": [0, 0, 0.4, 0.4]})
        assert manual.status_code == 201
        calls = len(apollo.detect_calls())
        drain(h)
        h.scan()
        drain(h)
        assert len(apollo.detect_calls()) == calls  # a manual face marks the photo scanned
        assert [f["source"] for f in faces_of(h, "hand.jpg")["faces"]] == ["manual"]

        drain(h)
        h.post("/image/faces", json={"path": "mixed.jpg", "bbox": [0, 0, 0.2, 0.2]})
        before = faces_of(h, "mixed.jpg")["faces"]
        assert sorted(f["source"] for f in before) == ["auto", "manual"]
        rerun = h.post("/image/faces/rerun", json={"path": "mixed.jpg"})
        assert rerun.status_code == 200, rerun.text
        after = rerun.json()["faces"]
        assert sorted(f["source"] for f in after) == ["auto", "manual"]
        manual_ids = {f["id"] for f in before if f["source"] == "manual"}
        assert manual_ids == {f["id"] for f in after if f["source"] == "manual"}
        auto_before = {f["id"] for f in before if f["source"] == "auto"}
        assert auto_before.isdisjoint(f["id"] for f in after)
        by_id = h.post(f"/faces/{after[0]['id']}/rerun")
        assert by_id.status_code == 200 and len(by_id.json()["faces"]) == 2
        assert h.post("/image/faces/99999/rerun").status_code == 404


def _faces_table(h):
    from plugins.faces.tables import face_detections

    return face_detections


def _hash(h, path):
    from kernel.tables import files

    with h.kernel.db.read() as conn:
        return conn.execute(select(files.c.content_hash).where(files.c.rel_path == path)).scalar()


def test_backlog_pictures_are_decoded_on_the_plugin_s_own_threads(tmp_path, library, apollo):
    """Decoding a photo for Apollo takes tens of ms for a camera JPEG, up to
    ``detect_concurrency`` of them ahead: they run on threads of the plugin's own, not on
    the event loop's few, which answer the requests of the process running the backlog."""
    import threading

    photo(library / "one.jpg", RED)
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        assert faces_of(h, "one.jpg")["status"] == "detected"
        names = [t.name for t in threading.enumerate()]
        assert any(name.startswith("imageapi-faces") for name in names), names
