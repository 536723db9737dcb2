"""EXIF in GET /photos: camera, lens, date and GPS-radius filters, alone and combined
with paging; the date-taken sorts; bad values; and the two LLM tools."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

from kernel import migrate
from kernel.testing import Harness, harness, make_jpeg
from kernel.types import ToolContext

pytestmark = pytest.mark.db

R = TiffImagePlugin.IFDRational

# name: (make, model, lens, wall-clock date, offset, (lat, lon))
LIBRARY: dict[str, tuple[Any, ...]] = {
    "trips/oslo.jpg": ("Canon", "Canon EOS R5", "RF50mm F1.8 STM", "2019:04:12 15:30:12",
                       "+02:00", (59.9139, 10.7522)),
    "trips/nyc.jpg": ("NIKON CORPORATION", "NIKON D750", None, "2020:07:04 20:15:00",
                      "-04:00", (40.7128, -74.0060)),
    "trips/sydney.jpg": ("Apple", "iPhone 12", "iPhone 12 back camera", "2021:01:01 00:30:00",
                         None, (-33.8688, 151.2093)),
    "trips/rio.jpg": ("Canon", "Canon EOS 5D", None, "2018:02:10 10:00:00", "-03:00",
                      (-22.9068, -43.1729)),
    "fiji/west.jpg": ("Apple", "iPhone 12", None, "2021:06:01 12:00:00", "+12:00",
                      (-16.80, 179.90)),
    "fiji/east.jpg": ("Apple", "iPhone 12", None, "2021:06:02 12:00:00", "-12:00",
                      (-16.80, -179.90)),
    "fiji/far.jpg": ("Apple", "iPhone 12", None, "2021:06:03 12:00:00", None, (-16.80, 179.0)),
    "arctic/pole.jpg": ("Canon", "Canon EOS R5", None, "2022:03:01 09:00:00", None,
                        (89.90, 45.0)),
}  # fmt: skip
PLAIN_MTIME = datetime(2016, 5, 5, 12, 0).timestamp()  # plain.jpg has no EXIF at all


def dms(value: float) -> tuple[R, R, R]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return R(degrees, 1), R(minutes, 1), R(seconds, 10000)


def write(path: Path, make: str, model: str, lens: str | None, when: str, offset: str | None,
          gps: tuple[float, float]) -> None:  # fmt: skip
    ex = Image.Exif()
    ex.update({0x010F: make, 0x0110: model})
    sub = ex.get_ifd(0x8769)
    sub[0x9003] = when
    if offset:
        sub[0x9011] = offset
    if lens:
        sub[0xA434] = lens
    lat, lon = gps
    ex.get_ifd(0x8825).update(
        {1: "N" if lat >= 0 else "S", 2: dms(abs(lat)), 3: "E" if lon >= 0 else "W",
         4: dms(abs(lon))}
    )  # fmt: skip
    loaded = Image.Exif()
    loaded.load(ex.tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), "olive").save(path, "JPEG", exif=loaded)


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    base = tmp_path_factory.mktemp("exif-search")
    library = base / "library"
    for name, spec in LIBRARY.items():
        write(library / name, *spec)
    make_jpeg(library / "plain.jpg")
    os.utime(library / "plain.jpg", (PLAIN_MTIME, PLAIN_MTIME))
    with harness(base, ["exif"], library=library) as h:
        h.scan()
        make_jpeg(library / "late.jpg")  # indexed but not yet read: no date at all
        h.run(h.kernel.scanner.scan_library, h.kernel.libraries.default)
        yield h


def photos(h: Harness, **params: Any) -> list[str]:
    response = h.get("/photos", params={"recursive": "true", **params})
    assert response.status_code == 200, response.text
    return response.json()["photos"]


def found(h: Harness, **params: Any) -> set[str]:
    return set(photos(h, **params))


def test_camera_and_lens_filters_ignore_case(h: Harness) -> None:
    assert found(h, camera_make="canon") == {"trips/oslo.jpg", "trips/rio.jpg", "arctic/pole.jpg"}
    assert found(h, camera_model="CANON EOS R5") == {"trips/oslo.jpg", "arctic/pole.jpg"}
    assert found(h, camera_make="nikon corporation") == {"trips/nyc.jpg"}
    assert found(h, lens="rf50mm f1.8 stm") == {"trips/oslo.jpg"}
    assert found(h, camera_make="Leica") == set()
    assert found(h, camera_make="Canon", camera_model="Canon EOS 5D") == {"trips/rio.jpg"}
    assert len(photos(h, camera_make="")) == 10  # an empty value filters nothing


def test_date_range_with_dates_datetimes_and_timestamps(h: Harness) -> None:
    assert found(h, date_from="2019-01-01", date_to="2019-12-31") == {"trips/oslo.jpg"}
    assert found(h, date_from="2021-06-01", date_to="2021-06-02") == {
        "fiji/west.jpg",
        "fiji/east.jpg",
    }
    assert found(h, date_to="2017-01-01") == {"plain.jpg"}
    # Wall-clock datetimes compare with the time the camera showed ...
    assert found(h, date_from="2019-04-12T15:30:12", date_to="2019-04-12T15:30:12") == {
        "trips/oslo.jpg"
    }
    # ... instants (Unix seconds, an offset) with the moment: 15:30:12+02:00 = 13:30:12Z.
    instant = int(datetime.fromisoformat("2019-04-12T13:30:12+00:00").timestamp())
    assert found(h, date_from=str(instant), date_to=str(instant)) == {"trips/oslo.jpg"}
    assert found(h, date_from=str(instant + 1), date_to=str(instant + 3600)) == set()
    assert found(h, date_from=str(instant * 1000), date_to=str(instant * 1000)) == {
        "trips/oslo.jpg"
    }
    assert found(h, date_to="2019-04-12T15:30:11+02:00", date_from="2019-01-01") == set()
    assert found(h, date_to="2019-04-12T13:30:12Z", date_from="2019-01-01") == {"trips/oslo.jpg"}


def test_gps_radius_in_every_hemisphere(h: Harness) -> None:
    def near(lat: float, lon: float, km: float) -> set[str]:
        return found(h, gps_lat=lat, gps_lon=lon, gps_radius_km=km)

    assert near(59.95, 10.75, 10) == {"trips/oslo.jpg"}  # 4 km north of the photo
    assert near(59.95, 10.75, 3) == set()
    assert near(40.75, -73.98, 10) == {"trips/nyc.jpg"}
    assert near(-33.87, 151.21, 1) == {"trips/sydney.jpg"}
    assert near(-22.95, -43.21, 10) == {"trips/rio.jpg"}
    assert near(0, 0, 20_015) == {n for n in LIBRARY}  # half the world's circumference


def test_gps_radius_across_the_antimeridian_and_over_the_pole(h: Harness) -> None:
    # west.jpg (179.90 E) and east.jpg (179.90 W) are 10.6 km either side of 180.
    assert found(h, gps_lat=-16.80, gps_lon=180, gps_radius_km=15) == {
        "fiji/west.jpg",
        "fiji/east.jpg",
    }
    assert found(h, gps_lat=-16.80, gps_lon=-180, gps_radius_km=15) == {
        "fiji/west.jpg",
        "fiji/east.jpg",
    }
    assert found(h, gps_lat=-16.80, gps_lon=-179.95, gps_radius_km=8) == {"fiji/east.jpg"}
    assert found(h, gps_lat=-16.80, gps_lon=179.5, gps_radius_km=60) == {
        "fiji/west.jpg",
        "fiji/far.jpg",
    }
    # pole.jpg is at 89.90 N 45 E; seen from 89.95 N 135 W it is 16.7 km away, across
    # the pole, at a longitude no box around the centre's would contain.
    assert found(h, gps_lat=89.95, gps_lon=-135, gps_radius_km=20) == {"arctic/pole.jpg"}
    assert found(h, gps_lat=89.95, gps_lon=-135, gps_radius_km=15) == set()
    assert found(h, gps_lat=90, gps_lon=0, gps_radius_km=12) == {"arctic/pole.jpg"}


def test_filters_combine_and_page_with_a_total(h: Harness) -> None:
    params = {
        "camera_make": "APPLE",
        "date_from": "2021-01-01",
        "date_to": "2021-06-02",
        "sort": "DateTakenAsc",
    }
    assert photos(h, **params) == ["trips/sydney.jpg", "fiji/west.jpg", "fiji/east.jpg"]
    body = h.get("/photos", params={"recursive": "true", **params, "limit": 2, "offset": 1}).json()
    assert (body["photos"], body["total"]) == (["fiji/west.jpg", "fiji/east.jpg"], 3)
    body = h.get(
        "/photos",
        params={"recursive": "true", "camera_make": "canon", "gps_lat": -20, "gps_lon": -45,
                "gps_radius_km": 500, "limit": 1},
    ).json()  # fmt: skip
    assert (body["photos"], body["total"]) == (["trips/rio.jpg"], 1)
    body = h.get("/photos", params={"path": "fiji", "camera_model": "iphone 12"}).json()
    assert (body["total"], len(body["files"])) == (3, 3)


def test_date_taken_sorts_put_undated_files_last(h: Harness) -> None:
    ascending = photos(h, sort="DateTakenAsc")
    assert ascending == [
        "plain.jpg",  # 2016, from its mtime
        "trips/rio.jpg",
        "trips/oslo.jpg",
        "trips/nyc.jpg",
        "trips/sydney.jpg",
        "fiji/west.jpg",
        "fiji/east.jpg",
        "fiji/far.jpg",
        "arctic/pole.jpg",
        "late.jpg",  # not read yet
    ]
    assert photos(h, sort="DateTakenDesc") == [*reversed(ascending[:-1]), "late.jpg"]
    pages = [
        h.get("/photos", params={"recursive": "true", "sort": "DateTakenDesc", **page}).json()
        for page in ({"limit": 3, "offset": offset} for offset in (0, 3, 6, 9))
    ]
    assert [p for page in pages for p in page["photos"]] == photos(h, sort="DateTakenDesc")
    assert {page["total"] for page in pages} == {10}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"gps_radius_km": "5"}, "gps_lat"),
        ({"gps_lat": "10", "gps_lon": "10"}, "gps_radius_km"),
        ({"gps_lat": "10", "gps_radius_km": "5"}, "gps_lon"),
        ({"gps_lon": "10", "gps_radius_km": "5"}, "gps_lat"),
        ({"gps_lat": "91", "gps_lon": "0", "gps_radius_km": "5"}, "gps_lat"),
        ({"gps_lat": "0", "gps_lon": "-180.5", "gps_radius_km": "5"}, "gps_lon"),
        ({"gps_lat": "0", "gps_lon": "0", "gps_radius_km": "0"}, "gps_radius_km"),
        ({"gps_lat": "0", "gps_lon": "0", "gps_radius_km": "-3"}, "gps_radius_km"),
        ({"gps_lat": "0", "gps_lon": "0", "gps_radius_km": "30000"}, "gps_radius_km"),
        ({"gps_lat": "north", "gps_lon": "0", "gps_radius_km": "5"}, "gps_lat"),
        ({"gps_lat": "nan", "gps_lon": "0", "gps_radius_km": "5"}, "gps_lat"),
        ({"date_from": "2020-02-01", "date_to": "2020-01-31"}, "date_from"),
        ({"date_from": "2020-01-31T10:00", "date_to": "2020-01-31T09:59"}, "date_from"),
        ({"date_from": "1600000000", "date_to": "1500000000"}, "date_from"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2020-13-01"}, "date_to"),
        ({"date_to": "99999999999999999999999"}, "date_to"),
        ({"sort": "DateTaken"}, "sort"),
    ],
)
def test_bad_values_are_400_naming_the_parameter(
    h: Harness, params: dict[str, str], name: str
) -> None:
    response = h.get("/photos", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == name


def test_a_whole_day_range_is_valid(h: Harness) -> None:
    assert found(h, date_from="2019-04-12T00:00", date_to="2019-04-12") == {"trips/oslo.jpg"}


def test_tools_read_metadata_and_search(h: Harness) -> None:
    listed = {tool["function"]["name"]: tool for tool in h.get("/tools").json()}
    assert {"get_photo_metadata", "search_photos"} <= set(listed)
    assert "gps_radius_km" in listed["search_photos"]["function"]["parameters"]["properties"]
    ctx = ToolContext(h.kernel, 1)
    tools = h.kernel.tools

    meta = h.run(tools["get_photo_metadata"].invoke, {"path": "trips/oslo.jpg"}, ctx)
    assert meta["date_taken"] == "2019-04-12T15:30:12+02:00"
    assert meta["exif"]["camera_model"] == "Canon EOS R5"
    assert "error" in h.run(tools["get_photo_metadata"].invoke, {"path": "../x.jpg"}, ctx)

    # search_photos is the kernel's; it takes this plugin's filters and sorts, and its
    # results are the kernel's file entries with this plugin's extras.
    result = h.run(
        tools["search_photos"].invoke,
        {"camera_make": "apple", "gps_lat": -16.8, "gps_lon": 180.0, "gps_radius_km": 15,
         "sort": "DateTakenDesc"},
        ctx,
    )  # fmt: skip
    assert result["total"] == 2
    assert [p["path"] for p in result["photos"]] == ["fiji/east.jpg", "fiji/west.jpg"]
    east = result["photos"][0]
    assert east["date_taken"] == "2021-06-02T12:00:00-12:00"
    assert (east["exif"]["camera_model"], east["exif"]["gps"]["lon"]) == (
        "iPhone 12",
        pytest.approx(-179.90),
    )
    assert east["size"] == (h.library / "fiji/east.jpg").stat().st_size
    oldest_first = h.run(
        tools["search_photos"].invoke, {"camera_model": "iphone 12", "sort": "DateTakenAsc"}, ctx
    )
    assert [p["path"] for p in oldest_first["photos"]] == [
        "trips/sydney.jpg",
        "fiji/west.jpg",
        "fiji/east.jpg",
        "fiji/far.jpg",
    ]
    result = h.run(
        tools["search_photos"].invoke,
        {"date_from": "2021-01-01", "date_to": 1640995200, "limit": 1, "path": "trips"},
        ctx,
    )
    assert (result["total"], [p["path"] for p in result["photos"]]) == (1, ["trips/sydney.jpg"])
    bad = h.run(tools["search_photos"].invoke, {"gps_radius_km": 5}, ctx)
    assert bad == {"error": "gps_lat: a radius search needs gps_lat, gps_lon and gps_radius_km"}


def test_the_index_migration_goes_down_and_up_with_the_same_answers(h: Harness) -> None:
    query = {"camera_make": "APPLE", "date_from": "2021-01-01", "sort": "DateTakenDesc"}
    before = photos(h, **query)
    assert before and photos(h, camera_model="iphone 12")
    (branch,) = [b for b in h.kernel.migration_branches() if b.name == "exif"]
    migrate.downgrade(h.kernel.db, branch, "exif_0001")
    assert photos(h, **query) == before
    migrate.upgrade(h.kernel.db, branch)
    assert migrate.current(h.kernel.db, branch) == migrate.head(branch)
    assert photos(h, **query) == before
