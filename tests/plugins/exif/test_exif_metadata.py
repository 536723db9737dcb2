"""The exif plugin through HTTP: ingest on scan and on hashing, GET /image/metadata,
the listing extras, content changes and removals, and files that fail to read."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event, func, select

from kernel import hookimpl, migrate
from kernel.config import ConfigError
from kernel.testing import harness, make_jpeg
from plugins.exif.tables import image_exif

pytestmark = pytest.mark.db

OSLO = (59.9139, 10.7522)


def save(path: Path, ex: Image.Exif | None = None, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "teal").save(path, "JPEG", **({"exif": ex} if ex else {}))
    return path


def gps_ifd(kit: Any, lat: float, lon: float, alt: float | None = None) -> dict[int, Any]:
    tags = {1: "N" if lat >= 0 else "S", 2: kit.dms(abs(lat))}
    tags.update({3: "E" if lon >= 0 else "W", 4: kit.dms(abs(lon))})
    if alt is not None:
        tags.update({5: b"\x00" if alt >= 0 else b"\x01", 6: kit.dms(abs(alt))[0]})
    return tags


def exif_rows(h: Any) -> dict[str, Any]:
    from kernel.tables import files

    with h.kernel.db.read() as conn:
        rows = conn.execute(
            select(files.c.rel_path, image_exif).join(
                image_exif, image_exif.c.file_id == files.c.id
            )
        ).all()
    return {row.rel_path: row for row in rows}


class ExtrasPlugin:
    """Another plugin's ``file_extras``: /image/metadata must carry it too."""

    @hookimpl
    def file_extras(self, files: Any, user_id: int | None) -> dict[int, dict[str, Any]]:
        return {ref.id: {"rating": 5, "seen_by": user_id} for ref in files}


def test_metadata_carries_every_field_the_date_with_offset_and_other_plugins_extras(
    tmp_path: Path, library: Path, kit: Any
) -> None:
    save(library / "trip" / "oslo.jpg", kit.full_exif(), size=(640, 480))
    with harness(tmp_path, ["exif"], extra_plugins={"ratings": ExtrasPlugin()}) as h:
        h.scan()
        response = h.get("/image/metadata", params={"path": "trip/oslo.jpg"})
        assert response.status_code == 200, response.text
        body = response.json()
    assert (body["path"], body["library"], body["media_type"]) == ("trip/oslo.jpg", 1, "photo")
    assert body["size"] == (library / "trip" / "oslo.jpg").stat().st_size
    assert body["content_hash"] and body["mtime"] > 0
    assert body["date_taken"] == "2019-04-12T15:30:12+02:00"
    assert (body["exif_status"], body["exif_error"]) == ("ok", None)
    exif = body["exif"]
    assert exif["date_taken"] == "2019-04-12T15:30:12+02:00"
    assert (exif["utc_offset_minutes"], exif["date_source"]) == (120, "DateTimeOriginal")
    assert (exif["camera_make"], exif["camera_model"], exif["lens"]) == (
        "Canon",
        "Canon EOS R5",
        "RF50mm F1.8 STM",
    )
    assert (exif["width"], exif["height"], exif["orientation"]) == (640, 480, 6)
    assert (exif["focal_length"], exif["aperture"], exif["iso"], exif["flash"]) == (
        50.0,
        2.8,
        400,
        True,
    )
    assert (exif["exposure_time"], exif["software"]) == ("1/250", "Firmware 1.8")
    assert exif["gps"] == {"lat": pytest.approx(59.9139), "lon": pytest.approx(10.7522), "alt": 23}
    assert (body["rating"], body["seen_by"]) == (5, 1)


def test_metadata_reads_its_rows_and_every_extra_in_one_thread_hop(
    tmp_path: Path, library: Path, request: pytest.FixtureRequest
) -> None:
    make_jpeg(library / "a.jpg")
    with harness(tmp_path, ["exif"], extra_plugins={"ratings": ExtrasPlugin()}) as h:
        h.scan()
        assert h.get("/image/metadata", params={"path": "a.jpg"}).status_code == 200  # warm
        hops = request.getfixturevalue("thread_hops")  # counting from here
        body = h.get("/image/metadata", params={"path": "a.jpg"}).json()
        assert (body["path"], body["rating"], body["exif_status"]) == ("a.jpg", 5, "ok")
        assert len(hops) == 1, hops
        assert h.get("/image/metadata", params={"path": "nope.jpg"}).status_code == 404


def test_metadata_refuses_hostile_unknown_and_unindexed_paths(
    tmp_path: Path, library: Path
) -> None:
    make_jpeg(library / "a.jpg")
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        make_jpeg(library / "new.jpg")  # on disk, not indexed yet
        for path, status in (
            ("../etc/passwd", 400),
            ("/etc/passwd", 400),
            ("..%2F..%2Fetc%2Fpasswd", 400),
            ("", 400),  # the library root is a folder
            ("missing.jpg", 404),
            ("new.jpg", 404),
        ):
            response = h.get("/image/metadata", params={"path": path})
            assert response.status_code == status, (path, response.text)
        assert (
            h.get("/image/metadata", params={"path": "a.jpg", "library": "nope"}).status_code == 404
        )
        assert h.client.get("/image/metadata", params={"path": "a.jpg"}).status_code == 401


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_reaches_the_api(
    tmp_path: Path, library: Path, kit: Any, orientation: int
) -> None:
    save(library / "o.jpg", kit.make_exif({0x0112: orientation}))
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        listing = h.get("/photos").json()["files"][0]
        assert listing["exif"]["orientation"] == orientation
        metadata = h.get("/image/metadata", params={"path": "o.jpg"}).json()
        assert metadata["exif"]["orientation"] == orientation


def test_listing_extras_cost_one_query_per_page(tmp_path: Path, library: Path, kit: Any) -> None:
    for n in range(12):
        ex = kit.make_exif(
            {0x010F: "Canon", 0x0110: f"Model {n}"},
            {0x9003: f"2019:04:{n + 1:02d} 10:00:00", 0x9011: "+02:00"},
            gps_ifd(kit, *OSLO) if n % 2 else None,
        )
        save(library / f"p{n:02d}.jpg", ex)
    make_jpeg(library / "IMG_20170607_080910.jpg")  # no EXIF: dated by its name
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        statements: list[str] = []
        event.listen(
            h.kernel.db.engine,
            "before_cursor_execute",
            lambda *args: statements.append(args[2]),
        )
        files = h.get("/photos", params={"limit": 100}).json()["files"]
        assert sum("image_exif" in s for s in statements) == 1
    by_name = {f["name"]: f for f in files}
    assert by_name["p00.jpg"]["date_taken"] == "2019-04-01T10:00:00+02:00"
    assert by_name["p00.jpg"]["exif"]["camera_model"] == "Model 0"
    assert by_name["p00.jpg"]["exif"]["gps"] is None
    assert by_name["p01.jpg"]["exif"]["gps"]["lat"] == pytest.approx(OSLO[0])
    named = by_name["IMG_20170607_080910.jpg"]
    assert (named["date_taken"], named["exif"]["date_source"]) == (
        "2017-06-07T08:09:10",
        "filename",
    )


def test_malformed_files_are_dated_and_never_stop_the_scan(
    tmp_path: Path, library: Path, kit: Any
) -> None:
    good = save(library / "good.jpg", kit.full_exif()).read_bytes()
    (library / "truncated.jpg").write_bytes(good[:40])
    (library / "cyclic.tif").write_bytes(
        b"II*\x00\x08\x00\x00\x00" + kit.ifd([(0x8769, 4, 1, b"\x08\x00\x00\x00")], 8)
    )
    noise = bytearray(good)
    for i in range(20, 400, 7):
        noise[i] ^= 0x5A
    (library / "noise.jpg").write_bytes(bytes(noise))
    os.utime(library / "truncated.jpg", (1_000_000_000, 1_000_000_000))
    with harness(tmp_path, ["exif"]) as h:
        report = h.scan()
        assert report.hashed == 4
        rows = exif_rows(h)
        assert {name: row.status for name, row in rows.items()} == dict.fromkeys(
            ["good.jpg", "truncated.jpg", "cyclic.tif", "noise.jpg"], "ok"
        )
        truncated = h.get("/image/metadata", params={"path": "truncated.jpg"}).json()
        assert truncated["date_taken"] == "2001-09-09T01:46:40+00:00"
        assert truncated["exif"]["date_source"] == "mtime"
        good_meta = h.get("/image/metadata", params={"path": "good.jpg"}).json()
        assert good_meta["exif"]["camera_model"] == "Canon EOS R5"


def junk_transport_stream(path: Path, seed: int) -> Path:
    """Sync bytes every 188 bytes and nothing else: libav probes megabytes of it before
    giving up, tens of milliseconds on any machine."""
    packet = b"\x47" + bytes([seed]) * 187
    path.write_bytes(packet * 30_000)
    return path


def test_failed_extraction_is_recorded_and_retried_only_for_new_content(
    tmp_path: Path, library: Path
) -> None:
    junk_transport_stream(library / "slow.mts", 0)
    # A limit that probing this file cannot meet stands in for a parser that hangs.
    toml = "[plugins.exif]\ntimeout_seconds = 0.001\n"
    with harness(tmp_path, ["exif"], plugins_toml=toml) as h:
        h.scan()
        body = h.get("/image/metadata", params={"path": "slow.mts"}).json()
        assert body["exif_status"] == "failed"
        assert "timed out after 0.001 s" in body["exif_error"] and body["date_taken"] is None
        first = exif_rows(h)["slow.mts"]
        # Later ticks leave it alone: same content, same verdict.
        assert h.run(h.kernel.scanner.drain_backlogs) == {"exif": 0}
        h.scan()
        assert exif_rows(h)["slow.mts"].extracted_at == first.extracted_at
        listing = h.get("/photos").json()["files"]
        assert listing[0]["date_taken"] is None and listing[0]["exif"] is None
        # New content is a new file as far as metadata goes: tried again.
        junk_transport_stream(library / "slow.mts", 1)
        os.utime(library / "slow.mts", (2_000_000_000, 2_000_000_000))
        h.scan()
        again = exif_rows(h)["slow.mts"]
        assert again.content_hash != first.content_hash
        assert again.extracted_at > first.extracted_at and again.status == "failed"


def test_on_hashed_extracts_without_waiting_for_the_backlog(
    tmp_path: Path, library: Path, kit: Any
) -> None:
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        save(library / "live.jpg", kit.full_exif())
        h.run(h.kernel.scanner.scan_library, h.kernel.libraries.default)  # indexed only
        assert h.get("/image/metadata", params={"path": "live.jpg"}).json()["exif_status"] == (
            "pending"
        )
        h.run(h.kernel.scanner.hash_backlog)  # fires on_hashed; no backlog drain
        body = h.get("/image/metadata", params={"path": "live.jpg"}).json()
        assert (body["exif_status"], body["exif"]["camera_make"]) == ("ok", "Canon")


def test_changed_content_replaces_and_removal_keeps_the_metadata(
    tmp_path: Path, library: Path, kit: Any
) -> None:
    path = save(library / "a.jpg", kit.make_exif({0x010F: "Canon"}))
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        assert h.get("/photos", params={"camera_make": "canon"}).json()["photos"] == ["a.jpg"]
        save(path, kit.make_exif({0x010F: "Nikon"}))
        os.utime(path, (2_000_000_000, 2_000_000_000))
        h.run(h.kernel.scanner.scan_library, h.kernel.libraries.default)  # changed, unhashed
        assert h.get("/photos", params={"camera_make": "canon"}).json()["photos"] == []
        assert h.get("/image/metadata", params={"path": "a.jpg"}).json()["exif"] is None
        h.scan()
        assert h.get("/photos", params={"camera_make": "nikon"}).json()["photos"] == ["a.jpg"]
        kept = exif_rows(h)["a.jpg"]
        # Gone from disk: the row stays with the (missing) file ...
        moved = shutil.move(path, tmp_path / "a.jpg")
        h.scan()
        assert h.get("/photos").json()["photos"] == []
        assert exif_rows(h)["a.jpg"].extracted_at == kept.extracted_at
        # ... and is simply there again when the same file comes back.
        shutil.move(moved, path)
        h.scan()
        assert exif_rows(h)["a.jpg"].extracted_at == kept.extracted_at
        assert h.get("/photos", params={"camera_make": "nikon"}).json()["photos"] == ["a.jpg"]
        with h.kernel.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(image_exif)).scalar_one() == 1


def test_videos_get_their_date_and_place_from_the_container(
    tmp_path: Path, library: Path, ffmpeg: Any
) -> None:
    ffmpeg(
        library / "clip.mp4",
        "creation_time=2022-05-05T10:00:00Z",
        "location=+35.6762+139.6503/",
    )
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        body = h.get("/image/metadata", params={"path": "clip.mp4"}).json()
        assert body["media_type"] == "video"
        assert body["date_taken"] == "2022-05-05T10:00:00+00:00"
        assert body["exif"]["date_source"] == "container"
        assert body["exif"]["gps"]["lat"] == pytest.approx(35.6762)
        near_tokyo = {"gps_lat": 35.68, "gps_lon": 139.65, "gps_radius_km": 5}
        assert h.get("/photos", params=near_tokyo).json()["photos"] == ["clip.mp4"]


def test_the_upgrade_reads_videos_again_and_leaves_photos_alone(
    tmp_path: Path, library: Path, ffmpeg: Any
) -> None:
    ffmpeg(library / "clip.mp4", "creation_time=2022-05-05T10:00:00Z")
    make_jpeg(library / "a.jpg", taken=datetime(2020, 1, 1))
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        before = exif_rows(h)
        with h.kernel.db.write() as conn:  # what the old reader left for a phone clip
            conn.execute(image_exif.update().values(orientation=None))
        (branch,) = [b for b in h.kernel.migration_branches() if b.name == "exif"]
        migrate.downgrade(h.kernel.db, branch, "exif_0002")
        migrate.upgrade(h.kernel.db, branch)
        assert h.get("/photos", params={"sort": "DateTakenAsc"}).json()["photos"] == [
            "a.jpg",
            "clip.mp4",
        ]  # the video keeps its date while it waits
        h.scan()
        after = exif_rows(h)
        assert after["clip.mp4"].orientation == 1
        assert after["clip.mp4"].extracted_at > before["clip.mp4"].extracted_at
        assert after["a.jpg"].extracted_at == before["a.jpg"].extracted_at
        assert after["a.jpg"].orientation is None


def test_exif_rows_go_with_the_file_row(tmp_path: Path, library: Path) -> None:
    make_jpeg(library / "a.jpg", taken=datetime(2020, 1, 1))
    with harness(tmp_path, ["exif"]) as h:
        h.scan()
        from kernel.tables import files

        with h.kernel.db.write() as conn:
            conn.execute(files.delete())
        assert exif_rows(h) == {}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("timeout_seconds = 0", "timeout_seconds must be above 0"),
        ("batch_size = 0", "batch_size must be at least 1"),
        ("timeout = 5", "timeout"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_plugin(
    tmp_path: Path, toml: str, message: str
) -> None:
    with (
        pytest.raises(ConfigError, match=rf"plugin 'exif'.*{message}"),
        harness(tmp_path, ["exif"], plugins_toml=f"[plugins.exif]\n{toml}\n"),
    ):
        pass
