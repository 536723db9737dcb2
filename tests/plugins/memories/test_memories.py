"""GET /memories through HTTP: day, week and month windows in earlier years, weeks that
straddle New Year, the client's time zone, EXCLUDED_DIRS of both kinds, folder scope,
bad parameters, items in the kernel's file shape, and the mtime fallback when no plugin
knows capture dates.

No other real plugin runs here: capture dates come from ``CaptureDates``, a plugin of
this test with a table of its own (made by its migration) that answers
``date_taken_table``, or from the files' mtime when it is absent. Memories with the exif
plugin are tested in ``tests/integration/test_exif_memories.py``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, DateTime, MetaData, SmallInteger, Table

from kernel import hookimpl
from kernel.config import ConfigError
from kernel.core import Kernel
from kernel.media.ffmpeg import run_ffmpeg
from kernel.tables import file_key_column
from kernel.testing import Harness, harness, make_jpeg
from kernel.types import FileRef

pytestmark = pytest.mark.db

capture_dates = Table(
    "test_capture_dates",
    MetaData(),
    file_key_column(),
    Column("taken_at", DateTime, nullable=False),
    Column("utc_offset_minutes", SmallInteger),
)


class CaptureDates:
    """Any plugin that knows when files were taken: it records a date per file when the
    file is hashed, in its own table, and offers that table as ``date_taken_table``
    (without the optional ``month_day`` column, so memories computes it). The dates are
    given by path (``dates``) instead of read from the files. Its ``file_extras`` carry a
    ``date_taken`` of its own, which memories' date must replace in the items."""

    dates: ClassVar[Mapping[str, datetime]] = {}

    def __init__(self, kernel: Kernel, settings: None) -> None:
        self.kernel = kernel

    @classmethod
    def knowing(cls, dates: Mapping[str, datetime]) -> type[CaptureDates]:
        return type("CaptureDates", (cls,), {"dates": dict(dates)})

    @staticmethod
    @hookimpl
    def migrations() -> Path:
        return Path(__file__).parent / "capture_dates"

    @hookimpl
    def on_hashed(self, file: FileRef) -> None:
        taken = self.dates.get(file.rel_path)
        if taken is None:
            return
        offset = taken.utcoffset()
        row = {
            "file_id": file.id,
            "taken_at": taken.replace(tzinfo=None),
            "utc_offset_minutes": None if offset is None else offset.total_seconds() // 60,
        }
        statement = self.kernel.db.insert(capture_dates).values(row)
        statement = statement.on_conflict_do_update(index_elements=["file_id"], set_=row)
        with self.kernel.db.write() as conn:
            conn.execute(statement)

    @hookimpl
    def date_taken_table(self) -> Table:
        return capture_dates

    @hookimpl
    def file_extras(self, files: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
        return {
            ref.id: {"date_taken": "not this one", "dated_by": "capture_dates"} for ref in files
        }


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
    "2023/clip.mp4": datetime(2023, 11, 24, 10, 0, tzinfo=UTC),
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
    for name in DATED:
        if name.endswith(".jpg"):
            make_jpeg(library / name)  # no EXIF: the dates are CaptureDates'
    make_clip(library / "2023" / "clip.mp4", "2023-11-24T10:00:00Z")
    make_jpeg(library / "undated.jpg")  # a file CaptureDates knows nothing about
    os.utime(library / "undated.jpg", (DATED["2022/nov23.jpg"].timestamp(),) * 2)
    env = {"EXCLUDED_DIRS": "/private, @eaDir"}
    plugins = {"capture_dates": CaptureDates.knowing(DATED)}
    with harness(base, ["memories"], extra_plugins=plugins, library=library, env=env) as h:
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
    assert body["dates_from"] == "date_taken_table"
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


def test_items_are_the_kernels_file_entries_with_memories_date(h: Harness) -> None:
    body = memories(h, date="2026-11-23", span="day")
    (item,) = body["years"][0]["items"]
    on_disk = (h.library / "2022/nov23.jpg").stat()
    assert item["id"] and item["content_hash"]
    assert (item["path"], item["library"], item["name"], item["media_type"]) == (
        "2022/nov23.jpg",
        1,
        "nov23.jpg",
        "photo",
    )
    assert (item["size"], item["mtime"]) == (on_disk.st_size, pytest.approx(on_disk.st_mtime))
    # Every plugin's extras are there, but the date is the one memories grouped by.
    assert (item["dated_by"], item["date_taken"]) == ("capture_dates", "2022-11-23T12:00:00")
    (listed,) = [
        f for f in h.get("/photos", params={"path": "2022"}).json()["files"]
        if f["path"] == "2022/nov23.jpg"
    ]  # fmt: skip
    assert listed.keys() == item.keys()  # the same shape as /photos


def test_an_answer_reads_its_rows_and_every_extra_in_one_thread_hop(
    h: Harness, request: pytest.FixtureRequest
) -> None:
    memories(h, date="2026-11-24", span="day")  # warm, and no answer kept for the 25th
    hops = request.getfixturevalue("thread_hops")  # counting from here
    (group,) = memories(h, date="2026-11-25", span="day")["years"]
    assert [(item["path"], item["dated_by"]) for item in group["items"]] == [
        ("2024/nov25.jpg", "capture_dates")
    ]
    assert len(hops) == 1, hops


def test_a_file_the_dating_plugin_does_not_know_is_no_memory(h: Harness) -> None:
    # undated.jpg has 23 Nov 2022 as its mtime, but the plugin that answers
    # date_taken_table has no date for it, and memories does not mix sources.
    paths = [p for _, _, group in by_year(memories(h, date="2026-11-23")) for p in group]
    assert "undated.jpg" not in paths


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
    dates = {}
    for day in (before, before + timedelta(days=1)):  # midnight may pass meanwhile
        make_jpeg(library / f"{day}.jpg")
        dates[f"{day}.jpg"] = datetime(day.year - 4, day.month, day.day)
    plugins = {"capture_dates": CaptureDates.knowing(dates)}
    with harness(tmp_path, ["memories"], extra_plugins=plugins) as h:
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
    b_mtime = datetime(2024, 11, 22, 23, 30, tzinfo=utc).timestamp()
    dated("c.jpg", datetime(2020, 3, 3, 12, 0, tzinfo=utc), taken=datetime(2019, 11, 24))
    dated("@eaDir/d.jpg", datetime(2024, 11, 24, 12, 0, tzinfo=utc))
    toml = '[plugins.memories]\ndefault_span = "day"\ntimezone = "Europe/Oslo"\n'
    env = {"EXCLUDED_DIRS": "@eaDir"}
    with harness(tmp_path, ["memories"], plugins_toml=toml, env=env) as h:
        h.scan()
        body = memories(h, date="2026-11-23", span="week")
        assert (body["dates_from"], body["tz"]) == ("mtime", "Europe/Oslo")
        assert by_year(body) == [(2024, 2, ["b.jpg", "a.jpg"])]
        b = body["years"][0]["items"][0]
        assert b["date_taken"] == "2024-11-23T00:30:00+01:00"
        assert (b["size"], b["mtime"]) == ((library / "b.jpg").stat().st_size, b_mtime)
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


def test_the_document_describes_the_response_and_no_dependency(h: Harness) -> None:
    schema = h.get("/schema/openapi.json").json()
    operation = schema["paths"]["/memories"]["get"]
    parameters = sorted(p["name"] for p in operation["parameters"])
    assert parameters == ["date", "library", "path", "recursive", "span", "tz"]
    reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in reply:
        reply = schema["components"]["schemas"][reply["$ref"].rsplit("/", 1)[-1]]
    assert list(reply["properties"]) == [
        "span", "today", "tz", "window", "dates_from", "total", "years"
    ]  # fmt: skip
    # The same names and order as the JSON itself.
    assert list(memories(h, date="2026-11-23")) == list(reply["properties"])


def test_the_package_imports_itself_relatively() -> None:
    from plugins import memories as package

    absolute = [
        f"{path.name}:{node.lineno}"
        for path in sorted(Path(package.__file__).parent.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level == 0
        and (node.module or "").split(".")[0] == "plugins"
    ]  # fmt: skip
    assert absolute == []


def test_settings_are_the_instances_under_any_name(tmp_path: Path, library: Path) -> None:
    """The plugin reads the section it is registered under (``self.settings``), not one
    looked up as "memories"."""
    from plugins.memories import Plugin

    make_jpeg(library / "a.jpg")
    toml = '[plugins.on_this_day]\ndefault_span = "month"\ntimezone = "Asia/Tokyo"\n'
    with harness(tmp_path, [], extra_plugins={"on_this_day": Plugin}, plugins_toml=toml) as h:
        body = memories(h)
        assert (body["span"], body["tz"], body["dates_from"]) == ("month", "Asia/Tokyo", "mtime")
        plugin = h.kernel.plugin("on_this_day")
        assert isinstance(plugin, Plugin) and plugin.settings.default_span == "month"


class CountedExtras:
    """A plugin whose ``file_extras`` counts its calls: an answer memories kept asks no
    plugin again."""

    calls: ClassVar[list[int]]

    def __init__(self, kernel: Kernel, settings: None) -> None:
        self.kernel = kernel

    @classmethod
    def fresh(cls) -> type[CountedExtras]:
        return type("CountedExtras", (cls,), {"calls": []})

    @hookimpl
    def file_extras(self, files: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
        self.calls.append(len(files))
        return {ref.id: {"counted": True} for ref in files}


def test_an_answer_is_kept_until_the_database_changes(tmp_path: Path, library: Path) -> None:
    dates = {"2024/a.jpg": datetime(2024, 11, 25, 10, 0), "2023/b.jpg": datetime(2023, 11, 24)}
    make_jpeg(library / "2024/a.jpg")
    (library / "2023").mkdir()
    counted = CountedExtras.fresh()
    plugins = {"capture_dates": CaptureDates.knowing(dates), "counted": counted}
    with harness(tmp_path, ["memories"], extra_plugins=plugins) as h:
        h.scan()
        first = h.get("/memories", params={"date": "2026-11-23"})
        assert by_year(first.json()) == [(2024, 2, ["2024/a.jpg"])]
        assert first.headers["content-type"] == "application/json"
        asked = len(counted.calls)
        again = h.get("/memories", params={"date": "2026-11-23"})
        assert again.content == first.content
        if h.kernel.db.is_sqlite:  # PostgreSQL's version is a snapshot that any database
            assert len(counted.calls) == asked  # of the server moves: a miss is allowed
        # Another day, span, zone or folder is another answer.
        assert memories(h, date="2026-11-22")["years"] == []
        assert memories(h, date="2026-11-23", span="day")["years"] == []
        assert memories(h, date="2026-11-23", tz="Asia/Tokyo")["tz"] == "Asia/Tokyo"
        assert memories(h, date="2026-11-23", path="2023")["years"] == []
        # A commit (a new file, scanned) changes the data version: built afresh.
        make_jpeg(library / "2023/b.jpg")
        h.scan()
        asked = len(counted.calls)
        body = memories(h, date="2026-11-23")
        assert by_year(body) == [(2024, 2, ["2024/a.jpg"]), (2023, 3, ["2023/b.jpg"])]
        assert body["years"][1]["items"][0]["counted"] is True
        assert counted.calls[asked:] == [2]
        (h.library / "2024/a.jpg").unlink()
        h.scan()
        assert by_year(memories(h, date="2026-11-23")) == [(2023, 3, ["2023/b.jpg"])]
