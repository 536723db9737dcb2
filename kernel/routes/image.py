"""``GET /image`` (an original, or a derived rendition through the ``render`` hook) and
``POST /image`` (upload: atomic, never overwrites, indexed at once)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, MultipartBody, QueryParameter

from kernel.deps import KernelDep
from kernel.index import Stat
from kernel.libraries import PathRefused
from kernel.mediatypes import content_type_for, media_type_for, sniff
from kernel.routes.serving import serve_file
from kernel.schemas import BAD_REQUEST
from kernel.types import InvalidParameter

ORIGINAL_SIZES = frozenset({"", "full", "original"})
UNSAFE_NAME = re.compile(r"[^\w.\- ()+,@]+", re.UNICODE)
FILE_BYTES = ResponseSpec(
    data_container=bytes,
    media_type="application/octet-stream",
    description=(
        "The file, sent with its own Content-Type (image/..., video/...); ETag,"
        " Last-Modified and byte ranges (206) are honoured."
    ),
    generate_examples=False,
)


class Uploaded(msgspec.Struct):
    """Where an upload landed (its name may carry a suffix to avoid a clash)."""

    path: str
    library: int
    id: int | None  # the index row, or None if the file could not be indexed


@get(
    "/image",
    summary="An original file, or a rendition of it with size=",
    responses={200: FILE_BYTES, **BAD_REQUEST},
)
async def get_image(
    request: Request,
    kernel: KernelDep,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
    size: FromQuery[str | None] = None,
    format: FromQuery[str | None] = None,
) -> Any:
    resolved = kernel.libraries.resolve(library, file_path)
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder; /photos lists folders")
    wanted = (size or "").strip().lower()
    if wanted in ORIGINAL_SIZES:
        return serve_file(request, resolved.abs_path, content_type_for(resolved.abs_path.name))
    ref = await asyncio.to_thread(kernel.index.get, resolved.library.id, resolved.rel_path)
    if ref is None:
        raise NotFoundException(f"{resolved.rel_path} is not indexed yet; try again shortly")
    fmt = (format or "jpeg").strip().lower()
    result = await kernel.hooks.render(ref, wanted, fmt)
    if result is None:
        raise NotFoundException(f"no enabled plugin renders size={wanted!r} format={fmt!r}")
    return serve_file(request, result.path, result.media_type, cache_seconds=result.cache_seconds)


def safe_basename(filename: str) -> str:
    """The client's file name reduced to one harmless path component."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    name = UNSAFE_NAME.sub("_", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = stem[:180] or "upload"
    return f"{stem}.{ext[:16]}" if ext else stem


def _place_without_overwriting(tmp: Path, target_dir: Path, name: str) -> Path:
    """Link the temp file to its final name; on a clash use ``name_<unix-ts>.ext``."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    candidates = [name, f"{stem}_{int(time.time())}{suffix}"]
    candidates += [f"{stem}_{int(time.time())}_{n}{suffix}" for n in range(1, 100)]
    for candidate in candidates:
        final = target_dir / candidate
        try:
            os.link(tmp, final)  # atomic and fails if the name exists: never overwrites
            return final
        except FileExistsError:
            continue
    raise PathRefused(409, "could not find a free file name")


def _store_upload(upload: UploadFile, target_dir: Path, name: str, limit: int) -> Path:
    tmp = target_dir / f".imageapi-upload-{secrets.token_hex(8)}.part"
    written = 0
    try:
        with open(tmp, "xb") as out:
            upload.file.seek(0)
            head = upload.file.read(256)
            if media_type_for(name) is None or sniff(head) is None:
                raise PathRefused(415, "only photos and videos can be uploaded")
            out.write(head)
            written = len(head)
            while chunk := upload.file.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise PathRefused(413, f"upload exceeds the limit of {limit} bytes")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        return _place_without_overwriting(tmp, target_dir, name)
    finally:
        tmp.unlink(missing_ok=True)


@post(
    "/image",
    summary="Upload a photo or video into a library folder",
    status_code=201,
    responses=BAD_REQUEST,
)
async def upload_image(
    kernel: KernelDep,
    data: MultipartBody[dict[str, Any]],
) -> Uploaded:
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidParameter("file", "a multipart field 'file' with the upload is required")
    directory = data.get("path") or data.get("directory") or ""
    library_param = data.get("library")
    if not isinstance(directory, str) or not isinstance(library_param, str | None):
        raise InvalidParameter("path", "must be a folder path")
    resolved = kernel.libraries.resolve(library_param, directory)
    if not resolved.abs_path.is_dir():
        raise PathRefused(400, "path must be an existing folder")
    name = safe_basename(upload.filename or "upload")
    media_type = media_type_for(name)
    if media_type is None:
        raise PathRefused(415, f"{name}: only photo and video files can be uploaded")
    limit = kernel.config.kernel.upload_max_bytes
    final = await asyncio.to_thread(_store_upload, upload, resolved.abs_path, name, limit)
    rel_path = "/".join(p for p in (resolved.rel_path, final.name) if p)
    st = final.stat()
    ref = await kernel.ingest.add(
        resolved.library, Stat(rel_path, st.st_size, st.st_mtime_ns, media_type)
    )
    kernel.spawn_background(kernel.scanner.hash_backlog(), "hash upload")
    return Uploaded(rel_path, resolved.library.id, ref.id if ref else None)
