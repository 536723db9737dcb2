"""GET /photos: folders, recursion, media types, the kernel's sorts and paging."""

from __future__ import annotations

import pytest

from kernel.testing import harness, make_jpeg, make_video

pytestmark = pytest.mark.db


@pytest.fixture
def h(tmp_path, library):
    make_jpeg(library / "b.jpg")
    make_jpeg(library / "a.jpg")
    make_video(library / "c.mp4")
    make_jpeg(library / "2019" / "summer" / "x.jpg")
    make_jpeg(library / "2019" / "y.jpg")
    make_jpeg(library / "2019-extra" / "z.jpg")
    (library / "empty").mkdir()
    with harness(tmp_path) as harness_:
        harness_.scan()
        yield harness_


def test_folder_listing_with_subfolders(h):
    body = h.get("/photos").json()
    assert body["photos"] == ["a.jpg", "b.jpg", "c.mp4"]
    assert body["dirs"] == ["2019", "2019-extra", "empty"]
    assert body["total"] == 3
    entry = body["files"][0]
    assert entry["path"] == "a.jpg" and entry["media_type"] == "photo"
    assert len(entry["content_hash"]) == 64
    inner = h.get("/photos", params={"path": "2019"}).json()
    assert inner["photos"] == ["2019/y.jpg"] and inner["dirs"] == ["2019/summer"]


def test_recursive_listing_stays_inside_the_folder(h):
    body = h.get("/photos", params={"path": "2019", "recursive": "true"}).json()
    assert sorted(body["photos"]) == ["2019/summer/x.jpg", "2019/y.jpg"]
    everything = h.get("/photos", params={"recursive": "true"}).json()
    assert everything["total"] == 6


def test_media_type_filter(h):
    videos = h.get("/photos", params={"recursive": "true", "media_type": "Video"}).json()
    assert videos["photos"] == ["c.mp4"]
    photos = h.get("/photos", params={"media_type": "Photo"}).json()
    assert photos["photos"] == ["a.jpg", "b.jpg"]
    bad = h.get("/photos", params={"media_type": "Audio"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "media_type"


def test_name_sorts_and_paging(h):
    params = {"recursive": "true", "sort": "NameDesc", "limit": "2"}
    first = h.get("/photos", params=params).json()
    assert first["photos"] == ["2019-extra/z.jpg", "2019/y.jpg"] and first["total"] == 6
    second = h.get("/photos", params={**params, "offset": "2"}).json()
    assert second["photos"] == ["2019/summer/x.jpg", "c.mp4"]
    for name, value in (("limit", "x"), ("offset", "-1"), ("sort", "Bogus")):
        bad = h.get("/photos", params={name: value})
        assert bad.status_code == 400 and bad.json()["parameter"] == name


def test_shuffle_is_stable_with_a_seed(h):
    def page(seed, offset):
        params = {"recursive": "true", "sort": "Shuffle", "seed": seed, "limit": 3}
        return h.get("/photos", params={**params, "offset": offset}).json()

    first, second = page(7, 0), page(7, 3)
    assert first["seed"] == 7
    together = first["photos"] + second["photos"]
    assert sorted(together) == sorted(h.get("/photos", params={"recursive": "1"}).json()["photos"])
    assert page(7, 0)["photos"] == first["photos"]
    orders = {tuple(page(seed, 0)["photos"] + page(seed, 3)["photos"]) for seed in range(8)}
    assert len(orders) > 1
    unseeded = h.get("/photos", params={"sort": "Shuffle"}).json()
    assert isinstance(unseeded["seed"], int)


def test_unknown_parameter_is_named(h):
    response = h.get("/photos", params={"camera_make": "Canon"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "camera_make"
    assert h.get("/photos", params={"_": "cache-buster"}).status_code == 200


def test_listing_a_file_is_400(h):
    assert h.get("/photos", params={"path": "a.jpg"}).status_code == 400
    assert h.get("/photos", params={"path": "nope"}).status_code == 404
