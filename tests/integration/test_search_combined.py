"""/photos as a whole: every plugin's filters AND together, with paging and every sort
(exif, tags and favorites together; skipped when one of them is not there)."""

from __future__ import annotations

from datetime import datetime

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("exif", "tags", "favorites")]

CAMERAS = ["Canon", "Nikon", "Fujifilm"]


@pytest.fixture
def h(tmp_path, library):
    for n in range(12):
        make_jpeg(
            library / f"y{2015 + n % 4}" / f"p{n:02d}.jpg",
            taken=datetime(2015 + n % 4, 1 + n % 12, 1 + n, 12, 0, 0),
            make=CAMERAS[n % 3],
            model=f"Model {n % 3}",
        )
    with harness(tmp_path, ["exif", "tags", "favorites"]) as harness_:
        harness_.scan()
        for n in range(0, 12, 2):
            harness_.post(
                "/image/tags", json={"path": f"y{2015 + n % 4}/p{n:02d}.jpg", "tag_name": "even"}
            )
        for n in range(0, 12, 3):
            harness_.post("/favorites", json={"path": f"y{2015 + n % 4}/p{n:02d}.jpg"})
        yield harness_


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p.rsplit("/", 1)[-1] for p in response.json()["photos"]]


def test_filters_combine_with_and(h):
    tag_id = h.get("/image/tags/all").json()[0]["id"]
    params = {
        "recursive": "true",
        "camera_make": "canon",
        "tag_ids": str(tag_id),
        "favorites": "true",
        "sort": "NameAsc",
    }
    # canon: n % 3 == 0 → 0,3,6,9; even: 0,6; favorites: 0,3,6,9 → 0, 6
    assert names(h.get("/photos", params=params)) == ["p00.jpg", "p06.jpg"]
    dated = {**params, "date_from": "2016-01-01", "date_to": "2017-12-31"}
    assert names(h.get("/photos", params=dated)) == ["p06.jpg"]  # 2017-07-07


def test_every_sort_pages_without_gaps_or_repeats(h):
    for sort in (
        "NameAsc",
        "NameDesc",
        "DateTakenAsc",
        "DateTakenDesc",
        "TagCountAsc",
        "TagCountDesc",
        "Shuffle",
    ):
        base = {"recursive": "true", "sort": sort, "seed": "42", "camera_make": "Nikon"}
        whole = names(h.get("/photos", params=base))
        paged = []
        for offset in range(0, 4, 2):
            page = h.get("/photos", params={**base, "limit": 2, "offset": offset})
            assert page.json()["total"] == 4
            paged += names(page)
        assert paged == whole, sort
        assert sorted(whole) == ["p01.jpg", "p04.jpg", "p07.jpg", "p10.jpg"]


def test_date_sorts_order_by_date_taken(h):
    response = h.get("/photos", params={"recursive": "true", "sort": "DateTakenDesc"})
    dates = [f["date_taken"] for f in response.json()["files"]]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"sort": "Sideways"}, "sort"),
        ({"gps_radius_km": "5"}, "gps_lat"),  # a radius needs a centre
        ({"date_from": "2020-01-01", "date_to": "2019-01-01"}, "date_from"),
        ({"tag_ids": "1,two"}, "tag_ids"),
        ({"favorites": "maybe"}, "favorites"),
        ({"limit": "-3"}, "limit"),
    ],
)
def test_bad_values_name_the_parameter(h, params, parameter):
    response = h.get("/photos", params={"recursive": "true", **params})
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
