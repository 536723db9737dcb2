"""Fixtures that build real image and video files for the extractor tests.

The byte-level builders are handed out as the ``kit`` fixture: with
``--import-mode=importlib`` a conftest is not importable by name, only its fixtures
are shared.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

R = TiffImagePlugin.IFDRational


class Kit:
    """Builders for EXIF structures and container boxes."""

    @staticmethod
    def make_exif(
        ifd0: Mapping[int, Any] | None = None,
        exif: Mapping[int, Any] | None = None,
        gps: Mapping[int, Any] | None = None,
    ) -> Image.Exif:
        """An ``Image.Exif`` with IFD0 tags, the Exif IFD (0x8769) and the GPS IFD (0x8825)."""
        ex = Image.Exif()
        ex.update(ifd0 or {})
        if exif:
            ex.get_ifd(0x8769).update(exif)
        if gps:
            ex.get_ifd(0x8825).update(gps)
        loaded = Image.Exif()  # a round trip makes Pillow's TIFF writer emit sub-IFDs too
        loaded.load(ex.tobytes())
        return loaded

    @staticmethod
    def full_exif() -> Image.Exif:
        """Every field set; dates 2019-04-12 15:30:12 (+02:00) / 2018-01-02 / 2017-06-07."""
        return Kit.make_exif(
            {0x010F: "Canon", 0x0110: "Canon EOS R5", 0x0131: "Firmware 1.8", 0x0112: 6,
             0x0132: "2017:06:07 08:09:10"},
            {0x9003: "2019:04:12 15:30:12", 0x9004: "2018:01:02 03:04:05", 0x9011: "+02:00",
             0x829A: R(1, 250), 0x829D: R(28, 10), 0x8827: 400, 0x9209: 0x19,
             0x920A: R(50, 1), 0xA434: "RF50mm F1.8 STM"},
            {1: "N", 2: (R(59, 1), R(54, 1), R(5004, 100)), 3: "E",
             4: (R(10, 1), R(45, 1), R(792, 100)), 5: b"\x00", 6: R(23, 1)},
        )  # fmt: skip

    @staticmethod
    def dms(value: float) -> tuple[R, R, R]:
        """Decimal degrees to the (degrees, minutes, seconds) rationals EXIF stores."""
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
        return R(degrees, 1), R(minutes, 1), R(seconds, 10000)

    @staticmethod
    def insert_app1(jpeg: bytes, payload: bytes) -> bytes:
        """An APP1 segment right after SOI, where cameras put EXIF and XMP."""
        return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]

    @staticmethod
    def tiff_blob(ex: Image.Exif) -> bytes:
        return ex.tobytes().removeprefix(b"Exif\x00\x00")

    @staticmethod
    def box(kind: bytes, payload: bytes) -> bytes:
        """An ISO-BMFF box."""
        return struct.pack(">I", len(payload) + 8) + kind + payload

    @staticmethod
    def ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
        """A little-endian IFD from (tag, type, count, 4-byte value/offset) entries."""
        body = b"".join(
            struct.pack("<HHI", t, k, n) + v.ljust(4, b"\x00") for t, k, n, v in entries
        )
        return struct.pack("<H", len(entries)) + body + struct.pack("<I", next_ifd)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    """Save a small image with the given EXIF (and format options) under ``name``."""

    def write(
        name: str,
        ex: Image.Exif | bytes | None = None,
        size: tuple[int, int] = (64, 48),
        **options: Any,
    ) -> Path:
        path = tmp_path / name
        image = Image.new("RGB", size, "teal")
        fmt = options.pop("format", None)
        if ex is not None:
            options["exif"] = ex
        image.save(path, format=fmt, **options)
        return path

    return write


@pytest.fixture(scope="session")
def ffmpeg() -> Callable[..., Path]:
    """Encode a tiny test video with ffmpeg from imageio-ffmpeg (none on PATH)."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    exe = imageio_ffmpeg.get_ffmpeg_exe()

    def encode(path: Path, *metadata: str, codec: str = "mpeg4") -> Path:
        args = [
            exe,
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x48:d=0.2:r=5",
            "-c:v",
            codec,
        ]
        for item in metadata:
            args += ["-metadata", item]
        subprocess.run([*args, str(path)], check=True, timeout=60)
        return path

    return encode


@pytest.fixture(autouse=True)
def no_real_exiftool(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An ``exiftool`` that answers nothing, first on PATH for every test here.

    The plugin asks exiftool about files none of its readers opens, when it is
    installed; the tests here must give the same results on a machine that has it as
    in CI, which does not (and not spend a Perl start per damaged file). Tests of the
    fallback put their own fake first; the one that wants the real exiftool drops the
    directory named ``exiftool-stub`` from PATH.
    """
    stub = tmp_path_factory.getbasetemp() / "exiftool-stub"
    if not (stub / "exiftool").exists():
        stub.mkdir(exist_ok=True)
        (stub / "exiftool").write_text("#!/bin/sh\nexit 1\n")
        (stub / "exiftool").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}{os.pathsep}{os.environ.get('PATH', '')}")
