"""What the model is told about a photo, gathered through the kernel, never by import.

* the file's entry (``kernel.catalog.entries``): the kernel's fields plus every enabled
  plugin's ``file_extras`` — EXIF's ``date_taken`` and ``exif`` (camera, lens, size,
  GPS), tags' ``tags``, faces' person names (read defensively: whatever of ``faces``,
  ``persons``, ``people`` or ``person`` a faces plugin provides);
* a place name from the ``resolve_location`` hook, for the GPS position;
* what other plugins add through the ``photo_context`` hook (text messages of the day);
* the picture: a preview JPEG from the ``render`` hook (so HEIC, RAW and video posters
  work wherever a thumbnailer does), scaled to ``image_max_side``; without a renderer,
  a photo Pillow can open is scaled here, and a video goes without a picture.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from kernel.types import FileRef

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)

PREVIEW_SIZE = "preview"
ORIENTATION = 0x0112
_PEOPLE_KEYS = ("faces", "persons", "people", "person")
_NAME_KEYS = ("person_name", "person", "name")


@dataclass
class PhotoContext:
    ref: FileRef
    library: str
    entry: dict[str, Any]
    date_taken: str | None = None
    camera: str | None = None
    lens: str | None = None
    size: str | None = None
    gps: tuple[float, float] | None = None
    location: str | None = None
    tags: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    image: str | None = None  # base64 JPEG
    notes: list[str] = field(default_factory=list)  # the photo_context hook's texts

    def text(self, picture: bool) -> str:
        """The facts, one a line, for the first user message (``picture``: whether the
        model sees the picture, or a description of it)."""
        lines = [f"File: {self.ref.rel_path} (library {self.library}, {self.ref.media_type})"]
        if self.date_taken:
            lines.append(f"Date taken: {self.date_taken}")
        if self.camera:
            lines.append(f"Camera: {self.camera}" + (f", lens {self.lens}" if self.lens else ""))
        if self.size:
            lines.append(f"Size: {self.size} pixels")
        if self.gps:
            lines.append(f"GPS: {self.gps[0]:.6f}, {self.gps[1]:.6f}")
        if self.location:
            lines.append(f"Location: {self.location}")
        if self.tags:
            lines.append("Tags: " + ", ".join(self.tags))
        if self.people:
            lines.append("People: " + ", ".join(self.people))
        if not picture:
            lines.append("(No picture attached.)")
        lines.extend(self.notes)
        return "\n".join(lines)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def people_in(entry: dict[str, Any]) -> list[str]:
    """Person names from whatever shape a faces plugin's extras take: a list of names,
    of face objects naming their person, or an object holding such a list."""
    names: list[str] = []

    def visit(value: Any, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(value, str):
            if value.strip() and value.strip() not in names:
                names.append(value.strip())
        elif isinstance(value, list):
            for item in value:
                visit(item, depth + 1)
        elif isinstance(value, dict):
            for key in (*_NAME_KEYS, *_PEOPLE_KEYS):
                if key in value:
                    inner = value[key]
                    if isinstance(inner, dict) and key in _NAME_KEYS:
                        inner = inner.get("name")
                    visit(inner, depth + 1)
                    if key in _NAME_KEYS:
                        return

    for key in _PEOPLE_KEYS:
        if key in entry:
            visit(entry[key], 0)
    return names


def facts_of(ctx: PhotoContext) -> None:
    entry = ctx.entry
    ctx.date_taken = _text(entry.get("date_taken"))
    exif = entry.get("exif") if isinstance(entry.get("exif"), dict) else {}
    make, model = _text(exif.get("camera_make")), _text(exif.get("camera_model"))
    if make and model and model.lower().startswith(make.lower()):
        make = None
    ctx.camera = " ".join(p for p in (make, model) if p) or None
    ctx.lens = _text(exif.get("lens"))
    width, height = exif.get("width"), exif.get("height")
    if isinstance(width, int) and isinstance(height, int):
        ctx.size = f"{width}x{height}"
    gps = exif.get("gps") if isinstance(exif.get("gps"), dict) else None
    if gps and isinstance(gps.get("lat"), int | float) and isinstance(gps.get("lon"), int | float):
        ctx.gps = (float(gps["lat"]), float(gps["lon"]))
    tags = entry.get("tags") if isinstance(entry.get("tags"), list) else []
    for tag in tags:
        name = _text(tag.get("name")) if isinstance(tag, dict) else _text(tag)
        if name and name not in ctx.tags:
            ctx.tags.append(name)
    ctx.people = people_in(entry)


def scale_jpeg(source: Path | bytes, max_side: int) -> bytes:
    """A JPEG no larger than ``max_side`` on its longest side, upright. A JPEG that
    already fits with no rotation to apply (a thumbnailer's preview) is sent as it is:
    decoding and encoding it again would cost more than the rest of an agentic call."""
    raw = source if isinstance(source, bytes) else source.read_bytes()
    with Image.open(io.BytesIO(raw)) as image:
        upright = image.getexif().get(ORIENTATION, 1) in (0, 1)
        if image.format == "JPEG" and upright and max(image.size) <= max_side:
            return raw
        image.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4... when it can
        picture = ImageOps.exif_transpose(image)
        picture.thumbnail((max_side, max_side))
        if picture.mode not in ("RGB", "L"):
            picture = picture.convert("RGB")
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85)
        return out.getvalue()


async def picture_of(kernel: Kernel, ref: FileRef, max_side: int) -> str | None:
    data: bytes | None = None
    try:
        rendered = await kernel.hooks.render(ref, PREVIEW_SIZE, "jpeg")
    except Exception as exc:  # a picture is a nice-to-have (NotFoundException: none made)
        log.warning("insights: no preview of %s: %s", ref.rel_path, exc)
        rendered = None
    try:
        if rendered is not None:
            data = await asyncio.to_thread(scale_jpeg, rendered.path, max_side)
        elif ref.media_type == "photo":
            data = await asyncio.to_thread(scale_jpeg, ref.abs_path, max_side)
    except Exception as exc:  # Pillow cannot read it: the model goes without
        log.warning("insights: cannot make a picture of %s: %s", ref.rel_path, exc)
    return base64.b64encode(data).decode() if data else None


async def gather(
    kernel: Kernel, ref: FileRef, library: str, user_id: int | None, *, max_side: int
) -> PhotoContext:
    (entry,) = await kernel.catalog.entries([ref], user_id)
    ctx = PhotoContext(ref=ref, library=library, entry=entry)
    facts_of(ctx)
    picture = asyncio.ensure_future(picture_of(kernel, ref, max_side))
    try:
        if ctx.gps is not None:
            ctx.location = await kernel.hooks.resolve_location(*ctx.gps)
    except Exception:
        log.exception("insights: resolve_location failed for %s", ref.rel_path)
    try:
        if kernel.hooks.implemented(kernel.hooks.photo_context):
            found = await kernel.hooks.photo_context(ref, entry)
            ctx.notes = [text.strip() for _plugin, text in found]
    except Exception:  # extra context is a nice-to-have, like the picture
        log.exception("insights: photo_context failed for %s", ref.rel_path)
    finally:
        ctx.image = await picture
    return ctx
