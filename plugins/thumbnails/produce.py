"""Every rendition a job asks for, with the source decoded once for all still sizes.

``render.render`` makes one size; a job that wants a thumbnail and a preview would
decode a 24-megapixel photo twice. Here the photo (or the video frame) is decoded at the
largest size asked for and the smaller ones are resized from it, which costs a few
milliseconds instead of a second decode. The animated GIF is its own pass over the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from kernel.mediatypes import RAW_EXTENSIONS, VIDEO_EXTENSIONS, extension_of

from .layout import Variant
from .render import (
    RenderError,
    _check_file,
    describe,
    encode,
    fit_size,
    open_image,
    render,
    render_video_gif,
    shrink,
)


def media_kind(src: Path, media_type: str) -> str:
    """ "photo" or "video", from the index's media type or else the extension."""
    kind = (media_type or "").lower()
    if kind in ("photo", "video"):
        return kind
    return "video" if extension_of(src.name) in VIDEO_EXTENSIONS else "photo"


def decode_photo(src: Path, max_side: int) -> tuple[Image.Image, bytes | None]:
    """The photo fitted into max_side and upright, plus its ICC profile (RAW: none)."""
    _check_file(src)
    if extension_of(src.name) in RAW_EXTENSIONS:
        from .raw_preview import render_raw

        try:
            return render_raw(src, max_side), None
        except RenderError:
            raise
        except Exception as exc:  # LibRaw and the IFD walker meet hostile bytes too
            raise RenderError(f"unreadable RAW file: {exc}") from exc
    im = open_image(src)
    try:
        if im.format == "TIFF":
            from .raw_preview import check_tiff_structure

            check_tiff_structure(src)
        icc = im.info.get("icc_profile")
        small = shrink(im, max_side)
        return (im.copy() if small is im else small), icc
    except RenderError:
        raise
    except Exception as exc:  # Pillow raises many types on hostile input
        raise RenderError(describe(exc)) from exc
    finally:
        im.close()


def decode_frame(src: Path, max_side: int) -> Image.Image:
    """The video's poster frame fitted into max_side, rotation applied."""
    from .video_frames import grab_frames

    _check_file(src)
    return grab_frames(src, max_side)[0]


def _stills(src: Path, kind: str, stills: Sequence[Variant]) -> dict[Variant, bytes]:
    if len(stills) == 1:
        v = stills[0]
        return {v: render(src, kind, v.max_side, v.fmt)}
    largest = max(v.max_side for v in stills)
    if kind == "video":
        base, icc = decode_frame(src, largest), None
    else:
        base, icc = decode_photo(src, largest)
    out: dict[Variant, bytes] = {}
    for v in sorted(stills, key=lambda v: -v.max_side):
        target = fit_size(base.size, v.max_side)
        im = base if target == base.size else base.resize(target, Image.Resampling.LANCZOS)
        out[v] = encode(im, v.fmt, icc)
    return out


def produce(
    src: Path,
    media_type: str,
    variants: Sequence[Variant],
    *,
    gif_frames: int = 10,
    gif_fps: float = 2.0,
) -> tuple[dict[Variant, bytes], str | None]:
    """Encoded bytes of each rendition, and the reason for the first one that failed.

    A video whose poster decodes but whose animated preview does not still gets its
    poster: what was made is returned beside the error.
    """
    src = Path(src)
    kind = media_kind(src, media_type)
    made: dict[Variant, bytes] = {}
    stills = [v for v in variants if not v.is_gif]
    error: str | None = None
    if stills:
        try:
            made.update(_stills(src, kind, stills))
        except RenderError as exc:
            error = str(exc)
    for v in (v for v in variants if v.is_gif):
        if error is not None:
            break  # the source did not decode: a second pass would fail the same way
        if kind != "video":
            error = "animated previews are made of videos only"
            break
        try:
            made[v] = render_video_gif(src, v.max_side, gif_frames, gif_fps)
        except RenderError as exc:
            error = str(exc)
    return made, error
