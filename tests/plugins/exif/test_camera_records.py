"""What cameras keep outside the standard EXIF tags, read from real files of the corpus:
the Canon CIFF and APP12 records of cameras from before EXIF, the Reconyx maker note,
Canon's and Casio's maker-note ISO; and the date-chain order that puts XMP's capture
date before EXIF's DateTime.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from plugins.exif import makernotes
from plugins.exif.extract import ExifData, extract

FILES = Path(__file__).parent / "corpus" / "files"
WHEN = datetime(2019, 4, 12, 15, 30, 12)
DTO, DTD, DT = "2019:04:12 15:30:12", "2018:01:02 03:04:05", "2017:06:07 08:09:10"
MTIME = 1_700_000_000.0  # 2023-11-14: what a wrongly dated file would show


def read(name: str) -> ExifData:
    return extract(FILES / name, "photo", MTIME)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (  # Canon PowerShot A5 (1998): a CIFF heap in APP0, no EXIF at all
            "jpg/exif-org/sony-powershota5.jpg",
            ("Canon", "Canon PowerShot A5", datetime(2000, 10, 27, 22, 56, 26), 4.76, "1/29", 5.0),
        ),
        (  # Olympus D-320L (1997): APP12 "[picture info]" text, maker name in front
            "jpg/exif-org/olympus-d320l.jpg",
            ("OLYMPUS OPTICAL CO.,LTD.", None, datetime(1998, 10, 29, 22, 6, 59), 2.8, "1/30",
             None),
        ),
        (  # Reconyx HC500 trail camera: EXIF without Make or dates; both in the maker note
            "jpg/Reconyx_HC500_Hyperfire.jpg",
            ("RECONYX", None, datetime(2020, 3, 16, 10, 0, 0), None, "1/55", None),
        ),
    ],
)  # fmt: skip
def test_old_cameras_are_dated_and_named_by_their_own_record(
    name: str, expected: tuple[Any, ...]
) -> None:
    data = read(name)
    make, model, when, f_number, exposure, focal = expected
    assert (data.camera_make, data.camera_model) == (make, model)
    assert (data.date_taken, data.utc_offset_minutes, data.date_source) == (
        when,
        None,
        "MakerNotes",
    )
    assert (data.aperture, data.exposure_time, data.focal_length) == (f_number, exposure, focal)


def test_the_a5_size_comes_from_the_jpeg_and_matches_its_record() -> None:
    data = read("jpg/exif-org/sony-powershota5.jpg")
    assert (data.width, data.height) == (1024, 768)


@pytest.mark.parametrize(
    ("name", "iso"),
    [
        ("jpg/exif-org/canon-ixus.jpg", 65),  # auto ISO: BaseISO x AutoISO / 100 = 64.84
        ("jpg/Canon_PowerShot_S40.jpg", 100),  # CameraISO code 17
        ("jpg/Canon_DIGITAL_IXUS_400.jpg", 50),  # CameraISO "Auto": BaseISO 50 x 100 %
        ("jpg/tests/11-tests.jpg", 50),  # the note was moved by an editor: footer fix -54
        ("jpg/tests/22-canon_tags.jpg", 50),  # same camera, note in place
        ("jpg/tests/35-empty.jpg", 50),  # Casio "QVC" note, tag 0x3014
        ("jpg/hdr/canon_hdr_YES.jpg", 1000),  # EXIF ISO wins over the note's 1083
    ],
)
def test_iso_kept_only_in_the_maker_note(name: str, iso: int) -> None:
    assert read(name).iso == iso


def test_canon_iso_rules() -> None:
    shot = [0] * 34
    settings = [0] * 46
    assert makernotes.canon_iso([*settings[:16], 0x4000 | 1600, *settings[17:]], shot) == 1600
    assert makernotes.canon_iso([*settings[:16], 18, *settings[17:]], shot) == 200
    # "Auto" (15) or unset (0x7fff): BaseISO x AutoISO from ShotInfo; no BaseISO, no ISO.
    auto = [*settings[:16], 15, *settings[17:]]
    assert makernotes.canon_iso(auto, [0, 32, 160, *shot[3:]]) == 200  # 100 x 200 %
    assert makernotes.canon_iso(auto, [0, 0xFFE0, 160, *shot[3:]]) == 50  # AutoISO signed
    assert makernotes.canon_iso([*settings[:16], 0x7FFF, *settings[17:]], shot) is None
    assert makernotes.canon_iso(None, None) is None


def canon_tiff(*, moved: int, rewritten: bool, footer: bool, code: int = 0x4000 | 400) -> bytes:
    """A little-endian TIFF whose EXIF IFD holds a Canon maker note with CameraSettings
    (CameraISO = ``code``) and, if ``footer``, Canon's footer naming the offset the
    camera wrote the note at. ``moved`` bytes of padding push the note further along,
    as an editor does; ``rewritten`` says whether it also updated the value offsets."""
    note_written_at = 62
    note_at = note_written_at + moved
    values_at = note_at + 18  # after the note's one-entry IFD
    stored = values_at if rewritten else values_at - moved
    settings = struct.pack("<17H", 34, *([0] * 15), code)
    note = struct.pack("<HHHII", 1, 0x0001, 3, 17, stored) + b"\x00" * 4 + settings
    if footer:
        note += b"II*\x00" + struct.pack("<I", note_written_at)
    ifd0 = struct.pack("<HHHII", 2, 0x010F, 2, 6, 38) + struct.pack("<HHII", 0x8769, 4, 1, 44)
    exif = struct.pack("<HHHII", 1, 0x927C, 7, len(note), note_at) + b"\x00" * 4
    blob = b"II*\x00" + struct.pack("<I", 8) + ifd0 + b"\x00" * 4 + b"Canon\x00" + exif
    assert len(blob) == note_written_at
    return blob + b"\x00" * moved + note


@pytest.mark.parametrize(
    ("moved", "rewritten", "footer", "iso"),
    [
        (0, False, True, 400),  # as the camera wrote it
        (40, False, True, 400),  # moved, offsets stale: the footer says by how much
        (40, True, True, 400),  # moved, offsets updated, footer stale: footer ignored
        (40, False, False, None),  # moved without a footer: nothing tells where the values are
    ],
)
def test_a_moved_canon_note_is_found_by_its_footer(
    tmp_path: Path, moved: int, rewritten: bool, footer: bool, iso: int | None
) -> None:
    path = tmp_path / "note.tif"
    path.write_bytes(canon_tiff(moved=moved, rewritten=rewritten, footer=footer))
    data = extract(path, "photo", MTIME)
    assert (data.camera_make, data.iso) == ("Canon", iso)


@pytest.mark.parametrize(
    ("name", "when", "offset"),
    [
        # xmp:CreateDate under Adobe's old "xap:" prefix, beside an EXIF DateTime that
        # is the editor's save time two minutes later
        ("jpg/xmp/BlueSquare.jpg", datetime(2005, 9, 7, 15, 7, 40), -420),
        # photoshop:DateCreated, a bare date, beside xmp:CreateDate (the scan) and an
        # EXIF DateTime from 2008 (the resize)
        ("jpg/long_description.jpg", datetime(2003, 8, 31), None),
        ("jpg/tests/30-type_error.jpg", datetime(2013, 7, 5, 3, 18, 27), 0),
    ],
)
def test_xmp_capture_dates_come_before_exif_datetime(
    name: str, when: datetime, offset: int | None
) -> None:
    data = read(name)
    assert (data.date_taken, data.utc_offset_minutes, data.date_source) == (when, offset, "XMP")


@pytest.mark.parametrize(
    ("ifd0", "exif", "xmp", "when", "source"),
    [
        ({}, {0x9003: DTO}, 'xmp:CreateDate="2001-01-01T00:00:00"', WHEN, "DateTimeOriginal"),
        ({}, {0x9004: DTD}, 'photoshop:DateCreated="2019-04-12T15:30:12"', WHEN, "XMP"),
        ({}, {0x9004: DTD}, 'xmp:CreateDate="2019-04-12T15:30:12"', datetime(2018, 1, 2, 3, 4, 5),
         "DateTimeDigitized"),
        ({0x0132: DT}, {}, 'xmp:CreateDate="2019-04-12T15:30:12"', WHEN, "XMP"),
        ({0x0132: DT}, {}, 'xmp:ModifyDate="2019-04-12T15:30:12"', datetime(2017, 6, 7, 8, 9, 10),
         "DateTime"),
        ({}, {}, 'xmlns:xap="http://ns.adobe.com/xap/1.0/" xap:CreateDate="2019-04-12T15:30:12"',
         WHEN, "XMP"),
    ],
)  # fmt: skip
def test_capture_dates_of_exif_and_xmp_interleave(
    kit: Any,
    write_image: Callable[..., Path],
    tmp_path: Path,
    ifd0: dict[int, str],
    exif: dict[int, str],
    xmp: str,
    when: datetime,
    source: str,
) -> None:
    """Capture time (EXIF, then XMP), digitising time (EXIF, then XMP), then EXIF's
    DateTime: that one is when the file was last written, an editor's save time."""
    plain = write_image("x.jpg", kit.make_exif(ifd0, exif)).read_bytes()
    packet = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><d {xmp}/></x:xmpmeta>'.encode()
    path = tmp_path / "x.jpg"
    path.write_bytes(kit.insert_app1(plain, b"http://ns.adobe.com/xap/1.0/\x00" + packet))
    data = extract(path, "photo", 0)
    assert (data.date_taken, data.date_source) == (when, source)


RECORDS = [
    "jpg/exif-org/sony-powershota5.jpg",
    "jpg/exif-org/olympus-d320l.jpg",
    "jpg/Reconyx_HC500_Hyperfire.jpg",
    "jpg/exif-org/canon-ixus.jpg",
    "jpg/tests/11-tests.jpg",
    "jpg/tests/35-empty.jpg",
]


@pytest.mark.parametrize("name", RECORDS)
def test_damaged_records_never_raise_or_stall(tmp_path: Path, name: str) -> None:
    """Random damage anywhere in the metadata segments (CIFF heap, APP12 text, maker
    note IFDs and footers) costs fields, never an exception."""
    original = (FILES / name).read_bytes()
    metadata_end = original.find(b"\xff\xda")  # start of scan: everything before is metadata
    rng = random.Random(name)
    path = tmp_path / "damaged.jpg"
    for _ in range(150):
        data = bytearray(original[:metadata_end] + b"\xff\xd9")
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(20, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        assert isinstance(extract(path, "photo", MTIME), ExifData)
