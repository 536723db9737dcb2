"""GET /memories through HTTP: day, week and month windows in earlier years, weeks that
straddle New Year, the client's time zone, EXCLUDED_DIRS of both kinds, folder scope,
bad parameters, and the mtime fallback when no plugin knows capture dates."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kernel.config import ConfigError
from kernel.testing import Harness, harness, make_jpeg
from media.ffmpeg import run_ffmpeg

pytestmark = pytest.mark.db

DATED = {
    "2024/nov25.jpg": datetime(2024, 11, 25, 10, 0),
    "2020/nov29.jpg": datetime(2020, 11, 29, 23, 59, 59),
    "2024/nov22.jpg": datetime(2024, 11, 22, 9, 0),  # the Sunday before the week
    "2024/nov30.jpg": datetime(2024, 11, 30, 9, 0),  # the Monday after
    "2026/nov23.jpg": datetime(2026, 11, 23, 8, 0),  # this year: not a memory
    "2022/nov23.jpg": datetime(2022, 11, 23, 12, 0),
    "2021/nov02.jpg": datetime(2021, 11, 2, 12, 0),
    "private/p.jpg": datetime(2024, 11, 24, 12, 0),  # EXCLUDED_DIRS /private
    "privateer/ok.jpg": datetime(2024, 11, 24, 12, 0),  # a different folder: kept
    "x/@eaDir/e.jpg": datetime(2024, 11, 24, 12, 0),  # EXCLUDED_DIRS @eaDir, anywhere
    "@eaDir/top.jpg": datetime(2024, 11, 24, 12, 0),
    "nye/a.jpg": datetime(2023, 12, 30, 18, 0),
    "nye/b.jpg": datetime(2024, 1, 3, 18, 0),
    "nye/c.jpg": datetime(2024, 12, 31, 23, 0),
    "nye/d.jpg": datetime(2025, 12, 29, 10, 0),
    "nye/e.jpg": datetime(2023, 12, 28, 10, 0),
    "nye/f.jpg": datetime(2025, 1, 5, 10, 0),
}


def make_clip(path: Path, creation_time: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        ["-f", "lavfi", "-i", "color=c=blue:s=64x48:d=0.2:r=5", "-c:v", "mpeg4",
         "-metadata", f"creation_time={creation_time}", "-y", str(path)],
        timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    base = tmp_path_factory.mktemp("memories")
    library = base / "library"
    for name, taken in DATED.items():
        make_jpeg(library / name, taken=taken)
    make_clip(library / "2023" / "clip.mp4", "2023-11-24T10:00:00Z")
    env = {"EXCLUDED_DIRS": "/private, @eaDir"}
    with harness(base, ["exif", "memories"], library=library, env=env) as h:
        h.scan()
        yield h


def memories(h: Harness, **params: Any) -> dict[str, Any]:
    response = h.get("/memories", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_year(body: dict[str, Any]) -> list[tuple[int, int, list[str]]]:
    return [
        (group["year"], group["years_ago"], [item["path"] for item in group["items"]])
        for group in body["years"]
    ]


def test_the_week_in_earlier_years_newest_year_first(h: Harness) -> None:
    body = memories(h, date="2026-11-23")
    assert (body["span"], body["today"]) == ("week", "2026-11-23")
    assert body["window"] == {"start": "2026-11-23", "end": "2026-11-29"}
    assert by_year(body) == [
        (2024, 2, ["privateer/ok.jpg", "2024/nov25.jpg"]),
        (2023, 3, ["2023/clip.mp4"]),
        (2022, 4, ["2022/nov23.jpg"]),
        (2020, 6, ["2020/nov29.jpg"]),
    ]
    clip = body["years"][1]["items"][0]
    assert (clip["media_type"], clip["date_taken"]) == ("video", "2023-11-24T10:00:00+00:00")
    first = body["years"][0]["items"][1]
    assert (first["library"], first["date_taken"], first["media_type"]) == (
        1,
        "2024-11-25T10:00:00",
        "photo",
    )
    # Any day of the same week gives the same window.
    assert by_year(memories(h, date="2026-11-29")) == by_year(body)


def test_the_day_and_the_month(h: Harness) -> None:
    assert by_year(memories(h, date="2026-11-23", span="day")) == [(2022, 4, ["2022/nov23.jpg"])]
    assert by_year(memories(h, date="2026-11-23", span="month")) == [
        (2024, 2, ["2024/nov22.jpg", "privateer/ok.jpg", "2024/nov25.jpg", "2024/nov30.jpg"]),
        (2023, 3, ["2023/clip.mp4"]),
        (2022, 4, ["2022/nov23.jpg"]),
        (2021, 5, ["2021/nov02.jpg"]),
        (2020, 6, ["2020/nov29.jpg"]),
    ]
    assert memories(h, date="2026-06-15", span="day")["years"] == []


def test_a_week_across_new_year_groups_by_the_anniversary(h: Harness) -> None:
    # Friday 2 January 2026: the week is Monday 29 December 2025 .. Sunday 4 January.
    body = memories(h, date="2026-01-02")
    assert body["window"] == {"start": "2025-12-29", "end": "2026-01-04"}
    assert by_year(body) == [
        (2025, 1, ["nye/c.jpg"]),
        (2024, 2, ["nye/a.jpg", "nye/b.jpg"]),  # 30 Dec 2023 belongs to 2 Jan 2024's week
    ]
    # Wednesday 31 December 2025: the same week, seen from its December side.
    assert by_year(memories(h, date="2025-12-31")) == [
        (2024, 1, ["nye/c.jpg"]),
        (2023, 2, ["nye/a.jpg", "nye/b.jpg"]),
    ]


def test_folder_scope(h: Harness) -> None:
    assert h.client.get("/memories").status_code == 401  # a token is needed
    assert by_year(memories(h, date="2026-11-23", path="2024", recursive="false")) == [
        (2024, 2, ["2024/nov25.jpg"])
    ]
    assert by_year(memories(h, date="2026-11-23", path="private")) == []
    assert by_year(memories(h, date="2026-11-23", path="privateer")) == [
        (2024, 2, ["privateer/ok.jpg"])
    ]


@pytest.mark.parametrize(
    ("params", "status", "name"),
    [
        ({"tz": "Mars/Olympus_Mons"}, 400, "tz"),
        ({"tz": "../../etc/passwd"}, 400, "tz"),
        ({"date": "2026-02-30"}, 400, "date"),
        ({"date": "yesterday"}, 400, "date"),
        ({"span": "year"}, 400, "span"),
        ({"recursive": "maybe"}, 400, "recursive"),
        ({"path": "2024/nov25.jpg"}, 400, None),
        ({"path": "../outside"}, 400, None),
        ({"path": "nowhere"}, 404, None),
    ],
)
def test_bad_parameters(h: Harness, params: dict[str, str], status: int, name: str | None) -> None:
    response = h.get("/memories", params=params)
    assert response.status_code == status, response.text
    if name:
        assert response.json()["parameter"] == name


def test_today_is_the_clients_today(tmp_path: Path, library: Path) -> None:
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14: never on UTC-11's date
    before = datetime.now(kiritimati).date()
    for day in (before, before + timedelta(days=1)):  # midnight may pass meanwhile
        make_jpeg(library / f"{day}.jpg", taken=datetime(day.year - 4, day.month, day.day))
    with harness(tmp_path, ["exif", "memories"]) as h:
        h.scan()
        body = memories(h, tz="Pacific/Kiritimati", span="day")
        today = date.fromisoformat(body["today"])
        assert body["tz"] == "Pacific/Kiritimati" and today in (before, before + timedelta(1))
        assert by_year(body) == [(today.year - 4, 4, [f"{today}.jpg"])]
        pago = memories(h, tz="Pacific/Pago_Pago", span="day")
        assert date.fromisoformat(pago["today"]) < before and pago["years"] == []
        assert memories(h)["span"] == "week"  # no date and no tz: the server's today


def test_mtime_is_the_date_when_no_plugin_knows_capture_dates(
    tmp_path: Path, library: Path
) -> None:
    def dated(name: str, when: datetime, **exif: Any) -> None:
        path = make_jpeg(library / name, **exif)
        os.utime(path, (when.timestamp(), when.timestamp()))

    utc = ZoneInfo("UTC")
    dated("a.jpg", datetime(2024, 11, 24, 12, 0, tzinfo=utc))
    dated("b.jpg", datetime(2024, 11, 22, 23, 30, tzinfo=utc))  # 23 Nov 00:30 in Oslo
    dated("c.jpg", datetime(2020, 3, 3, 12, 0, tzinfo=utc), taken=datetime(2019, 11, 24))
    dated("@eaDir/d.jpg", datetime(2024, 11, 24, 12, 0, tzinfo=utc))
    toml = '[plugins.memories]\ndefault_span = "day"\ntimezone = "Europe/Oslo"\n'
    env = {"EXCLUDED_DIRS": "@eaDir"}
    with harness(tmp_path, ["memories"], plugins_toml=toml, env=env) as h:
        h.scan()
        body = memories(h, date="2026-11-23", span="week")
        assert (body["dates_from"], body["tz"]) == ("mtime", "Europe/Oslo")
        assert by_year(body) == [(2024, 2, ["b.jpg", "a.jpg"])]
        assert body["years"][0]["items"][0]["date_taken"] == "2024-11-23T00:30:00+01:00"
        assert by_year(memories(h, date="2026-11-23", span="week", tz="UTC")) == [
            (2024, 2, ["a.jpg"])
        ]
        default = memories(h, date="2026-11-23")
        assert default["span"] == "day" and by_year(default) == [(2024, 2, ["b.jpg"])]


def test_a_day_back_and_forth_is_stable(h: Harness) -> None:
    start = date(2026, 11, 20)
    seen = [by_year(memories(h, date=str(start + timedelta(days=n)))) for n in range(7)]
    assert seen[3:] == [seen[3]] * 4  # Monday 23 .. Thursday 26: one week
    assert seen[0] != seen[3]


@pytest.mark.parametrize(
    ("toml", "message"),
    [('default_span = "year"', "default_span must be one of"), ('timezone = "Moon/Base"', "Moon")],
)
def test_bad_settings_stop_start_up_naming_the_plugin(
    tmp_path: Path, toml: str, message: str
) -> None:
    with (
        pytest.raises(ConfigError, match=rf"plugin 'memories'.*{message}"),
        harness(tmp_path, ["memories"], plugins_toml=f"[plugins.memories]\n{toml}\n"),
    ):
        pass
