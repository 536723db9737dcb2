"""faces with the plugins it talks to through hooks: tags (auto-bind reads them through
``file_extras``) and thumbnails (a RAW photo's preview through ``render``, and crops)."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import pytest
from PIL import Image

FACES_TESTS = Path(__file__).resolve().parents[1] / "plugins" / "faces"

pytestmark = pytest.mark.db


def _faces_tests():
    """The faces tests' helpers and fake Apollo, imported when a test runs: with the faces
    plugin removed, their folder is gone and these tests are skipped, not uncollectable."""
    if str(FACES_TESTS) not in sys.path:
        sys.path.insert(0, str(FACES_TESTS))
    import faces_support
    import fake_apollo

    return faces_support, fake_apollo


@pytest.fixture
def apollo():
    _support, fake_apollo = _faces_tests()
    fake = fake_apollo.FakeApollo().start()
    yield fake
    fake.stop()


@pytest.fixture
def fs():
    return _faces_tests()[0]


def raw_with_preview(path: Path, colour, size=(200, 80), orientation=6) -> Path:
    """A little-endian TIFF laid out like a camera RAW: IFD0 with an orientation and a
    JPEG preview (JPEGInterchangeFormat). Pillow cannot open it as a photo."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=95)
    jpeg = out.getvalue()
    entries = [(254, 4, 1), (274, 3, orientation), (513, 4, 0), (514, 4, len(jpeg))]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    blob = b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries))
    for tag, typ, value in entries:
        value = data_at if tag == 513 else value
        packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        blob += struct.pack("<HHI", tag, typ, 1) + packed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob + struct.pack("<I", 0) + jpeg)
    return path


@pytest.mark.requires_plugins("faces", "tags")
def test_auto_bind_from_tags_plugin(tmp_path, library, apollo, fs):
    fs.photo(library / "alice.jpg", (228, 128, 128))
    fs.photo(library / "other.jpg", (40, 40, 230))
    apollo.mode = "500"  # nothing is detected until the tags are in place
    toml = "[plugins.faces]\nretry_base_seconds = 0\n"
    with fs.faces_app(tmp_path, apollo.url, plugins=("faces", "tags"), plugins_toml=toml) as h:
        h.scan()
        fs.drain(h)
        assert fs.faces_of(h, "alice.jpg")["status"] == "pending"
        alice = h.post("/persons", json={"name": "Alice"}).json()
        tagged = h.post("/image/tags", json={"path": "alice.jpg", "tag_name": "ALICE"})
        assert tagged.status_code == 200, tagged.text
        h.post("/image/tags", json={"path": "other.jpg", "tag_name": "beach"})
        apollo.mode = "ok"
        fs.drain(h)
        (face,) = fs.faces_of(h, "alice.jpg")["faces"]
        assert face["person_id"] == alice["id"]
        assert fs.faces_of(h, "other.jpg")["faces"][0]["person_id"] is None
        assert h.get(f"/persons/{alice['id']}").json()["cover_face_id"] == face["id"]
        listing = h.get("/photos", params={"person_ids": str(alice["id"])}).json()
        (entry,) = listing["files"]
        assert entry["persons"] == [{"id": alice["id"], "name": "Alice"}]
        assert [t["name"] for t in entry["tags"]] == ["ALICE"]


@pytest.mark.requires_plugins("faces", "thumbnails")
def test_raw_preview_and_crops_through_thumbnails(tmp_path, library, apollo, fs):
    raw_with_preview(library / "shot.nef", (230, 40, 40))
    with fs.faces_app(tmp_path, apollo.url, plugins=("faces", "thumbnails")) as h:
        h.scan()
        fs.drain(h)
        state = fs.faces_of(h, "shot.nef")
        assert state["status"] == "detected", state
        (face,) = state["faces"]  # upright 80x200: one face, in the middle
        assert face["bbox"] == pytest.approx([0.25, 0.25, 0.5, 0.5], abs=0.03)
        crop = h.get(f"/faces/{face['id']}/crop")
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(crop.content)) as im:
            assert im.height > im.width  # cut from the upright preview
            r, g, _b = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
            assert r > 180 and g < 90
        manual = h.post("/image/faces", json={"path": "shot.nef", "bbox": [0, 0, 0.5, 0.3]})
        assert manual.status_code == 201, manual.text


@pytest.mark.requires_plugins("faces")
def test_raw_without_a_preview_plugin_fails_with_the_reason(tmp_path, library, apollo, fs):
    raw_with_preview(library / "shot.nef", (230, 40, 40))
    with fs.faces_app(tmp_path, apollo.url) as h:
        h.scan()
        fs.drain(h)
        state = fs.faces_of(h, "shot.nef")
        assert state["status"] == "failed" and "thumbnails" in state["error"]
        assert apollo.detect_calls() == []
