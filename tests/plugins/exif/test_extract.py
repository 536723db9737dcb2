"""The EXIF extractor against real files: every field, every date rung, every container,
and the hostile files an ingest of a real photo library eventually meets.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import exifread
import pytest
from PIL import Image, TiffImagePlugin

from plugins.exif import dates, pool
from plugins.exif.extract import ExifData, ExtractError, extract
from plugins.exif.video import parse_iso6709

R = TiffImagePlugin.IFDRational
WHEN = datetime(2019, 4, 12, 15, 30, 12)
DTO, DTD, DT = "2019:04:12 15:30:12", "2018:01:02 03:04:05", "2017:06:07 08:09:10"
Writer = Callable[..., Path]


def test_camera_fields_from_a_jpeg(kit: Any, write_image: Writer) -> None:
    data = extract(write_image("a.jpg", kit.full_exif(), size=(640, 480)), "photo", 0)
    assert (data.camera_make, data.camera_model, data.lens) == (
        "Canon",
        "Canon EOS R5",
        "RF50mm F1.8 STM",
    )
    assert (data.width, data.height, data.orientation) == (640, 480, 6)
    assert (data.focal_length, data.aperture, data.iso, data.flash) == (50.0, 2.8, 400, True)
    assert (data.exposure_time, data.exposure_seconds) == ("1/250", 0.004)
    assert data.software == "Firmware 1.8"
    assert (data.date_taken, data.utc_offset_minutes, data.date_source) == (
        WHEN,
        120,
        "DateTimeOriginal",
    )
    assert (data.gps_lat, data.gps_lon, data.gps_alt) == pytest.approx((59.9139, 10.7522, 23.0))


@pytest.mark.parametrize(
    ("lat", "lon", "refs"),
    [
        (59.9139, 10.7522, ("N", "E")),
        (40.7128, -74.006, ("N", "W")),
        (-33.8688, 151.2093, ("S", "E")),
        (-22.9068, -43.1729, ("S", "W")),
    ],
)
@pytest.mark.parametrize("below_sea", [False, True])
def test_gps_signs_in_every_hemisphere(
    kit: Any, write_image: Writer, lat: float, lon: float, refs: tuple[str, str], below_sea: bool
) -> None:
    gps = {
        1: refs[0],
        2: kit.dms(abs(lat)),
        3: refs[1],
        4: kit.dms(abs(lon)),
        5: b"\x01" if below_sea else b"\x00",
        6: R(125, 10),
    }
    data = extract(write_image("g.jpg", kit.make_exif(gps=gps)), "photo", 0)
    assert data.gps_lat == pytest.approx(lat, abs=1e-6)
    assert data.gps_lon == pytest.approx(lon, abs=1e-6)
    assert data.gps_alt == (-12.5 if below_sea else 12.5)


def test_gps_without_a_fix_is_dropped(kit: Any, write_image: Writer) -> None:
    zero = (R(0, 1), R(0, 1), R(0, 1))
    data = extract(
        write_image("g.jpg", kit.make_exif(gps={1: "N", 2: zero, 3: "E", 4: zero})), "photo", 0
    )
    assert (data.gps_lat, data.gps_lon) == (None, None)


@pytest.mark.parametrize("orientation", [*range(1, 9), 0, 9])
def test_every_orientation(kit: Any, write_image: Writer, orientation: int) -> None:
    data = extract(write_image("o.jpg", kit.make_exif({0x0112: orientation})), "photo", 0)
    assert data.orientation == (orientation if 1 <= orientation <= 8 else None)


@pytest.mark.parametrize(
    ("value", "text", "seconds"),
    [
        (R(1, 250), "1/250", 0.004),
        (R(10, 2500), "1/250", 0.004),
        (R(1, 3), "0.3", 1 / 3),
        (R(5, 2), "2.5", 2.5),
        (R(30, 1), "30", 30.0),
    ],
)
def test_exposure_notation(
    kit: Any, write_image: Writer, value: R, text: str, seconds: float
) -> None:
    data = extract(write_image("e.jpg", kit.make_exif(exif={0x829A: value})), "photo", 0)
    assert data.exposure_time == text
    assert data.exposure_seconds == pytest.approx(seconds)


def test_flash_not_fired_and_apex_fallbacks(kit: Any, write_image: Writer) -> None:
    ex = kit.make_exif(
        exif={0x9209: 0x10, 0x9202: R(3, 1), 0x9201: R(8, 1), 0x8827: 65535, 0x8833: 102400}
    )
    data = extract(write_image("f.jpg", ex), "photo", 0)
    assert data.flash is False
    assert data.aperture == pytest.approx(2.83, abs=0.01)
    assert data.exposure_time == "1/256"
    assert data.iso == 102400


@pytest.mark.parametrize(
    ("exif", "offset"),
    [
        ({0x9003: DTO, 0x9011: "-05:30"}, -330),
        ({0x9003: DTO, 0x9010: "+01:00"}, 60),
        ({0x9003: DTO}, None),
    ],
)
def test_offsets(kit: Any, write_image: Writer, exif: dict[int, str], offset: int | None) -> None:
    data = extract(write_image("d.jpg", kit.make_exif(exif=exif)), "photo", 0)
    assert (data.date_taken, data.utc_offset_minutes) == (WHEN, offset)


@pytest.mark.parametrize(
    ("ifd0", "exif", "source", "when"),
    [
        ({0x0132: DT}, {0x9003: DTO, 0x9004: DTD}, "DateTimeOriginal", WHEN),
        ({0x0132: DT}, {0x9004: DTD}, "DateTimeDigitized", datetime(2018, 1, 2, 3, 4, 5)),
        ({0x0132: DT}, {}, "DateTime", datetime(2017, 6, 7, 8, 9, 10)),
        (
            {0x0132: DT},
            {0x9003: "0000:00:00 00:00:00", 0x9004: "1850:01:01 00:00:00"},
            "DateTime",
            datetime(2017, 6, 7, 8, 9, 10),
        ),
        (
            {0x0132: "1555083012"},
            {0x9003: "    :  :     :  :  "},
            "unix_timestamp",
            datetime(2019, 4, 12, 15, 30, 12),
        ),
    ],
)
def test_exif_date_rungs(
    kit: Any,
    write_image: Writer,
    ifd0: dict[int, str],
    exif: dict[int, str],
    source: str,
    when: datetime,
) -> None:
    data = extract(write_image("plain.jpg", kit.make_exif(ifd0, exif)), "photo", 0)
    assert (data.date_taken, data.date_source) == (when, source)


@pytest.mark.parametrize(
    ("xmp", "when", "offset"),
    [
        ('<rdf:Description xmp:CreateDate="2019-04-12T15:30:12+02:00"/>', WHEN, 120),
        (
            "<photoshop:DateCreated>2019-04-12T15:30:12.250</photoshop:DateCreated>",
            WHEN.replace(microsecond=250000),
            None,
        ),
        ('<d exif:DateTimeOriginal="2019-04-12T15:30:12Z" xmp:CreateDate="2001-01-01"/>', WHEN, 0),
    ],
)
def test_xmp_rung(
    kit: Any, write_image: Writer, tmp_path: Path, xmp: str, when: datetime, offset: int | None
) -> None:
    plain = write_image("x.jpg", kit.make_exif({0x010F: "Canon"})).read_bytes()
    packet = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{xmp}</x:xmpmeta>'.encode()
    path = tmp_path / "x.jpg"
    path.write_bytes(kit.insert_app1(plain, b"http://ns.adobe.com/xap/1.0/\x00" + packet))
    data = extract(path, "photo", 0)
    assert (data.date_taken, data.utc_offset_minutes, data.date_source) == (when, offset, "XMP")
    assert data.camera_make == "Canon"


@pytest.mark.parametrize(
    ("name", "when", "source"),
    [
        ("IMG_20190412_153012.jpg", WHEN, "filename"),
        ("PXL_20210704_201512345.jpg", datetime(2021, 7, 4, 20, 15, 12), "filename"),
        ("VID_20200101_101010.jpg", datetime(2020, 1, 1, 10, 10, 10), "filename"),
        ("2019-04-12 15.30.12.jpg", WHEN, "filename"),
        ("Screenshot_2019-04-12-15-30-12.png", WHEN, "filename"),
        ("20190412_153012.jpg", WHEN, "filename"),
        ("WhatsApp Image 2019-04-12 at 15.30.12.jpeg", WHEN, "filename"),
        ("IMG-20190412-WA0003.jpg", datetime(2019, 4, 12), "filename"),
        ("1555083012.jpg", WHEN, "unix_timestamp"),
        ("1555083012345.jpg", WHEN.replace(microsecond=345000), "unix_timestamp"),
        ("DSC_1234.jpg", datetime(2001, 9, 9, 1, 46, 40), "mtime"),
        ("IMG_20191340_000000.jpg", datetime(2001, 9, 9, 1, 46, 40), "mtime"),
    ],
)
def test_filename_epoch_and_mtime_rungs(
    write_image: Writer, name: str, when: datetime, source: str
) -> None:
    data = extract(
        write_image(name, format="PNG" if name.endswith("png") else "JPEG"),
        "photo",
        1_000_000_000.0,
    )
    assert (data.date_taken, data.date_source) == (when, source)
    assert data.utc_offset_minutes == (None if source == "filename" else 0)


def test_png_webp_heic_carry_exif(kit: Any, write_image: Writer) -> None:
    paths = [write_image("a.png", kit.full_exif()), write_image("a.webp", kit.full_exif())]
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    # EXIF given as bytes makes pillow_heif store the orientation as a HEIF rotation.
    paths.append(write_image("a.heic", kit.full_exif().tobytes(), quality=50))
    for path in paths:
        data = extract(path, "photo", 0)
        assert (data.camera_model, data.date_taken, data.iso) == ("Canon EOS R5", WHEN, 400), path
        assert data.gps_lat == pytest.approx(59.9139), path
    heic = extract(paths[-1], "photo", 0)
    # libheif applied the rotation: the decoded pixels are already upright (48x64).
    assert (heic.width, heic.height, heic.orientation) == (48, 64, 1)
    assert extract(paths[0], "photo", 0).width == 64


@pytest.mark.parametrize("suffix", [".tif", ".dng", ".nef"])
def test_tiff_based_raw(kit: Any, write_image: Writer, tmp_path: Path, suffix: str) -> None:
    tif = write_image("a.tif", kit.full_exif(), format="TIFF")
    path = tmp_path / f"raw{suffix}"
    shutil.copyfile(tif, path)
    data = extract(path, "photo", 0)
    assert (data.camera_make, data.date_source, data.aperture) == ("Canon", "DateTimeOriginal", 2.8)
    assert (data.width, data.height) == (64, 48)
    assert data.gps_lon == pytest.approx(10.7522)


def test_cr3_boxes(kit: Any, tmp_path: Path) -> None:
    cmt1 = kit.tiff_blob(kit.make_exif({0x010F: "Canon", 0x0110: "Canon EOS R6"}))
    exif_ifd = Image.Exif()
    exif_ifd.update({0x9003: DTO, 0x9011: "+09:00", 0x8827: 800})
    gps_ifd = Image.Exif()
    gps_ifd.update({1: "S", 2: kit.dms(33.8688), 3: "E", 4: kit.dms(151.2093)})
    canon = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
    uuid = kit.box(
        b"uuid",
        canon
        + kit.box(b"CMT1", cmt1)
        + kit.box(b"CMT2", kit.tiff_blob(exif_ifd))
        + kit.box(b"CMT4", kit.tiff_blob(gps_ifd)),
    )
    path = tmp_path / "IMG_0001.CR3"
    path.write_bytes(
        kit.box(b"ftyp", b"crx \x00\x00\x00\x01crx isom")
        + kit.box(b"moov", uuid)
        + kit.box(b"mdat", b"\x00" * 64)
    )
    data = extract(path, "photo", 0)
    assert (data.camera_model, data.iso, data.date_taken) == ("Canon EOS R6", 800, WHEN)
    assert (data.utc_offset_minutes, data.date_source) == (540, "DateTimeOriginal")
    assert (data.gps_lat, data.gps_lon) == pytest.approx((-33.8688, 151.2093), abs=1e-6)


def test_videos(tmp_path: Path, ffmpeg: Callable[..., Path]) -> None:
    mp4 = ffmpeg(
        tmp_path / "clip.mp4",
        "creation_time=2019-04-12T15:30:12Z",
        "location=+59.9139+010.7522+023.000/",
    )
    data = extract(mp4, "video", 0)
    assert (data.date_taken, data.utc_offset_minutes, data.date_source) == (WHEN, 0, "container")
    assert (data.gps_lat, data.gps_lon, data.gps_alt) == (59.9139, 10.7522, 23.0)
    assert (data.width, data.height) == (64, 48)
    mov = ffmpeg(tmp_path / "VID_20200101_101010.mov", "location=-33.8688-070.6693/")
    data = extract(mov, "video", 0)
    assert (data.gps_lat, data.gps_lon, data.gps_alt) == (-33.8688, -70.6693, None)
    assert (data.date_taken, data.date_source) == (datetime(2020, 1, 1, 10, 10, 10), "filename")


def test_a_phone_clip_stored_landscape_reports_its_display_rotation(
    tmp_path: Path, ffmpeg: Callable[..., Path]
) -> None:
    """Phones store portrait video landscape with a display matrix (no "rotate" tag in
    ffmpeg 5 and later); the orientation says how a viewer turns it, as for photos."""
    import imageio_ffmpeg

    stored = ffmpeg(tmp_path / "stored.mp4", codec="libx264")
    for degrees_ccw, orientation in (("-90", 6), ("90", 8), ("180", 3), ("0", 1)):
        clip = tmp_path / f"turned{degrees_ccw}.mov"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-display_rotation",
             degrees_ccw, "-i", str(stored), "-c", "copy", str(clip)],
            check=True, timeout=60,
        )  # fmt: skip
        data = extract(clip, "video", 0)
        assert (data.orientation, data.width, data.height) == (orientation, 64, 48), degrees_ccw


def test_date_parsers() -> None:
    assert dates.parse_exif_date("2019-04-12T15:30:12.5+0100") == dates.Stamp(
        WHEN.replace(microsecond=500000), 60
    )
    assert dates.parse_exif_date(DTO, subsec="07") == dates.Stamp(WHEN.replace(microsecond=70000))
    for bad in ("0000:00:00 00:00:00", "2019:02:30 10:00:00", "2101:01:01 00:00:00", "garbage"):
        assert dates.parse_exif_date(bad) is None
    assert dates.parse_iso_date("2019-04") is None
    assert dates.from_mtime(1_555_083_012.0) == dates.Stamp(WHEN, 0)  # mtime is kept as UTC
    assert dates.parse_offset("+15:30") is None
    assert parse_iso6709("+91.0+010.0/") is None
    assert parse_iso6709("+59.9139+010.7522CRSWGS_84/") == (59.9139, 10.7522, None)


# --- broken files: a fallback-dated result or ExtractError, nothing else, never a hang ---


def _tiff_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_broken_files(kit: Any, write_image: Writer, tmp_path: Path) -> None:
    # The per-entry filter/bounds hook into this exifread method; fail loudly if it goes.
    assert callable(getattr(exifread.ExifHeader, "_process_tag", None))
    good = write_image("g.jpg", kit.full_exif()).read_bytes()
    cyclic = (
        b"II*\x00\x08\x00\x00\x00"  # IFD0 -> IFD1 -> IFD0, Exif and GPS point to IFD0
        + kit.ifd(
            [
                (0x010F, 2, 4, b"Cyc\x00"),
                (0x8769, 4, 1, struct.pack("<I", 8)),
                (0x8825, 4, 1, struct.pack("<I", 8)),
            ],
            50,
        )
        + b"\x00" * (50 - 8 - 42)
        + kit.ifd([(0x0110, 2, 4, b"Two\x00")], 8)
    )
    many = (
        b"II*\x00\x08\x00\x00\x00"
        + struct.pack("<H", 0xFFFF)
        + (struct.pack("<HHII", 0x010F, 2, 0x7FFFFFFF, 8) * 0xFFFF)
        + b"\x00" * 4
    )
    huge_app1 = b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00" + good[good.find(b"MM\x00*") :][:40]
    cases = {
        "IMG_20190412_153012.jpg": b"",
        "empty.jpg": b"",
        "trunc.jpg": good[:60],
        "trunc2.png": write_image("p.png", kit.full_exif()).read_bytes()[:70],
        "cyclic.tif": cyclic,
        "many.nef": many,
        "app1.jpg": huge_app1,
        "noise.heic": b"\x00\x00\x00\x18ftypheic" + os.urandom(200),
        "noise.mp4": os.urandom(300),
    }
    for name, content in cases.items():
        path = _tiff_file(tmp_path, name, content)
        started = time.perf_counter()
        data = extract(path, "video" if name.endswith("mp4") else "photo", 1_000_000_000.0)
        assert time.perf_counter() - started < 3, name
        assert isinstance(data, ExifData)
        assert data.date_taken is not None, name
    assert extract(tmp_path / "IMG_20190412_153012.jpg", "photo", 0).date_source == "filename"
    assert extract(tmp_path / "cyclic.tif", "photo", 0).camera_make == "Cyc"
    with pytest.raises(ExtractError, match="cannot read"):
        extract(tmp_path / "missing.jpg", "photo", 0)
    with pytest.raises(ExtractError):
        extract(tmp_path, "photo", 0)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tif"])
def test_mutated_files_never_raise_anything_else(
    kit: Any, write_image: Writer, tmp_path: Path, fmt: str
) -> None:
    original = write_image(f"src.{fmt}", kit.full_exif()).read_bytes()
    rng = random.Random(fmt)
    path = tmp_path / f"mut.{fmt}"
    for _ in range(120):
        data = bytearray(original)
        if rng.random() < 0.25:
            data = data[: rng.randrange(len(data))]
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(min(len(data), 512))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        assert isinstance(extract(path, "photo", 1_000_000_000.0), ExifData)


# --- the worker pool ---


@pytest.fixture(scope="module")
def workers() -> Any:
    workers = pool.Pool(1)
    yield workers
    workers.shutdown()


def test_extract_in_a_worker_with_a_time_limit(
    kit: Any, write_image: Writer, workers: pool.Pool
) -> None:
    path = write_image("a.jpg", kit.full_exif())
    assert workers.extract(path, "photo", 0, timeout=30) == extract(path, "photo", 0)
    with pytest.raises(ExtractError, match="cannot read"):
        workers.extract(path.with_name("nope.jpg"), "photo", 0, timeout=30)

    started = time.perf_counter()
    with pytest.raises(ExtractError, match=r"timed out after 0\.5 s"):
        workers.call(time.sleep, (30,), timeout=0.5)  # stands in for a hung parser
    assert time.perf_counter() - started < 5
    with pytest.raises(ExtractError, match="crashed"):
        workers.call(os._exit, (3,), timeout=30)  # stands in for a segfault in native code
    # The killed workers were replaced: the next file is read normally.
    assert workers.extract(path, "photo", 0, timeout=30).date_taken == WHEN


def test_a_worker_loads_the_parsers_only_and_retires_when_idle(
    kit: Any, write_image: Writer
) -> None:
    """A worker is a fresh interpreter with the parsers: not the server, its web framework
    and database layer (55 MB a worker), and an idle server keeps none."""
    path = write_image("idle.jpg", kit.full_exif())
    workers = pool.Pool(1, idle_seconds=0.5)
    assert workers.extract(path, "photo", 0, timeout=30).date_taken == WHEN
    (pid,) = workers.pids()
    maps = Path(f"/proc/{pid}/maps")
    if maps.exists():
        mapped = maps.read_text()
        assert "sqlalchemy" not in mapped and "_sqlite3" not in mapped
    # Litestar is pure Python (nothing mapped): the worker itself says what it imported.
    heavy = "sorted({'litestar', 'sqlalchemy', 'PIL'} & set(__import__('sys').modules))"
    assert workers.call(eval, (heavy,), timeout=30) == []
    deadline = time.monotonic() + 60
    while workers.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (workers.pids(), workers.live) == ([], 0)
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the timer thread stops it just after letting it go
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
    assert workers.extract(path, "photo", 0, timeout=30).date_taken == WHEN  # a new one
    workers.shutdown()


def test_a_shut_down_pool_stops_its_workers_and_still_answers(
    kit: Any, write_image: Writer
) -> None:
    path = write_image("b.jpg", kit.full_exif())
    workers = pool.Pool(1)
    assert workers.extract(path, "photo", 0, timeout=30).date_taken == WHEN
    (pid,) = workers.pids()
    workers.shutdown()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    # A straggler after shutdown is still answered, on a worker that does not stay.
    assert workers.extract(path, "photo", 0, timeout=30).date_taken == WHEN
    assert (workers.pids(), workers.live) == ([], 0)
