"""Which chain of rendering primitives a library file goes through, by its kind.

A photo is opened with Pillow (a TIFF's IFD chain checked first), a camera RAW goes
through ``raw_preview``, a video through ``video_frames``; each ends in the primitives
of ``imaging``. ``render`` makes one size of one file; ``produce`` builds on the
decoders here to make every rendition of a job from one decode. Pure functions: no
database, no web code, no storage layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from kernel.media.mediatypes import RAW_EXTENSIONS, VIDEO_EXTENSIONS, extension_of

from .budget import PixelBudget
from .imaging import RenderError, describe, encode, open_image, shrink

__all__ = [
    "check_file",
    "decode_frame",
    "decode_photo",
    "media_kind",
    "render",
    "render_image",
    "render_video_frame",
    "render_video_gif",
]


def media_kind(src: Path, media_type: str) -> str:
    """ "photo" or "video", from the index's media type or else the extension."""
    kind = (media_type or "").lower()
    if kind in ("photo", "video"):
        return kind
    return "video" if extension_of(src.name) in VIDEO_EXTENSIONS else "photo"


def check_file(src: Path) -> int:
    """The file's size; a file that cannot be read or is empty is a RenderError."""
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise RenderError(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise RenderError("empty file")
    return size


def _is_raw(src: Path) -> bool:
    return extension_of(src.name) in RAW_EXTENSIONS


def _decode_raw(src: Path, max_side: int) -> Image.Image:
    from .raw_preview import render_raw

    try:
        return render_raw(src, max_side)
    except RenderError:
        raise
    except Exception as exc:  # LibRaw and the IFD walker meet hostile bytes too
        raise RenderError(f"unreadable RAW file: {exc}") from exc


@contextmanager
def _opened_photo(src: Path) -> Iterator[tuple[Image.Image, bytes | None]]:
    """A (non-RAW) photo opened with its ICC profile, closed afterwards; any error in
    the block becomes RenderError (Pillow raises many types on hostile input)."""
    im = open_image(src)
    try:
        if im.format == "TIFF":
            from .raw_preview import check_tiff_structure

            check_tiff_structure(src)
        yield im, im.info.get("icc_profile")
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(describe(exc)) from exc
    finally:
        im.close()


def decode_photo(
    src: Path, max_side: int, budget: PixelBudget | None = None
) -> tuple[Image.Image, bytes | None]:
    """The photo fitted into max_side and upright, plus its ICC profile (RAW: none)."""
    check_file(src)
    if _is_raw(src):
        return _decode_raw(src, max_side), None
    with _opened_photo(src) as (im, icc):
        small = shrink(im, max_side, budget=budget)
        return (im.copy() if small is im else small), icc


def decode_frame(src: Path, max_side: int, threads: int = 0) -> Image.Image:
    """The video's poster frame fitted into max_side, rotation applied."""
    from .video_frames import grab_frames

    check_file(src)
    return grab_frames(src, max_side, threads=threads)[0]


def render_image(
    src: Path, max_side: int, fmt: str = "jpeg", budget: PixelBudget | None = None
) -> bytes:
    """Thumbnail of a photo (RAW included) that fits max_side, EXIF orientation applied."""
    src = Path(src)
    check_file(src)
    if _is_raw(src):
        return encode(_decode_raw(src, max_side), fmt)
    with _opened_photo(src) as (im, icc):
        return encode(shrink(im, max_side, budget=budget), fmt, icc)


def render_video_frame(src: Path, max_side: int, fmt: str = "jpeg", threads: int = 0) -> bytes:
    """Poster frame of a video (3 s in, or the middle of short clips), rotation applied;
    ``threads`` decoder threads (0: one per core)."""
    from .video_frames import render_video_frame as _render

    check_file(Path(src))
    return _render(Path(src), max_side, fmt, threads)


def render_video_gif(
    src: Path, max_side: int = 200, frames: int = 10, fps: float = 2.0, threads: int = 0
) -> bytes:
    """A small looping GIF sampling the whole clip evenly, rotation applied."""
    from .video_frames import render_video_gif as _render

    check_file(Path(src))
    return _render(Path(src), max_side, frames, fps, threads)


def render(
    src: Path,
    media_type: str,
    max_side: int,
    fmt: str,
    budget: PixelBudget | None = None,
    video_threads: int = 0,
) -> bytes:
    """One still of any file: dispatch on media type ("photo" or "video"), falling back
    to the extension."""
    src = Path(src)
    if media_kind(src, media_type) == "video":
        return render_video_frame(src, max_side, fmt, video_threads)
    return render_image(src, max_side, fmt, budget)
