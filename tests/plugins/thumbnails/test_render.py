"""Thumbnail rendering, checked on pixels: right way up, right size, not black.

Every input is generated in the test (see conftest.py); broken inputs must end as
RenderError, never another exception and never a hang.
"""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from kernel.media.ffmpeg import (
    FFmpegError,
    MediaProbeError,
    ffmpeg_path,
    input_url,
    probe_video,
    run_ffmpeg,
)
from plugins.thumbnails import raw_preview
from plugins.thumbnails.dispatch import render, render_image, render_video_frame, render_video_gif
from plugins.thumbnails.imaging import RenderError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tol: int = 60) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour, strict=True))


def assert_upright(im: Image.Image, size: tuple[int, int] | None = None) -> None:
    """Red in the top-left corner, blue everywhere else that is checked."""
    rgb = im.convert("RGB")
    w, h = rgb.size
    if size is not None:
        assert (w, h) == size
    for xy, colour in [
        ((1, 1), RED),
        ((w - 2, 1), BLUE),
        ((1, h - 2), BLUE),
        ((w - 2, h - 2), BLUE),
    ]:
        assert near(rgb.getpixel(xy), colour), (xy, rgb.getpixel(xy))


# --- photos -----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_every_exif_orientation_comes_out_upright(
    tmp_path: Path, orientation: int, media: type
) -> None:
    src = tmp_path / f"o{orientation}.jpg"
    src.write_bytes(
        media.jpeg_bytes(media.stored_for(orientation, media.upright((300, 200))), orientation)
    )
    im = decode(render_image(src, 60))
    assert im.format == "JPEG" and im.mode == "RGB"
    assert_upright(im, (60, 40))


def test_jpeg_is_drafted_not_fully_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: type
) -> None:
    src = tmp_path / "big.jpg"
    src.write_bytes(media.jpeg_bytes(media.upright((1600, 1200))))
    seen: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile):  # record the size the decoder really produced
        result = original(self)
        if self.format == "JPEG":
            seen.append(self.size)
        return result

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    assert_upright(decode(render_image(src, 100)), (100, 75))
    assert seen and max(w for w, _ in seen) == 200  # 1/8 DCT scale, not 1600 wide


def test_small_image_is_not_upscaled(tmp_path: Path, media: type) -> None:
    src = tmp_path / "small.png"
    media.upright((40, 20)).save(src)
    assert decode(render_image(src, 256)).size == (40, 20)


def test_png_alpha_is_flattened_onto_white_for_jpeg_and_kept_in_webp(
    tmp_path: Path, media: type
) -> None:
    im = media.upright((200, 100), "RGBA")
    im.paste((0, 0, 0, 0), (100, 0, 200, 100))  # right half fully transparent
    src = tmp_path / "alpha.png"
    im.save(src)
    jpeg = decode(render_image(src, 100, "jpeg"))
    assert jpeg.mode == "RGB" and jpeg.size == (100, 50)
    assert near(jpeg.getpixel((1, 1)), RED)
    assert near(jpeg.getpixel((95, 45)), (255, 255, 255))
    webp = decode(render_image(src, 100, "webp"))
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    assert webp.getpixel((95, 45))[3] == 0


def test_animated_gif_uses_first_frame(tmp_path: Path, media: type) -> None:
    first = media.upright((120, 80)).convert("P", palette=Image.Palette.ADAPTIVE)
    second = Image.new("RGB", (120, 80), GREEN).convert("P", palette=Image.Palette.ADAPTIVE)
    src = tmp_path / "anim.gif"
    first.save(src, save_all=True, append_images=[second], duration=100, loop=0)
    assert_upright(decode(render_image(src, 60)), (60, 40))


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("pic.webp", "WEBP", {"lossless": True}),
        ("pic.tif", "TIFF", {"compression": "tiff_deflate"}),
        ("pic.bmp", "BMP", {}),
        ("pic.avif", "AVIF", {"quality": 90}),
    ],
)
def test_other_formats(tmp_path: Path, name: str, fmt: str, options: dict, media: type) -> None:
    src = tmp_path / name
    media.upright((160, 120)).save(src, fmt, **options)
    assert_upright(decode(render_image(src, 80, "webp")), (80, 60))


def test_tiff_orientation_and_16_bit(tmp_path: Path, media: type) -> None:
    src = tmp_path / "o6.tif"
    exif = Image.Exif()
    exif[0x0112] = 6
    media.stored_for(6, media.upright((160, 120))).save(src, exif=exif)
    assert_upright(decode(render_image(src, 80)), (80, 60))
    import numpy as np

    gray = np.full((60, 80), 40000, dtype=np.uint16)  # 16-bit mid-grey, not white
    src16 = tmp_path / "g16.png"
    Image.fromarray(gray).save(src16)
    value = decode(render_image(src16, 40)).getpixel((5, 5))
    assert 140 < value[0] < 170


def test_heic_with_embedded_thumbnail(tmp_path: Path, media: type) -> None:
    import pillow_heif

    src = tmp_path / "pic.heic"
    pillow_heif.from_pillow(media.upright((256, 192))).save(src, quality=90, thumbnails=[96])
    assert_upright(decode(render_image(src, 64)), (64, 48))
    assert_upright(decode(render_image(src, 200)), (200, 150))
    # the loader really offers the embedded thumbnail for a small target
    with Image.open(src) as im:
        assert im.draft(None, (64, 48)) is not None and im.size == (96, 72)


@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_heic_orientation(tmp_path: Path, media: type, orientation: int) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = orientation
    src = tmp_path / "turned.heic"
    media.stored_for(orientation, media.upright((160, 120))).save(src, exif=exif.tobytes())
    assert_upright(decode(render_image(src, 80)), (80, 60))


def test_render_dispatches_on_media_type(
    tmp_path: Path, videos: dict[str, Path], media: type
) -> None:
    src = tmp_path / "p.png"
    media.upright((100, 50)).save(src)
    assert decode(render(src, "photo", 50, "jpeg")).size == (50, 25)
    assert decode(render(videos["timed"], "video", 32, "webp")).format == "WEBP"
    odd = tmp_path / "concat:x.mp4|y?#1.mp4"  # read as a file, never as a protocol
    odd.write_bytes(videos["timed"].read_bytes())
    assert decode(render(odd, "", 32, "jpeg")).size == (32, 24)


# --- RAW --------------------------------------------------------------------------


def raw_pair(media: type) -> tuple[bytes, bytes]:
    small = media.jpeg_bytes(Image.new("RGB", (80, 60), GREEN))
    large = media.jpeg_bytes(media.upright((320, 240)))
    return small, large


@pytest.mark.parametrize("as_strip", [False, True])
def test_raw_largest_embedded_preview_wins(tmp_path: Path, as_strip: bool, media: type) -> None:
    small, large = raw_pair(media)
    src = tmp_path / "pic.dng"
    src.write_bytes(media.build_raw(small, large, large_as_strip=as_strip))
    assert_upright(decode(render_image(src, 200)), (200, 150))


def test_raw_orientation_from_raw_ifd0(tmp_path: Path, media: type) -> None:
    small, _ = raw_pair(media)
    # a portrait shot: the sensor (and its preview) saw the picture turned left
    large = media.jpeg_bytes(media.stored_for(6, media.upright((240, 320))))
    src = tmp_path / "pic.nef"
    src.write_bytes(media.build_raw(small, large, orientation=6))
    assert_upright(decode(render_image(src, 160)), (120, 160))


def test_raw_preview_own_orientation_beats_raw_ifd0(tmp_path: Path, media: type) -> None:
    large = media.jpeg_bytes(media.stored_for(8, media.upright((240, 320))), orientation=8)
    src = tmp_path / "pic.arw"
    src.write_bytes(media.build_raw(None, large, orientation=6))
    assert_upright(decode(render_image(src, 160)), (120, 160))


def test_raw_black_preview_is_skipped(tmp_path: Path, media: type) -> None:
    small = media.jpeg_bytes(media.upright((80, 60)))
    black = media.jpeg_bytes(Image.new("RGB", (320, 240), (0, 0, 0)))
    src = tmp_path / "pic.cr2"
    src.write_bytes(media.build_raw(small, black))
    assert_upright(decode(render_image(src, 200)), (80, 60))


def test_raw_damaged_large_preview_falls_back_to_small(tmp_path: Path, media: type) -> None:
    small = media.jpeg_bytes(media.upright((80, 60)))
    _, large = raw_pair(media)
    src = tmp_path / "pic.pef"
    src.write_bytes(media.build_raw(small, large[: len(large) // 2]))
    assert_upright(decode(render_image(src, 200)), (80, 60))


def test_raw_cyclic_ifd_chain_terminates(tmp_path: Path, media: type) -> None:
    small, large = raw_pair(media)
    blob = media.build_raw(small, large, cyclic=True)
    tiff = raw_preview.read_tiff(blob)
    assert tiff is not None and tiff.cyclic and len(tiff.ifds) == 2
    src = tmp_path / "loop.dng"
    src.write_bytes(blob)
    assert_upright(decode(render_image(src, 200)), (200, 150))


def test_raf_header_preview(tmp_path: Path, media: type) -> None:
    _, large = raw_pair(media)
    header = b"FUJIFILMCCD-RAW 0201FF383501".ljust(84, b"\0")
    src = tmp_path / "pic.raf"
    src.write_bytes(header + struct.pack(">II", 100, len(large)) + b"\0" * 8 + large)
    assert_upright(decode(render_image(src, 160)), (160, 120))


@pytest.mark.parametrize(
    "blob",
    [b"", b"II*\x00\x08\x00\x00\x00\xff\xff", b"MM\x00*" + b"\xff" * 64, b"plain text"],
    ids=["empty", "huge-count", "offset-out-of-range", "text"],
)
def test_raw_without_preview_is_render_error(tmp_path: Path, blob: bytes) -> None:
    src = tmp_path / "bad.nef"
    src.write_bytes(blob)
    with pytest.raises(RenderError):
        render_image(src, 100)


@pytest.mark.parametrize("orientation", [1, 6])
def test_raw_without_preview_is_developed_by_libraw(
    tmp_path: Path, media: type, orientation: int
) -> None:
    src = tmp_path / "sensor.dng"
    src.write_bytes(media.build_dng((64, 48), orientation))
    im = decode(render_image(src, 64))
    assert im.size == (32, 24)  # half-size demosaic, landscape once upright
    assert im.getpixel((2, 2))[0] > 150 and im.getpixel((29, 21))[2] > 150


# --- broken photos ------------------------------------------------------------------


BROKEN = ["empty.jpg", "truncated.jpg", "text.jpg", "bomb.png", "loop.tif", "garbage.heic",
          "truncated.png", "junk.gif"]  # fmt: skip


@pytest.mark.parametrize("name", BROKEN)
def test_broken_photos_raise_render_error(
    tmp_path: Path, broken_photos: dict[str, bytes], name: str
) -> None:
    src = tmp_path / name
    src.write_bytes(broken_photos[name])
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        render_image(src, 64)
    assert time.monotonic() - started < 5
    assert str(info.value)
    if name == "bomb.png":
        assert "decompression bomb" in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(RenderError, match="cannot read"):
        render_image(tmp_path / "missing.jpg", 64)


# --- videos -------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [0, 1])  # FFmpeg's choice (a client waits); ingest's one
def test_poster_frame_is_taken_at_three_seconds(videos: dict[str, Path], threads: int) -> None:
    im = decode(render_video_frame(videos["timed"], 64, threads=threads))
    assert im.size == (64, 48)
    assert near(im.getpixel((32, 24)), GREEN)


def test_poster_frame_of_short_clip_is_its_middle(videos: dict[str, Path]) -> None:
    im = decode(render_video_frame(videos["short"], 32, "webp"))
    assert im.format == "WEBP" and im.size == (32, 24)
    assert near(im.getpixel((16, 12)), GREEN)


@pytest.mark.parametrize("name", ["portrait", "upside"])
def test_video_rotation_is_applied(videos: dict[str, Path], name: str) -> None:
    im = decode(render_video_frame(videos[name], 80))
    if name == "portrait":
        assert_upright(im, (60, 80))
    else:  # stored with red bottom-left, shown turned 180: red lands top-right
        assert im.size == (80, 60)
        assert near(im.getpixel((78, 1)), RED) and near(im.getpixel((1, 58)), BLUE)


def test_video_gif_loops_and_samples_the_clip(videos: dict[str, Path]) -> None:
    gif = decode(render_video_gif(videos["testsrc"], max_side=40, frames=8, fps=4))
    assert gif.format == "GIF" and gif.n_frames == 8 and gif.size == (40, 30)
    assert gif.info["loop"] == 0 and gif.info["duration"] == 250
    # Pillow merges identical neighbours (adding up their durations), so the
    # red/green/blue clip shrinks to three frames that still last 8 x 250 ms.
    gif = decode(render_video_gif(videos["timed"], max_side=40, frames=8, fps=4))
    colours, total = [], 0
    for i in range(gif.n_frames):
        gif.seek(i)
        colours.append(gif.convert("RGB").getpixel((20, 15)))
        total += gif.info["duration"]
    assert total == 2000
    assert near(colours[0], RED) and near(colours[-1], BLUE)
    assert any(near(c, GREEN) for c in colours)


@pytest.mark.parametrize("threads", [0, 1])
def test_video_gif_applies_rotation(videos: dict[str, Path], threads: int) -> None:
    gif = decode(render_video_gif(videos["portrait"], max_side=80, frames=3, threads=threads))
    assert_upright(gif, (60, 80))


@pytest.mark.parametrize("name", ["corrupt", "truncated", "empty", "text", "audio"])
def test_broken_videos_raise_render_error(videos: dict[str, Path], name: str) -> None:
    with pytest.raises(RenderError):
        render_video_frame(videos[name], 64)
    with pytest.raises(RenderError):
        render_video_gif(videos[name])


# --- media.ffmpeg --------------------------------------------------------------------


def test_probe_video(videos: dict[str, Path]) -> None:
    info = probe_video(videos["testsrc"])
    assert abs(info.duration - 4.0) < 0.2
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert "mp4" in info.format_name
    assert info.created_at and info.created_at.startswith("2021-05-06T07:08:09")
    assert info.location == "+48.8577+002.2950/"
    portrait = probe_video(videos["portrait"])
    assert (portrait.width, portrait.height, portrait.rotation) == (160, 120, 90)
    assert portrait.display_size == (120, 160) and portrait.audio_codec is None
    assert probe_video(videos["upside"]).rotation == 180


@pytest.mark.parametrize("name", ["corrupt", "empty", "text", "audio", "missing"])
def test_probe_broken_video(videos: dict[str, Path], name: str) -> None:
    path = videos.get(name, Path("/nonexistent/clip.mp4"))
    with pytest.raises(MediaProbeError):
        probe_video(path)


def test_input_url_is_absolute_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert input_url("concat:a.mp4|b.mp4") == f"file:{tmp_path}/concat:a.mp4|b.mp4"


def test_run_ffmpeg_reports_stderr_and_times_out(tmp_path: Path) -> None:
    assert ffmpeg_path()
    with pytest.raises(FFmpegError) as info:
        run_ffmpeg(["-i", input_url(tmp_path / "missing.mp4"), "-f", "null", "-"], timeout=30)
    assert "missing.mp4" in str(info.value) and info.value.returncode
    started = time.monotonic()
    with pytest.raises(FFmpegError, match="timed out"):
        run_ffmpeg(["-re", "-f", "lavfi", "-i", "nullsrc=d=60", "-f", "null", "-"],
                   timeout=0.5, nice=True)  # fmt: skip
    assert time.monotonic() - started < 5
    done = run_ffmpeg(["-f", "lavfi", "-i", "color=red:s=8x8:d=0.1", "-frames:v", "1",
                       "-f", "image2pipe", "-c:v", "png", "pipe:1"], timeout=30)  # fmt: skip
    assert decode(done.stdout).size == (8, 8)
