"""Persons and the faces bound to them: names unique in any case, merges, covers, the
unassigned faces with suggestions, ``/photos?person_ids=`` and ``persons`` in listings,
the LLM tools, auto-binding by tag (tags from an in-test plugin's ``file_extras``)."""

from __future__ import annotations

import io
import math

import pytest
from faces_support import drain, faces_app, faces_of, photo
from fake_apollo import cosine
from PIL import Image

from kernel import hookimpl
from kernel.types import ToolContext

pytestmark = pytest.mark.db

A = (228, 128, 128)  # the fake's embedding: colour - 128, so (100, 0, 0)


def at_cosine(c: float) -> tuple[int, int, int]:
    """A colour whose face has cosine ``c`` with a face of colour A."""
    return (round(128 + 100 * c), round(128 + 100 * math.sqrt(1 - c * c)), 128)


class FakeTags:
    """Tags by path, offered the way the tags plugin offers them (``file_extras``)."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    @hookimpl
    def file_extras(self, files):
        return {
            f.id: {"tags": [{"id": n, "name": t} for n, t in enumerate(self.by_path[f.rel_path])]}
            for f in files
            if f.rel_path in self.by_path
        }


def person(h, name: str) -> dict:
    response = h.post("/persons", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def test_person_names_are_unique_in_any_case(tmp_path, library, apollo):
    with faces_app(tmp_path, apollo.url) as h:
        asa = person(h, "Åsa")
        assert asa["face_count"] == 0 and asa["cover_face_id"] is None
        assert h.post("/persons", json={"name": "ÅSA"}).status_code == 409
        assert h.post("/persons", json={"name": "  "}).status_code == 400
        bob = person(h, "Bob")
        assert h.patch(f"/persons/{bob['id']}", json={"name": "åsa"}).status_code == 409
        renamed = h.patch(f"/persons/{bob['id']}", json={"name": "Robert", "notes": "uncle"})
        assert renamed.status_code == 200 and renamed.json()["notes"] == "uncle"
        assert [p["name"] for p in h.get("/persons").json()] == ["Robert", "Åsa"]
        for call in (
            lambda: h.get("/persons/999"),
            lambda: h.patch("/persons/999", json={"name": "x"}),
            lambda: h.delete("/persons/999"),
            lambda: h.post("/persons/999/merge", json={"into": asa["id"]}),
            lambda: h.get("/persons/999/photos"),
        ):
            assert call().status_code == 404
        assert h.post(f"/persons/{asa['id']}/merge", json={"into": asa["id"]}).status_code == 400


def test_faces_persons_covers_merge_and_listings(tmp_path, library, apollo):
    photo(library / "a.jpg", A)
    photo(library / "wide.jpg", (40, 40, 230), size=(200, 80))  # two faces
    photo(library / "copy" / "a.jpg", A)
    (library / "copy" / "a.jpg").write_bytes((library / "a.jpg").read_bytes())
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        (face_a,) = faces_of(h, "a.jpg")["faces"]
        left, right = faces_of(h, "wide.jpg")["faces"]
        alice, bob = person(h, "Alice"), person(h, "Bob")

        bound = h.patch(f"/faces/{face_a['id']}", json={"person_id": alice["id"]})
        assert bound.status_code == 200 and bound.json()["person_name"] == "Alice"
        assert h.get(f"/persons/{alice['id']}").json()["cover_face_id"] == face_a["id"]
        h.patch(f"/faces/{left['id']}", json={"person_id": bob["id"]})
        h.patch(f"/faces/{right['id']}", json={"person_id": bob["id"]})
        assert h.patch("/faces/999", json={"person_id": bob["id"]}).status_code == 404
        assert h.patch(f"/faces/{left['id']}", json={"person_id": 999}).status_code == 404

        photos = h.get(f"/persons/{alice['id']}/photos").json()
        assert photos["total"] == 2  # both copies of the content
        assert {p["path"] for p in photos["photos"]} == {"a.jpg", "copy/a.jpg"}
        assert photos["photos"][0]["persons"] == [{"id": alice["id"], "name": "Alice"}]
        assert len(h.get(f"/persons/{bob['id']}/faces").json()) == 2

        listing = h.get("/photos", params={"recursive": "true", "person_ids": str(bob["id"])})
        assert listing.status_code == 200
        assert listing.json()["photos"] == ["wide.jpg"]
        assert listing.json()["files"][0]["persons"] == [{"id": bob["id"], "name": "Bob"}]
        both = f"{alice['id']},{bob['id']}"
        assert (
            h.get("/photos", params={"recursive": "true", "person_ids": both}).json()["total"] == 3
        )
        bad = h.get("/photos", params={"person_ids": "x"})
        assert bad.status_code == 400 and "person_ids" in bad.text

        # the cover follows the faces: unassigning the cover picks another face
        h.patch(f"/faces/{left['id']}", json={"person_id": None})
        assert h.get(f"/persons/{bob['id']}").json()["cover_face_id"] == right["id"]
        cover = h.patch(f"/persons/{bob['id']}", json={"cover_face_id": face_a["id"]})
        assert cover.status_code == 400  # not one of Bob's faces

        merged = h.post(f"/persons/{bob['id']}/merge", json={"into": alice["id"]})
        assert merged.status_code == 201 or merged.status_code == 200, merged.text
        assert merged.json()["face_count"] == 2 and merged.json()["cover_face_id"] == face_a["id"]
        assert h.get(f"/persons/{bob['id']}").status_code == 404

        assert h.delete(f"/faces/{face_a['id']}").status_code == 204
        assert h.get(f"/faces/{face_a['id']}").status_code == 404
        assert h.get(f"/persons/{alice['id']}").json()["cover_face_id"] == right["id"]
        assert h.delete(f"/persons/{alice['id']}").status_code == 204
        assert h.get(f"/faces/{right['id']}").json()["person_id"] is None


def test_unassigned_faces_suggest_the_nearest_person(tmp_path, library, apollo):
    photo(library / "alice.jpg", A)
    photo(library / "bob.jpg", (128, 128, 228))
    photo(library / "alike.jpg", at_cosine(0.9))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        alice, bob = person(h, "Alice"), person(h, "Bob")
        h.patch(
            f"/faces/{faces_of(h, 'alice.jpg')['faces'][0]['id']}", json={"person_id": alice["id"]}
        )
        h.patch(f"/faces/{faces_of(h, 'bob.jpg')['faces'][0]['id']}", json={"person_id": bob["id"]})
        page = h.get("/faces/unassigned").json()
        assert page["total"] == 1
        (face,) = page["faces"]
        assert face["path"] == "alike.jpg"
        assert face["suggestion"]["person_id"] == alice["id"]
        assert face["suggestion"]["cosine"] == pytest.approx(0.9, abs=0.03)


def test_crop_is_a_cached_jpeg(tmp_path, library, apollo):
    photo(library / "a.jpg", A, size=(400, 300))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        (face,) = faces_of(h, "a.jpg")["faces"]
        response = h.get(f"/faces/{face['id']}/crop")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert "max-age=86400" in response.headers["cache-control"]
        with Image.open(io.BytesIO(response.content)) as im:
            assert max(im.size) <= 256 and im.size[0] > 100  # the box padded by a fifth
        again = h.get(
            f"/faces/{face['id']}/crop", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304
        assert h.get("/faces/999/crop").status_code == 404


def test_tools(tmp_path, library, apollo):
    photo(library / "a.jpg", A)
    photo(library / "b.jpg", (40, 40, 230), size=(200, 80))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        alice = person(h, "Alice")
        h.patch(f"/faces/{faces_of(h, 'b.jpg')['faces'][0]['id']}", json={"person_id": alice["id"]})
        tools = h.kernel.tools
        ctx = ToolContext(h.kernel, None)
        who = h.run(tools["who_is_in_photo"].invoke, {"path": "b.jpg"}, ctx)
        assert who == {
            "path": "b.jpg",
            "status": "detected",
            "persons": ["Alice"],
            "unnamed_faces": 1,
        }
        found = h.run(tools["find_photos_of_person"].invoke, {"name": "ALICE"}, ctx)
        assert found["person"] == "Alice" and found["total"] == 1
        assert found["photos"][0]["path"] == "b.jpg"
        missing = h.run(tools["find_photos_of_person"].invoke, {"name": "Zed"}, ctx)
        assert "error" in missing and missing["known_persons"] == ["Alice"]
        assert "error" in h.run(tools["who_is_in_photo"].invoke, {"path": "../x.jpg"}, ctx)


def test_autobind_by_tag_on_both_sides_of_the_threshold(tmp_path, library, apollo):
    near, far = at_cosine(0.47), at_cosine(0.33)
    assert cosine(A, near) > 0.44 and cosine(A, far) < 0.36
    tags = FakeTags()
    with faces_app(tmp_path, apollo.url, extra_plugins={"tags": tags}) as h:
        alice = person(h, "Alice")
        carol = person(h, "Carol")
        photo(library / "first.jpg", A)
        tags.by_path["first.jpg"] = ["alice"]
        photo(library / "carol_first.jpg", A)  # the same colour, another tag: another content?
        (library / "carol_first.jpg").write_bytes(_variant(library / "first.jpg"))
        tags.by_path["carol_first.jpg"] = ["CAROL", "beach"]
        h.scan()
        drain(h)
        # a person without faces takes the first tagged face unconditionally, as cover
        (first,) = faces_of(h, "first.jpg")["faces"]
        assert first["person_id"] == alice["id"]
        assert h.get(f"/persons/{alice['id']}").json()["cover_face_id"] == first["id"]
        assert faces_of(h, "carol_first.jpg")["faces"][0]["person_id"] == carol["id"]

        photo(library / "near.jpg", near)
        tags.by_path["near.jpg"] = ["Alice"]
        photo(library / "far.jpg", far)
        tags.by_path["far.jpg"] = ["Carol"]
        photo(library / "untagged.jpg", A, size=(90, 64))
        h.scan()
        drain(h)
        assert faces_of(h, "near.jpg")["faces"][0]["person_id"] == alice["id"]  # cos 0.47
        assert faces_of(h, "far.jpg")["faces"][0]["person_id"] is None  # cos 0.33
        assert faces_of(h, "untagged.jpg")["faces"][0]["person_id"] is None


def _variant(path) -> bytes:
    """The same picture as other bytes (another content hash)."""
    with Image.open(path) as im:
        out = io.BytesIO()
        im.save(out, "JPEG", quality=94)
        return out.getvalue()
