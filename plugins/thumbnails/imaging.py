"""Rendering primitives: decode, orient, resize and encode one picture with Pillow.

These know nothing of renditions, library files or media types; which chain of them a
file goes through is decided in ``dispatch`` (and in ``raw_preview`` and
``video_frames``, which build on them). Every failure a user's file can cause ends as
:class:`RenderError` with a reason a person can read, because the caller stores that
reason next to the file and shows it; a library of 100 000 photos always holds a few
broken ones and one of them must not take down a scan.
"""

from __future__ import annotations

import functools
import io
from contextlib import nullcontext
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .budget import PixelBudget

__all__ = [
    "RenderError",
    "apply_orientation",
    "check_pixels",
    "describe",
    "encode",
    "exif_orientation",
    "fit_size",
    "open_image",
    "shrink",
    "to_display_mode",
]

#: Pillow formats a library file may be opened as. Restricting them keeps a renamed
#: PostScript file (which Pillow would hand to Ghostscript) or an exotic decoder out.
#: (Multi-picture JPEGs open as JPEG and come back as MPO.)
PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "DIB", "HEIF", "AVIF")

JPEG_QUALITY = 85
WEBP_QUALITY = 80
#: Box-reduce by whole factors first, then Lanczos over the last 1.2x or less. A drafted
#: 24 MP JPEG arrives 750 px wide; a plain Lanczos to 200 px costs 3 ms, this 0.85 ms
#: (5% of the whole thumbnail), and differs from it by 50+ dB PSNR even on pure noise.
REDUCING_GAP = 1.2
#: Bytes handed to the decoder per call. Pillow's default, 64 KiB, is about a hundred
#: calls for a phone's JPEG, and each one gives up the interpreter lock and takes it
#: back: while the event loop or another render holds it, a decode thread waits up to
#: the interpreter's 5 ms switch interval every time.
DECODE_BLOCK = 1 << 20

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class RenderError(Exception):
    """A file cannot be thumbnailed; the message says why in words a user can read."""


@functools.cache
def _pillow_formats() -> tuple[str, ...]:
    """Teach Pillow HEIC/HEIF once per process (AVIF is native to Pillow), then list
    the allowed formats this Pillow build can open."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    Image.init()
    return tuple(f for f in PILLOW_FORMATS if f in Image.OPEN)


def fit_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Largest size inside max_side x max_side keeping the aspect; never upscales."""
    w, h = size
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    if w <= max_side and h <= max_side:
        return max(w, 1), max(h, 1)
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def exif_orientation(im: Image.Image) -> int | None:
    """The EXIF Orientation (1-8) of an opened image, or None when it has none."""
    try:
        value = im.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not hide a good picture
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def apply_orientation(im: Image.Image, orientation: int | None) -> Image.Image:
    """Transpose like ``ImageOps.exif_transpose`` (same table), given the value.

    The orientation is read from the source and applied to the small result:
    transposing a thumbnail is cheaper than transposing the original, and a resized
    copy no longer carries the EXIF the orientation came from. RAW previews also need
    an orientation that comes from the RAW, not from the preview's own EXIF.
    """
    method = _TRANSPOSE.get(orientation or 1)
    return im.transpose(method) if method is not None else im


def to_display_mode(im: Image.Image) -> Image.Image:
    """Bring any Pillow mode to RGB or RGBA (16-bit and float scaled, not clipped)."""
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if im.mode == "F":
            top = float(arr.max(initial=0)) or 1.0
        scaled = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    has_alpha = im.mode in ("LA", "PA", "La", "RGBa") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    return im.convert("RGBA" if has_alpha else "RGB")


def check_pixels(size: tuple[int, int]) -> None:
    """Refuse images above Pillow's ``MAX_IMAGE_PIXELS`` outright (an error, not a warning).

    Pillow itself only warns between 1x and 2x the limit; imageapi decodes untrusted
    uploads, so anything above the limit is treated as a decompression bomb.
    """
    limit = Image.MAX_IMAGE_PIXELS
    pixels = size[0] * size[1]
    if limit is not None and pixels > limit:
        raise RenderError(f"decompression bomb: {pixels} pixels (limit {limit})")
    if size[0] <= 0 or size[1] <= 0:
        raise RenderError(f"image has no pixels ({size[0]}x{size[1]})")


def shrink(
    im: Image.Image,
    max_side: int,
    default_orientation: int | None = None,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """Load ``im`` cheaply, fit it into max_side and turn it upright; returns RGB or RGBA.

    JPEGs are drafted first: libjpeg scales by 1/2, 1/4 or 1/8 in the DCT domain, so a
    24 MP photo is never decoded at full size. HEIF's draft picks an embedded thumbnail
    that is at least the target size. The EXIF orientation is read after loading
    (PNG may keep it after the pixels; Pillow's TIFF loader applies it itself and
    drops the tag); ``default_orientation`` applies when the image carries none. The
    decode holds its (drafted) pixel count from ``budget`` until the picture is small.
    """
    check_pixels(im.size)
    target = fit_size(im.size, max_side)
    if im.format in ("JPEG", "MPO"):
        im.draft("RGB", target)
    elif im.format == "HEIF":
        im.draft(None, target)
    held = budget.hold(im.size[0] * im.size[1]) if budget is not None else nullcontext()
    with held:
        im.decodermaxblock = max(im.decodermaxblock, DECODE_BLOCK)
        im.load()
        orientation = exif_orientation(im) or default_orientation
        target = fit_size(im.size, max_side)
        im = to_display_mode(im)
        if im.size != target:
            im = im.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        return apply_orientation(im, orientation)


def encode(im: Image.Image, fmt: str, icc_profile: bytes | None = None) -> bytes:
    """Encode a display-mode image as JPEG (alpha flattened onto white) or WebP.

    An RGB ICC profile is embedded so wide-gamut phone photos keep their colours.
    """
    fmt = fmt.lower()
    if icc_profile is not None and icc_profile[16:20] != b"RGB ":
        icc_profile = None
    out = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        if im.mode == "RGBA":
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        elif im.mode != "RGB":
            im = im.convert("RGB")
        im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, icc_profile=icc_profile)
    elif fmt == "webp":
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGB")
        im.save(out, "WEBP", quality=WEBP_QUALITY, method=4, icc_profile=icc_profile)
    else:
        raise ValueError(f"unsupported thumbnail format: {fmt!r}")
    return out.getvalue()


def describe(exc: BaseException) -> str:
    """A short reason for a decoding failure, worded for users rather than developers."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb: {text}"
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format"
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated or damaged image: {text}"
    return f"unreadable image: {text}"


def open_image(src: Path | io.BytesIO) -> Image.Image:
    """Open with Pillow, limited to photo formats; errors become RenderError."""
    try:
        return Image.open(src, formats=_pillow_formats())
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(describe(exc)) from exc
