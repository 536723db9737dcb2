"""Every rendition a job asks for, with the source decoded once for all still sizes.

``dispatch.render`` makes one size; a job that wants a thumbnail and a preview would
decode a 24-megapixel photo twice. Here the photo (or the video frame) is decoded at the
largest size asked for and the smaller ones are resized from it, which costs a few
milliseconds instead of a second decode. The animated GIF is its own pass over the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from .budget import PixelBudget
from .dispatch import decode_frame, decode_photo, media_kind, render, render_video_gif
from .imaging import RenderError, encode, fit_size
from .layout import Variant


def _stills(
    src: Path, kind: str, stills: Sequence[Variant], budget: PixelBudget | None, threads: int
) -> dict[Variant, bytes]:
    if len(stills) == 1:
        v = stills[0]
        return {v: render(src, kind, v.max_side, v.fmt, budget, threads)}
    largest = max(v.max_side for v in stills)
    if kind == "video":
        base, icc = decode_frame(src, largest, threads), None
    else:
        base, icc = decode_photo(src, largest, budget)
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
    budget: PixelBudget | None = None,
    video_threads: int = 0,
) -> tuple[dict[Variant, bytes], str | None]:
    """Encoded bytes of each rendition, and the reason for the first one that failed.

    A video whose poster decodes but whose animated preview does not still gets its
    poster: what was made is returned beside the error. ``video_threads`` is the video
    decoder's thread count (0: one per core).
    """
    src = Path(src)
    kind = media_kind(src, media_type)
    made: dict[Variant, bytes] = {}
    stills = [v for v in variants if not v.is_gif]
    error: str | None = None
    if stills:
        try:
            made.update(_stills(src, kind, stills, budget, video_threads))
        except RenderError as exc:
            error = str(exc)
    for v in (v for v in variants if v.is_gif):
        if error is not None:
            break  # the source did not decode: a second pass would fail the same way
        if kind != "video":
            error = "animated previews are made of videos only"
            break
        try:
            made[v] = render_video_gif(src, v.max_side, gif_frames, gif_fps, video_threads)
        except RenderError as exc:
            error = str(exc)
    return made, error
