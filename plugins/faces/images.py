"""The pixels faces works on: an upright JPEG of a photo, and crops of it.

Boxes are stored normalised (0..1) to the photo as a person sees it (EXIF orientation
applied), so every picture here is upright first. Photos Pillow opens (JPEG, PNG, HEIC
through pillow-heif, ...) are decoded here; a camera RAW is asked of whichever plugin
answers the kernel's ``render`` hook with a ``preview`` (the thumbnails plugin extracts
the embedded JPEG), so faces never imports another plugin.
"""

from __future__ import annotations

import asyncio
import functools
import io
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from kernel.media.mediatypes import RAW_EXTENSIONS
from kernel.types import FileRef

JPEG_QUALITY = 90


class NoPicture(Exception):
    """The photo's pixels cannot be had; the message says why."""


@dataclass(frozen=True)
class Picture:
    """An upright JPEG and its size in pixels."""

    jpeg: bytes
    width: int
    height: int


@functools.cache
def _register_heif() -> None:
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # HEIC photos then fail with a reason, like any unreadable file
        pass


def _encode(im: Image.Image) -> Picture:
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
    return Picture(out.getvalue(), im.width, im.height)


def upright(source: Path | bytes, max_side: int) -> Picture:
    """Decode, apply EXIF orientation, fit into ``max_side``, encode as JPEG."""
    _register_heif()
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
            turned = ImageOps.exif_transpose(im) or im
            turned.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return _encode(turned)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NoPicture(f"unreadable photo: {exc}") from None


async def photo(
    kernel: object, file: FileRef, max_side: int, decoder: Executor | None = None
) -> Picture:
    """An upright JPEG of ``file`` whose long side is at most ``max_side``, decoded on
    ``decoder`` (None: the event loop's threads, for a request waiting for it)."""
    loop = asyncio.get_running_loop()
    if file.extension in RAW_EXTENSIONS:
        hooks = kernel.hooks  # type: ignore[attr-defined]
        try:
            rendered = await hooks.render(file, "preview", "jpeg")
        except Exception as exc:  # the renderer's own refusal (unreadable RAW, ...)
            raise NoPicture(f"no preview of this RAW photo: {exc}") from None
        if rendered is None:
            raise NoPicture("a RAW photo needs a plugin that renders previews (thumbnails)")
        data = await loop.run_in_executor(decoder, Path(rendered.path).read_bytes)
        return await loop.run_in_executor(decoder, upright, data, max_side)
    return await loop.run_in_executor(decoder, upright, file.abs_path, max_side)


def crop(
    picture: Picture, bbox: tuple[float, float, float, float], pad: float, max_side: int
) -> bytes:
    """The box (normalised) widened by ``pad`` of its size on every side, clamped to the
    picture, fitted into ``max_side``, as JPEG."""
    x, y, w, h = bbox
    left = max(0.0, x - pad * w) * picture.width
    top = max(0.0, y - pad * h) * picture.height
    right = min(1.0, x + w + pad * w) * picture.width
    bottom = min(1.0, y + h + pad * h) * picture.height
    box = (int(left), int(top), max(int(left) + 1, round(right)), max(int(top) + 1, round(bottom)))
    with Image.open(io.BytesIO(picture.jpeg)) as im:
        part = im.crop(box)
        part.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return _encode(part).jpeg
