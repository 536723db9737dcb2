"""Real sample media made on the spot: JPEGs with real EXIF (camera, capture date with
offset, GPS) and H.264 clips from ffmpeg. The demo library is made of them, and so are
the test suites' pictures (``kernel.testing`` hands them to plugin authors)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return (float(degrees), float(minutes), round(((value - degrees) * 60 - minutes) * 60, 4))


def make_jpeg(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 30, 30),
    taken: datetime | None = None,
    make: str | None = None,
    model: str | None = None,
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    caption: str | None = None,
    quality: int = 75,
) -> Path:
    """A JPEG with the EXIF asked for: camera, ``taken`` (DateTime and DateTimeOriginal,
    with ``offset`` such as "+01:00"), ``gps`` (latitude, longitude); ``caption`` is drawn
    on a white box so a person can tell pictures apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, color)
    if caption:
        draw = ImageDraw.Draw(image)
        draw.rectangle(
            (size[0] // 16, size[1] // 12, size[0] * 7 // 16, size[1] * 5 // 12), fill="white"
        )
        draw.text((size[0] // 16 + 20, size[1] // 12 + 20), caption, fill=(0, 0, 0))
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
        exif[0x0132] = stamp  # DateTime, as cameras write it beside DateTimeOriginal
        exif.get_ifd(0x8769)[0x9003] = stamp
        if offset:
            exif.get_ifd(0x8769)[0x9011] = offset
    if gps:
        tags = exif.get_ifd(0x8825)
        tags[1], tags[2] = ("N" if gps[0] >= 0 else "S"), _dms(gps[0])
        tags[3], tags[4] = ("E" if gps[1] >= 0 else "W"), _dms(gps[1])
    image.save(path, "JPEG", quality=quality, exif=exif)
    return path


def make_video(path: Path, *, seconds: float = 1.0, size: str = "160x120", rate: int = 10) -> Path:
    """A real H.264 mp4 (ffmpeg's test pattern)."""
    from kernel.media.ffmpeg import run_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={rate}",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", "-y", str(path)],
        timeout=60,
    )  # fmt: skip
    return path
