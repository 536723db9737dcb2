"""Inputs for the thumbnail tests, all generated here so no binary sample is committed.

Pictures carry a red block in the top-left corner of the picture *as it should be
seen*; a test then only has to look for red top-left to know orientation is right.
Videos are encoded once per session with the ffmpeg imageio-ffmpeg ships.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image

from kernel.media.ffmpeg import ffmpeg_path

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)

# How each EXIF orientation is undone for display (as ImageOps.exif_transpose does);
# a file is written with the inverse so that undoing it restores the upright picture.
UNDO = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
}


class Media:
    """Picture builders, handed to tests by the ``media`` fixture.

    (Test modules are imported with ``--import-mode=importlib``, so they cannot import
    this conftest by name; a fixture is how they reach these helpers.)
    """

    RED = RED
    GREEN = GREEN
    BLUE = BLUE

    @staticmethod
    def upright(size: tuple[int, int] = (300, 200), mode: str = "RGB") -> Image.Image:
        """Blue picture with a red block in its top-left corner (a quarter of each side)."""
        im = Image.new(mode, size, BLUE)
        im.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
        return im

    @staticmethod
    def stored_for(orientation: int, picture: Image.Image) -> Image.Image:
        """The pixels a camera would store for ``picture`` under an EXIF orientation."""
        undo = UNDO[orientation]
        if undo is None:
            return picture.copy()
        return picture.transpose(INVERSE.get(undo, undo))

    @staticmethod
    def jpeg_bytes(im: Image.Image, orientation: int | None = None, quality: int = 90) -> bytes:
        out = io.BytesIO()
        kwargs = {}
        if orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = orientation
            kwargs["exif"] = exif.tobytes()
        im.convert("RGB").save(out, "JPEG", quality=quality, **kwargs)
        return out.getvalue()

    @staticmethod
    def build_raw(
        small: bytes | None,
        large: bytes | None,
        *,
        orientation: int | None = None,
        cyclic: bool = False,
        large_as_strip: bool = False,
    ) -> bytes:
        """A little-endian TIFF laid out like a DNG/NEF: a small JPEG preview in IFD0
        (JPEGInterchangeFormat) and a larger one in a SubIFD (tag 330).

        ``large_as_strip`` stores the large preview as a single JPEG strip (Compression 7),
        the DNG way; ``cyclic`` points IFD0's next-IFD link back at itself.
        """
        ifd0: dict[int, tuple[int, int]] = {254: (4, 1), 330: (4, 0)}
        if orientation:
            ifd0[274] = (3, orientation)
        sub: dict[int, tuple[int, int]] = {254: (4, 0)}
        ifd0_at = 8
        sub_at = ifd0_at + 2 + 12 * (len(ifd0) + (2 if small else 0)) + 4
        data_at = sub_at + 2 + 12 * (len(sub) + (3 if large_as_strip else 2 if large else 0)) + 4
        large_at = data_at + len(small or b"")
        ifd0[330] = (4, sub_at)
        if small:
            ifd0.update({513: (4, data_at), 514: (4, len(small))})
        if large and large_as_strip:
            sub.update({259: (3, 7), 273: (4, large_at), 279: (4, len(large))})
        elif large:
            sub.update({513: (4, large_at), 514: (4, len(large))})

        def ifd(values: dict[int, tuple[int, int]], next_at: int) -> bytes:
            out = struct.pack("<H", len(values))
            for tag in sorted(values):
                typ, value = values[tag]
                packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
                out += struct.pack("<HHI", tag, typ, 1) + packed
            return out + struct.pack("<I", next_at)

        blob = b"II*\x00" + struct.pack("<I", ifd0_at)
        blob += ifd(ifd0, ifd0_at if cyclic else 0) + ifd(sub, 0)
        assert len(blob) == data_at
        return blob + (small or b"") + (large or b"")

    @staticmethod
    def build_dng(size: tuple[int, int] = (64, 48), orientation: int = 1) -> bytes:
        """A DNG LibRaw can really develop: 16-bit RGGB sensor data, no preview.

        The scene is the upright picture (red block top-left on blue) as the sensor
        saw it; with ``orientation`` 6 the sensor data is the picture turned left.
        """
        import numpy as np

        scene = Media.stored_for(orientation, Media.upright(size))
        rgb = np.asarray(scene, dtype=np.uint32) * 235 + 2000  # 8-bit to ~16-bit
        h, w = rgb.shape[:2]
        cfa = np.empty((h, w), dtype="<u2")
        cfa[0::2, 0::2] = rgb[0::2, 0::2, 0]
        cfa[0::2, 1::2] = rgb[0::2, 1::2, 1]
        cfa[1::2, 0::2] = rgb[1::2, 0::2, 1]
        cfa[1::2, 1::2] = rgb[1::2, 1::2, 2]
        pixels = cfa.tobytes()
        make = b"imageapi\0"
        identity = b"".join(
            struct.pack("<ii", v * 10000, 10000) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1)
        )
        entries: list[tuple[int, int, int, bytes]] = [
            (254, 4, 1, struct.pack("<I", 0)),
            (256, 4, 1, struct.pack("<I", w)),
            (257, 4, 1, struct.pack("<I", h)),
            (258, 3, 1, struct.pack("<HH", 16, 0)),
            (259, 3, 1, struct.pack("<HH", 1, 0)),
            (262, 3, 1, struct.pack("<HH", 32803, 0)),
            (271, 2, len(make), make),
            (273, 4, 1, pixels),
            (274, 3, 1, struct.pack("<HH", orientation, 0)),
            (277, 3, 1, struct.pack("<HH", 1, 0)),
            (278, 4, 1, struct.pack("<I", h)),
            (279, 4, 1, struct.pack("<I", len(pixels))),
            (33421, 3, 2, struct.pack("<HH", 2, 2)),
            (33422, 1, 4, bytes([0, 1, 1, 2])),
            (50706, 1, 4, bytes([1, 4, 0, 0])),
            (50708, 2, len(make), make),
            (50717, 4, 1, struct.pack("<I", 65535)),
            (50721, 10, 9, identity),
        ]
        data_at = 8 + 2 + 12 * len(entries) + 4
        table, data = struct.pack("<H", len(entries)), b""
        for tag, typ, count, value in entries:
            if len(value) > 4:  # stored out of line, word-aligned
                offset = data_at + len(data)
                data += value + b"\0" * (len(value) % 2)
                value = struct.pack("<I", offset)
            table += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
        return b"II*\x00" + struct.pack("<I", 8) + table + struct.pack("<I", 0) + data


@pytest.fixture(scope="session")
def media() -> type[Media]:
    return Media


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def _bomb_png() -> bytes:
    """A PNG header claiming 100000 x 100000 pixels over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    chunks = [(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(k, d) for k, d in chunks)


def _cyclic_tiff() -> bytes:
    """A 2x2 RGB TIFF whose IFD0 names itself as the next IFD."""
    tags = [(256, 3, 2), (257, 3, 2), (258, 3, 8), (259, 3, 1), (262, 3, 2),
            (273, 4, 0), (277, 3, 3), (278, 3, 2), (279, 4, 12)]  # fmt: skip
    data_at = 8 + 2 + 12 * len(tags) + 4
    out = b"II*\x00" + struct.pack("<IH", 8, len(tags))
    for tag, typ, value in tags:
        value = data_at if tag == 273 else value
        packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, typ, 1) + packed
    return out + struct.pack("<I", 8) + bytes([200, 10, 10] * 4)


@pytest.fixture(scope="session")
def broken_photos() -> dict[str, bytes]:
    """Damaged or hostile photo files, by the name they are saved under."""
    whole_jpeg = Media.jpeg_bytes(Media.upright((400, 300)))
    png = io.BytesIO()
    Image.effect_noise((200, 200), 50).save(png, "PNG")
    return {
        "empty.jpg": b"",
        "truncated.jpg": whole_jpeg[: len(whole_jpeg) * 2 // 3],
        "text.jpg": b"this is a text file, not a JPEG\n" * 10,
        "bomb.png": _bomb_png(),
        "loop.tif": _cyclic_tiff(),
        "garbage.heic": b"\x00\x00\x00\x18ftypheic" + b"\x00" * 200,
        "truncated.png": png.getvalue()[:-300],
        "junk.gif": b"GIF89a" + b"\xff" * 30,
    }


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clips whose colour says which second a frame came from.

    ``timed``: 8 s, red until 2.9 s, green to 3.9 s, then blue (poster at 3 s: green).
    ``short``: 2 s, red until 0.9 s, green to 1.4 s, then blue (poster at 1 s: green).
    ``portrait``: stored landscape, displayed portrait (display matrix, like a phone),
    red block top-left once upright. ``testsrc``: H.264 + AAC with capture tags.
    """
    d = tmp_path_factory.mktemp("videos")
    enc = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

    def segments(size: str, spans: list[tuple[str, float]]) -> str:
        parts = [f"color=c={c}:s={size}:r=10:d={s}[v{i}]" for i, (c, s) in enumerate(spans)]
        inputs = "".join(f"[v{i}]" for i in range(len(spans)))
        return ";".join(parts) + f";{inputs}concat=n={len(spans)}:v=1:a=0"

    spans_long = [("red", 2.9), ("lime", 1.0), ("blue", 4.1)]
    ffmpeg("-filter_complex", segments("64x48", spans_long), *enc, str(d / "timed.mp4"))
    spans_short = [("red", 0.9), ("lime", 0.5), ("blue", 0.6)]
    ffmpeg("-filter_complex", segments("64x48", spans_short), *enc, str(d / "short.mp4"))
    ffmpeg(
        "-f", "lavfi",
        "-i", "color=c=blue:s=120x160:r=10:d=3,"
        "drawbox=x=0:y=0:w=30:h=40:color=red:t=fill,transpose=2",
        *enc, str(d / "stored.mp4"),
    )  # fmt: skip
    ffmpeg("-display_rotation", "-90", "-i", str(d / "stored.mp4"), "-c", "copy",
           str(d / "portrait.mp4"))  # fmt: skip
    ffmpeg("-display_rotation", "180", "-i", str(d / "stored.mp4"), "-c", "copy",
           str(d / "upside.mp4"))  # fmt: skip
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=4",
        "-f", "lavfi", "-i", "sine=duration=4",
        *enc, "-c:a", "aac", "-shortest",
        "-metadata", "creation_time=2021-05-06T07:08:09Z",
        "-metadata", "location=+48.8577+002.2950/",
        str(d / "testsrc.mp4"),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(d / "audio.m4a"))
    whole = (d / "testsrc.mp4").read_bytes()
    (d / "corrupt.mp4").write_bytes(whole[:64] + bytes(range(256)) * 8)
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video\n")
    return {p.stem: p for p in d.iterdir()}
