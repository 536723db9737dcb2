"""POST /image as clients use it: the file lands in the folder, indexed at once, never
overwriting, under a safe name; photos and videos only; the limit; concurrent uploads;
the route beside the kernel's GET /image in one path of the OpenAPI document."""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


def test_upload_is_indexed_and_never_overwrites(tmp_path, library, form):
    original = make_jpeg(library / "trip" / "photo.jpg").read_bytes()
    with harness(tmp_path, ["uploads"]) as h:
        first = form.upload(h, "new.jpg", form.jpeg(), "trip")
        assert first.status_code == 201
        assert first.json()["path"] == "trip/new.jpg"
        assert first.json()["library"] == 1 and isinstance(first.json()["id"], int)
        assert (library / "trip" / "new.jpg").read_bytes() == form.jpeg()
        listed = h.get("/photos", params={"path": "trip"}).json()["photos"]
        assert "trip/new.jpg" in listed

        clash = form.upload(h, "photo.jpg", form.jpeg((1, 1, 1)), "trip")
        assert clash.status_code == 201
        assert re.fullmatch(r"trip/photo_\d{10}\.jpg", clash.json()["path"])
        assert (library / "trip" / "photo.jpg").read_bytes() == original
        assert not list((library / "trip").glob(".imageapi-upload-*"))
        staging = h.kernel.plugin("uploads").staging[1]
        assert list(staging.iterdir()) == []


def test_upload_names_are_reduced_to_a_safe_basename(tmp_path, library, form):
    with harness(tmp_path, ["uploads"]) as h:
        response = form.upload(h, "../../etc/evil name?.jpg", form.jpeg())
        assert response.status_code == 201
        assert response.json()["path"] == "evil name_.jpg"
        assert (library / "evil name_.jpg").exists()
        windows = form.upload(h, "C:\\Users\\me\\holiday.jpg", form.jpeg())
        assert windows.json()["path"] == "holiday.jpg"


def test_upload_refusals(tmp_path, library, form):
    (library / "folder").mkdir()
    toml = "[plugins.uploads]\nmax_bytes = 2000\n"
    with harness(tmp_path, ["uploads"], plugins_toml=toml) as h:
        too_big = form.upload(h, "big.jpg", form.jpeg() + b"\0" * 5000)
        assert too_big.status_code == 413
        assert form.upload(h, "notes.txt", b"hello").status_code == 415
        assert form.upload(h, "fake.jpg", b"hello, not a jpeg").status_code == 415
        assert form.upload(h, "fake.jpg", b"<html>" + b"x" * 1000).status_code == 415
        assert form.upload(h, "a.jpg", form.jpeg(), "../outside").status_code == 400
        assert form.upload(h, "a.jpg", form.jpeg(), "missing-folder").status_code == 404
        assert form.upload(h, "a.jpg", form.jpeg(), "folder/nested.jpg").status_code in (400, 404)
        assert form.upload(h, "a.jpg", form.jpeg(), "folder").status_code == 201
        assert sorted(p.name for p in library.rglob("*")) == ["a.jpg", "folder"]
        assert list(h.kernel.plugin("uploads").staging[1].iterdir()) == []


def test_the_kernel_key_of_older_versions_is_still_honoured(tmp_path, form):
    toml = "[kernel]\nupload_max_bytes = 2000\n"
    with harness(tmp_path, ["uploads"], plugins_toml=toml) as h:
        assert form.upload(h, "big.jpg", form.jpeg() + b"\0" * 5000).status_code == 413
        assert form.upload(h, "small.jpg", form.jpeg()).status_code == 201
    toml += "[plugins.uploads]\nmax_bytes = 100000\n"  # the plugin's own key wins
    with harness(tmp_path / "again", ["uploads"], plugins_toml=toml) as h:
        assert form.upload(h, "big.jpg", form.jpeg() + b"\0" * 5000).status_code == 201


def test_fields_in_any_order_and_the_directory_alias(tmp_path, library, form):
    (library / "a").mkdir()
    (library / "b").mkdir()
    with harness(tmp_path, ["uploads"]) as h:
        file_first = form.send(h, form.body(("file", form.jpeg(), "x.jpg"), ("path", "a", None)))
        assert file_first.status_code == 201, file_first.text
        assert file_first.json()["path"] == "a/x.jpg"
        alias = form.send(h, form.body(("directory", "b", None), ("file", form.jpeg(), "y.jpg")))
        assert alias.json()["path"] == "b/y.jpg"
        fields = [("path", "a", None), ("directory", "b", None)]
        both = form.send(h, form.body(*fields, ("file", form.jpeg(), "z.jpg")))
        assert both.json()["path"] == "a/z.jpg"  # path wins, as before
        ignored = form.send(
            h, form.body(("caption", "holiday", None), ("file", form.jpeg(), "w.jpg"))
        )
        assert ignored.status_code == 201 and ignored.json()["path"] == "w.jpg"


def test_a_video_upload(tmp_path, library, form):
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 2000
    with harness(tmp_path, ["uploads"]) as h:
        response = form.upload(h, "clip.mp4", mp4)
        assert response.status_code == 201, response.text
        assert h.get("/photos").json()["files"][0]["media_type"] == "video"


def test_a_library_named_after_the_file_lands_there_across_filesystems(tmp_path, form):
    """The file part comes first, so it is staged for the default library; the library
    field then names one on another filesystem (tmpfs): ``os.link`` fails with EXDEV and
    the file is copied to a temporary in the target folder, then linked."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("needs /dev/shm (another filesystem)")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        other_root = Path(other)
        if other_root.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the test's filesystem here")
        (other_root / "album").mkdir()
        toml = f'[[kernel.libraries]]\nid = 2\nname = "shm"\npath = "{other_root}"\n'
        with harness(tmp_path, ["uploads"], plugins_toml=toml) as h:
            plugin = h.kernel.plugin("uploads")
            # its own staging folder sits at its root, on its filesystem, never indexed
            assert plugin.staging[2] == other_root / ".imageapi-uploads"
            assert plugin.staging[1] == tmp_path / "data" / "uploads"
            body = form.body(
                ("file", form.jpeg(), "far.jpg"), ("library", "shm", None), ("path", "album", None)
            )
            response = form.send(h, body)
            assert response.status_code == 201, response.text
            assert response.json() == {"path": "album/far.jpg", "library": 2, "id": 1}
            assert (other_root / "album" / "far.jpg").read_bytes() == form.jpeg()
            assert sorted(p.name for p in (other_root / "album").iterdir()) == ["far.jpg"]
            assert list(plugin.staging[1].iterdir()) == []
            direct = form.upload(h, "near.jpg", form.jpeg(), "album", library="shm")
            assert direct.status_code == 201
            assert list(plugin.staging[2].iterdir()) == []
            h.scan()
            listed = h.get("/photos", params={"library": "shm", "recursive": "true"}).json()
            assert listed["photos"] == ["album/far.jpg", "album/near.jpg"]


def test_concurrent_uploads_all_succeed(tmp_path, form):
    with harness(tmp_path, ["uploads"]) as h:
        results: list[int] = []

        def send(n: int) -> None:
            results.append(form.upload(h, f"u{n}.jpg", form.jpeg()).status_code)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [201] * 20
        assert h.get("/photos").json()["total"] == 20


def test_get_and_post_share_the_path_in_the_document(tmp_path, form):
    with harness(tmp_path, ["uploads"]) as h:
        doc = h.client.get("/schema/openapi.json").json()
        answer = form.upload(h, "new.jpg", form.jpeg()).json()
        original = h.get("/image", params={"path": "new.jpg"})
    item = doc["paths"]["/image"]
    assert set(item) == {"get", "post"}
    post = item["post"]
    assert post["operationId"] == "ImageUploadImage"
    assert not post.get("parameters")  # the plugin and the kernel are injected, not sent
    form_schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form_schema["properties"]) == {"file", "path", "directory", "library"}
    assert form_schema["required"] == ["file"]
    assert {"201", "400", "413", "415"} <= set(post["responses"])
    ref = post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    uploaded = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(uploaded["properties"]) == set(answer) == {"path", "library", "id"}
    assert original.status_code == 200 and original.content == form.jpeg()
    assert "path" in {p["name"] for p in item["get"]["parameters"]}


def test_without_the_plugin_there_is_no_upload(tmp_path, form):
    with harness(tmp_path) as h:
        assert form.upload(h, "new.jpg", form.jpeg()).status_code == 405
        assert "post" not in h.client.get("/schema/openapi.json").json()["paths"]["/image"]
