"""The face routes: a photo's faces, manual boxes, re-runs, one face, its crop, and the
unassigned faces with suggestions. Every one answers 503 while the plugin is inert.

The handlers receive their plugin instance as the ``plugin`` dependency the plugin's
Router provides.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy import select

from kernel.index import FILE_COLUMNS
from kernel.libraries import PathRefused
from kernel.media.serving import serve_file
from kernel.tables import files
from kernel.types import FileRef, InvalidParameter

from . import (
    Plugin,  # loaded lazily by Plugin.routes(), once the package is complete
    images,
    persons,
    search,
    store,
)
from .apollo import ApolloError, NoFace
from .persons import PersonError
from .schemas import Face, FacePage, FacePatch, ManualFace, PhotoFaces, Rerun

PluginDep = NamedDependency[Plugin]
CROP_PAD = 0.2  # a face chip shows a little of the head around the box
EMBED_PAD = 0.5  # the detector wants the face to fill about half of what it sees
EPSILON = 1e-6


def _pipeline(plugin: Plugin) -> Any:
    return plugin.pipeline  # 503 when inert


def _person_error(exc: PersonError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.detail)


async def _photo(plugin: Plugin, library: str | int | None, path: str | None) -> FileRef:
    """The indexed, hashed photo at a client path."""
    if not path:
        raise InvalidParameter("path", "the path of a photo is required")
    kernel = plugin.kernel
    resolved = kernel.libraries.resolve(library, path)
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder; faces belong to photos")
    ref = await asyncio.to_thread(kernel.index.get, resolved.library.id, resolved.rel_path)
    if ref is None:
        raise PathRefused(404, f"{resolved.rel_path} is not in the index (yet)")
    if ref.media_type != "photo":
        raise PathRefused(400, f"{ref.rel_path} is a video; faces are found in photos")
    if ref.content_hash is None:
        raise PathRefused(409, f"{ref.rel_path} is not hashed yet; try again shortly")
    return ref


async def _photo_faces(plugin: Plugin, ref: FileRef) -> PhotoFaces:
    status, faces, error = await asyncio.to_thread(
        store.faces_of_hash, plugin.kernel.db, ref.content_hash or ""
    )
    return PhotoFaces(
        path=ref.rel_path, library=ref.library_id, content_hash=ref.content_hash,
        status=status, error=error, faces=[msgspec.convert(f, Face) for f in faces],
    )  # fmt: skip


async def _known_person(plugin: Plugin, person_id: int) -> None:
    def check() -> None:
        with plugin.kernel.db.read() as conn:
            persons.require(conn, person_id)

    try:
        await asyncio.to_thread(check)
    except PersonError as exc:
        raise _person_error(exc) from None


def _apollo_failed(exc: ApolloError) -> HTTPException:
    return HTTPException(status_code=502, detail=f"Apollo: {exc}")


@get("/image/faces", summary="The faces of one photo and its scan state")
async def photo_faces(
    plugin: PluginDep,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
) -> PhotoFaces:
    _pipeline(plugin)
    return await _photo_faces(plugin, await _photo(plugin, library, file_path))


def _checked_box(raw: list[float]) -> tuple[float, float, float, float]:
    if len(raw) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in raw):
        raise InvalidParameter("bbox", "must be four numbers [x, y, w, h]")
    x, y, w, h = (float(v) for v in raw)
    if w <= 0 or h <= 0:
        raise InvalidParameter("bbox", "is empty: w and h must be above 0")
    if x < 0 or y < 0 or x + w > 1 + EPSILON or y + h > 1 + EPSILON:
        raise InvalidParameter("bbox", "must lie inside the photo: fractions 0..1 of its size")
    return (x, y, min(w, 1 - x), min(h, 1 - y))


@post("/image/faces", summary="Add a face drawn by hand", status_code=201)
async def add_face(plugin: PluginDep, data: JSONBody[ManualFace]) -> Face:
    """Crop the upright photo around the box (padded by half its size), ask Apollo for
    the embedding; when Apollo finds no face there the answer is 422, unless ``force``
    keeps the box with a zero vector (bound by hand only, never clustered)."""
    pipeline = _pipeline(plugin)
    bbox = _checked_box(data.bbox)
    ref = await _photo(plugin, data.library, data.path)
    if data.person_id is not None:
        await _known_person(plugin, data.person_id)
    settings = plugin.settings
    try:
        picture = await images.photo(plugin.kernel, ref, settings.detect_max_side)
    except images.NoPicture as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    chip = await asyncio.to_thread(images.crop, picture, bbox, EMBED_PAD, settings.detect_max_side)
    vector = model_version = None
    try:
        model_version, vector = await pipeline.apollo.embed(chip)
    except NoFace as exc:
        if not data.force:
            raise HTTPException(
                status_code=422, detail=f"Apollo found no face in the box ({exc}); send force=true"
            ) from None
    except ApolloError as exc:
        raise _apollo_failed(exc) from None
    face = store.NewFace(bbox, vector, None, model_version, data.person_id)
    try:
        face_id = await asyncio.to_thread(
            store.add_manual, plugin.kernel.db, ref.library_id, ref.content_hash or "",
            ref.rel_path, face,
        )  # fmt: skip
    except PersonError as exc:
        raise _person_error(exc) from None
    return await _face(plugin, face_id)


async def rerun_photo(plugin: Plugin, ref: FileRef) -> PhotoFaces:
    """Detect again: the automatic rows (markers included) are replaced once Apollo has
    answered, manual rows stay; a failed call changes nothing."""
    pipeline = _pipeline(plugin)
    h = ref.content_hash or ""
    if h in pipeline.in_flight:
        raise HTTPException(status_code=409, detail="this photo is being detected right now")
    pipeline.in_flight.add(h)
    try:
        try:
            faces, model_version = await pipeline.detect(ref)
        except images.NoPicture as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except ApolloError as exc:
            raise _apollo_failed(exc) from None
        if faces:
            faces = await pipeline.autobind(ref, faces)
        await asyncio.to_thread(
            store.store_detection, plugin.kernel.db, ref.library_id, h, ref.rel_path, faces,
            model_version=model_version, replace_auto=True,
        )  # fmt: skip
    finally:
        pipeline.in_flight.discard(h)
    return await _photo_faces(plugin, ref)


@post(
    "/image/faces/rerun",
    summary="Detect a photo's faces again (manual faces stay)",
    status_code=200,
)
async def rerun_by_path(plugin: PluginDep, data: JSONBody[Rerun]) -> PhotoFaces:
    _pipeline(plugin)
    return await rerun_photo(plugin, await _photo(plugin, data.library, data.path))


def _file_of_row(plugin: Plugin, row_id: int) -> FileRef | None:
    """A present file with the content of a face row (its own path first)."""
    kernel = plugin.kernel
    with kernel.db.read() as conn:
        row = store.row_of(conn, row_id)
        if row is None:
            return None
        found = conn.execute(
            select(*FILE_COLUMNS)
            .where(files.c.content_hash == row.content_hash, files.c.status == "present")
            .order_by((files.c.rel_path != row.rel_path), files.c.id)
            .limit(1)
        ).first()
    refs = kernel.index.refs([found]) if found else []
    if not refs:
        raise NotFoundException(f"no file with the content of face {row_id} is present")
    return refs[0]


@post(
    ["/faces/{face_id:int}/rerun", "/image/faces/{face_id:int}/rerun"],
    summary="Detect again the photo a face (or a scan marker) belongs to",
    status_code=200,
)
async def rerun_by_face(plugin: PluginDep, face_id: FromPath[int]) -> PhotoFaces:
    _pipeline(plugin)
    ref = await asyncio.to_thread(_file_of_row, plugin, face_id)
    if ref is None:
        raise NotFoundException(f"face {face_id} not found")
    return await rerun_photo(plugin, ref)


async def _face(plugin: Plugin, face_id: int) -> Face:
    def load() -> Any:
        with plugin.kernel.db.read() as conn:
            return store.get_face(conn, face_id)

    row = await asyncio.to_thread(load)
    if row is None:
        raise NotFoundException(f"face {face_id} not found")
    return msgspec.convert(store.face_json(row), Face)


@get("/faces/unassigned", summary="Faces bound to nobody, each with a suggested person")
async def unassigned_faces(
    plugin: PluginDep, limit: FromQuery[int] = 100, offset: FromQuery[int] = 0
) -> FacePage:
    _pipeline(plugin)
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit", "must be between 1 and 1000")
    if offset < 0:
        raise InvalidParameter("offset", "must not be negative")
    total, faces = await asyncio.to_thread(search.unassigned, plugin.kernel.db, limit, offset)
    return FacePage(total=total, faces=[msgspec.convert(f, Face) for f in faces])


@get("/faces/{face_id:int}", summary="One face")
async def get_face(plugin: PluginDep, face_id: FromPath[int]) -> Face:
    _pipeline(plugin)
    return await _face(plugin, face_id)


@patch("/faces/{face_id:int}", summary="Bind a face to a person, or unassign it (null)")
async def patch_face(plugin: PluginDep, face_id: FromPath[int], data: JSONBody[FacePatch]) -> Face:
    _pipeline(plugin)
    try:
        found = await asyncio.to_thread(store.set_person, plugin.kernel.db, face_id, data.person_id)
    except PersonError as exc:
        raise _person_error(exc) from None
    if not found:
        raise NotFoundException(f"face {face_id} not found")
    return await _face(plugin, face_id)


@delete("/faces/{face_id:int}", summary="Delete a face", status_code=204)
async def delete_face(plugin: PluginDep, face_id: FromPath[int]) -> None:
    _pipeline(plugin)
    row = await asyncio.to_thread(store.delete_face, plugin.kernel.db, face_id)
    if row is None:
        raise NotFoundException(f"face {face_id} not found")
    await asyncio.to_thread(_crop_path(plugin, face_id, row.content_hash).unlink, missing_ok=True)


def _crop_path(plugin: Plugin, face_id: int, content_hash: str) -> Any:
    return plugin.crops / content_hash[:2] / f"{face_id}-{content_hash[:16]}.jpg"


@get("/faces/{face_id:int}/crop", summary="A JPEG of the face", media_type="image/jpeg")
async def face_crop(
    plugin: PluginDep, request: Request, face_id: FromPath[int]
) -> Response[bytes] | Stream:
    """Made once from the upright photo and kept in the data folder; served like a
    thumbnail (ETag, ``Cache-Control: private, max-age=cache_seconds``)."""
    _pipeline(plugin)
    face = await _face(plugin, face_id)
    path = _crop_path(plugin, face_id, face.content_hash)
    if not path.exists():
        ref = await asyncio.to_thread(_file_of_row, plugin, face_id)
        if ref is None:
            raise NotFoundException(f"face {face_id} not found")
        settings = plugin.settings
        try:
            picture = await images.photo(plugin.kernel, ref, settings.detect_max_side)
        except images.NoPicture as exc:
            raise NotFoundException(f"no picture of face {face_id}: {exc}") from None
        box = (face.bbox[0], face.bbox[1], face.bbox[2], face.bbox[3])
        chip = await asyncio.to_thread(images.crop, picture, box, CROP_PAD, settings.crop_size)
        await asyncio.to_thread(_write_atomically, path, chip)
    return serve_file(request, path, "image/jpeg", cache_seconds=plugin.settings.cache_seconds)


def _write_atomically(path: Any, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


ROUTES = [
    photo_faces, add_face, rerun_by_path, rerun_by_face, unassigned_faces, get_face,
    patch_face, delete_face, face_crop,
]  # fmt: skip
