"""``POST /video/generate``, ``GET /video/stream``, ``GET /video/status`` and the segments.

``/video/stream`` and ``/video/segment/...`` are public routes that check their own
credentials: the stream takes the usual bearer token or the signed ``token`` of a
playlist URL (a ``<video src>`` cannot send headers), the segments only the signed
token. Until a caller has proven who it is, every failure is a 401, so a stranger cannot
learn which paths exist.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from kernel.auth import User, user_by_id, user_for_token
from kernel.core import Kernel
from kernel.deps import CurrentUser
from kernel.libraries import PathRefused
from kernel.media.mediatypes import media_type_for
from kernel.media.serving import send_file
from kernel.types import FileRef, InvalidParameter

from . import Plugin, jobs, layout, tokens

M3U8 = "application/vnd.apple.mpegurl"
SEGMENT_CACHE_SECONDS = 86400
_POLL = 0.05

#: The plugin instance whose Router serves the request (see ``Plugin.routes``).
PluginDep = NamedDependency[Plugin]


class GenerateBody(msgspec.Struct):
    path: str
    library: str | int | None = None
    retry: bool = False  # run a failed job again (a failure is kept until the file changes)


class Progress(msgspec.Struct):
    """How far ffmpeg has got through the source (null while unknown)."""

    processed_seconds: float
    duration_seconds: float | None
    fraction: float | None


class VideoState(msgspec.Struct):
    """The state of a video's rendition. With no job yet (``status`` "none") only
    ``path``, ``library`` and ``status`` are sent; with a job, every field."""

    path: str
    library: int
    status: Literal["none", "queued", "running", "done", "failed"]
    mode: Literal["remux", "transcode"] | UnsetType | None = UNSET
    paused: bool | UnsetType = UNSET  # a video a user asked for suspended this run for now
    progress: Progress | UnsetType = UNSET
    error: str | UnsetType | None = UNSET  # ffmpeg's last error lines when failed
    attempts: int | UnsetType = UNSET
    playlist_url: str | UnsetType | None = UNSET  # signed: plays without a header


class Generated(VideoState, kw_only=True):
    """``POST /video/generate``: the state, and whether this call queued the job."""

    queued_now: bool


async def _video(kernel: Kernel, library: str | int | None, path: str) -> FileRef:
    """The indexed video at (library, path); a file on disk the scanner has not reached
    yet is indexed now, so a just-copied clip plays at once."""
    resolved = kernel.libraries.resolve(library, path)
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder, not a video")
    if media_type_for(resolved.abs_path.name) != "video":
        raise InvalidParameter("path", "not a video file")
    ref = await asyncio.to_thread(kernel.index.get, resolved.library.id, resolved.rel_path)
    if ref is None:
        ref = await kernel.ingest.on_demand(resolved)
    if ref is None:
        raise NotFoundException(f"{resolved.rel_path} is not a video of the index")
    return ref


def _sign(plugin: Plugin, ref: FileRef, user: User) -> str:
    secret, lifetime = plugin.kernel.config.secret_key, plugin.settings.token_seconds
    return tokens.sign(secret, ref.id, user.id, user.token_version, lifetime)


def _version_of(kernel: Kernel) -> Any:
    def version(user_id: int) -> int | None:
        user = user_by_id(kernel.db, user_id)
        return None if user is None else user.token_version

    return version


def _state_fields(plugin: Plugin, ref: FileRef, job: jobs.Job | None, user: User) -> dict[str, Any]:
    """The keyword arguments of ``VideoState`` (``Generated`` adds ``queued_now``)."""
    if job is None:
        return {"path": ref.rel_path, "library": ref.library_id, "status": "none"}
    duration = job.duration
    fraction = min(1.0, job.processed / duration) if duration else None
    if job.status == jobs.DONE:
        fraction = 1.0
    token = _sign(plugin, ref, user)
    query = urlencode({"path": ref.rel_path, "library": ref.library_id, "token": token})
    return {
        "path": ref.rel_path,
        "library": ref.library_id,
        "status": job.status,
        "mode": job.mode,
        "paused": plugin.service.paused(ref.id),
        "progress": Progress(
            processed_seconds=round(job.processed, 3),
            duration_seconds=round(duration, 3) if duration is not None else None,
            fraction=round(fraction, 4) if fraction is not None else None,
        ),
        "error": job.error,
        "attempts": job.attempts,
        "playlist_url": f"/video/stream?{query}" if job.status != jobs.FAILED else None,
    }


@post(
    "/video/generate",
    summary="Queue the HLS rendition of a video (idempotent)",
    status_code=202,
    responses={200: ResponseSpec(Generated, description="The job existed already: its state")},
)
async def generate(
    plugin: PluginDep, user: CurrentUser, data: JSONBody[GenerateBody]
) -> Response[Generated]:
    kernel, svc = plugin.kernel, plugin.service
    ref = await _video(kernel, data.library, data.path)
    result = await svc.request(ref)
    job, created = result.job, result.created
    if data.retry and job.status == jobs.FAILED and await svc.renew(job, ref):
        job = await asyncio.to_thread(jobs.get, kernel.db, ref.id) or job
        created = True
    body = Generated(**_state_fields(plugin, ref, job, user), queued_now=created)
    return Response(body, status_code=202 if created else 200)


@get("/video/status", summary="State and progress of a video's HLS rendition")
async def status(
    plugin: PluginDep,
    user: CurrentUser,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
) -> VideoState:
    ref = await _video(plugin.kernel, library, file_path)
    job = await asyncio.to_thread(jobs.get, plugin.kernel.db, ref.id)
    return VideoState(**_state_fields(plugin, ref, job, user))


async def _authorized_video(
    request: Request, kernel: Kernel, library: str | None, path: str, token: str | None
) -> tuple[FileRef, User]:
    """The video and its caller, proven by a bearer token (the file is indexed on demand
    for a logged-in user) or by a playlist token, which only reads the index: a stranger
    with a made-up token never makes the server index or process anything."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, bearer = header.partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthorizedException("invalid bearer token")
        secret = kernel.config.secret_key
        user = await asyncio.to_thread(user_for_token, kernel.db, secret, bearer.strip())
        return await _video(kernel, library, path), user
    if not token:
        raise NotAuthorizedException("a bearer token or a signed playlist token is required")
    try:
        resolved = kernel.libraries.resolve(library, path)
        ref = await asyncio.to_thread(kernel.index.get, resolved.library.id, resolved.rel_path)
    except (PathRefused, OSError):
        ref = None
    if ref is None:
        raise NotAuthorizedException("invalid or expired token")
    secret = kernel.config.secret_key
    user_id = await asyncio.to_thread(tokens.verify, secret, ref.id, token, _version_of(kernel))
    user = await asyncio.to_thread(user_by_id, kernel.db, user_id) if user_id else None
    if user is None:
        raise NotAuthorizedException("invalid or expired token")
    return ref, user


@get(
    "/video/stream",
    summary="The HLS playlist of a video (waits briefly for its first segment)",
    opt={"public": True},
)
async def stream(
    request: Request,
    plugin: PluginDep,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
    token: FromQuery[str | None] = None,
) -> Response[Any]:
    kernel, svc = plugin.kernel, plugin.service
    ref, user = await _authorized_video(request, kernel, library, file_path, token)
    job = (await svc.request(ref)).job
    deadline = time.monotonic() + svc.settings.stream_wait_seconds
    signed = _sign(plugin, ref, user)
    while True:
        if job.status == jobs.FAILED:
            return Response(
                {"status_code": 422, "detail": f"this video cannot be streamed: {job.error}"},
                status_code=422,
            )
        if job.out_key and job.status in (jobs.RUNNING, jobs.DONE):
            directory = layout.run_dir(svc.root, ref.id, job.out_key)
            text = await asyncio.to_thread(
                layout.render,
                directory,
                f"segment/{ref.id}/{job.out_key}/",
                f"token={signed}",
                svc.settings.segment_seconds * 2,
            )
            if text is not None:
                return Response(text, media_type=M3U8, headers={"Cache-Control": "no-cache"})
            if job.status == jobs.DONE:
                await svc.renew(job, ref)  # finished, but its files are gone
        if time.monotonic() >= deadline:
            return Response(
                {"status_code": 503, "detail": f"the rendition is {job.status}; retry shortly"},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        await asyncio.sleep(_POLL)
        found = await asyncio.to_thread(jobs.get, kernel.db, ref.id)
        job = found if found is not None else (await svc.request(ref)).job


@get(
    "/video/segment/{file_id:int}/{key:str}/{name:str}",
    summary="One HLS segment (public: checks the signed token of its playlist)",
    opt={"public": True},
    include_in_schema=True,
)
async def segment(
    request: Request,
    plugin: PluginDep,
    file_id: FromPath[int],
    key: FromPath[str],
    name: FromPath[str],
    token: FromQuery[str | None] = None,
) -> Any:
    kernel = plugin.kernel
    secret = kernel.config.secret_key
    if not await asyncio.to_thread(tokens.verify, secret, file_id, token, _version_of(kernel)):
        raise NotAuthorizedException("invalid or expired token")
    path = layout.segment_path(plugin.root, file_id, key, name)
    if path is None:
        raise NotFoundException("no such segment")
    try:
        return await send_file(
            request, path, layout.media_type(name), cache_seconds=SEGMENT_CACHE_SECONDS
        )
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFoundException("no such segment") from None


ROUTES = [generate, status, stream, segment]
