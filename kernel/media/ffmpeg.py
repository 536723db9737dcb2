"""One way to find, run and ask ffmpeg, shared by every plugin that handles video.

The thumbnail and HLS plugins both need ffmpeg; keeping the lookup, the argument
hygiene and the error handling here means a fix (a timeout, a hostile file name) is
made once. Probing uses PyAV in-process because imageapi cannot count on an ffprobe
binary: imageio-ffmpeg ships ffmpeg alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "INPUT_DEMUXERS",
    "FFmpegError",
    "FFmpegUnavailable",
    "MediaProbeError",
    "VideoInfo",
    "av_reason",
    "ffmpeg_path",
    "input_args",
    "input_url",
    "main_video_stream",
    "normalise_rotation",
    "open_options",
    "probe_video",
    "run_ffmpeg",
]

#: Demuxers imageapi lets ffmpeg and PyAV use on library files. Without a list, ffmpeg
#: picks a demuxer by content, and a playlist or concat script saved as ``.mp4`` could
#: make it read other files or URLs; cameras and phones only write these containers.
INPUT_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,mxf,dv,h264,hevc"
)

_STDERR_LINES = 10
_NICE_INCREMENT = 10
_PROBE_PACKETS = 256  # a stream that yields no frame within this many packets is broken


class FFmpegUnavailable(RuntimeError):
    """Neither a system ffmpeg nor the imageio-ffmpeg binary can be found."""


class FFmpegError(RuntimeError):
    """ffmpeg failed or timed out; the message carries the tail of its stderr."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: bytes = b""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class MediaProbeError(Exception):
    """A file could not be read as a video (broken, truncated, or no video stream)."""


@dataclasses.dataclass(frozen=True, slots=True)
class VideoInfo:
    """What imageapi needs to know about a video before rendering or streaming it.

    ``width``/``height`` are the coded size as stored; ``rotation`` is how many degrees
    clockwise the picture must be turned for display (the legacy ``rotate`` tag's sense,
    0/90/180/270), so a portrait phone clip reads 1920x1080 with rotation 90.
    """

    duration: float
    width: int
    height: int
    rotation: int
    video_codec: str
    audio_codec: str | None
    format_name: str
    created_at: str | None = None
    location: str | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as the clip is shown, after rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@functools.cache
def ffmpeg_path() -> str:
    """Return the ffmpeg executable: the system one if on PATH, else imageio-ffmpeg's.

    A system ffmpeg wins because distributions build it with hardware decoders and keep
    it patched; the bundled one makes imageapi work on a bare machine.
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError, or RuntimeError when no binary ships
        raise FFmpegUnavailable(
            "ffmpeg not found: install ffmpeg on PATH or the imageio-ffmpeg package"
        ) from exc
    if not exe or not os.path.isfile(exe):
        raise FFmpegUnavailable("ffmpeg not found: imageio-ffmpeg has no binary")
    return exe


def input_url(path: str | os.PathLike[str]) -> str:
    """Turn a path into an explicit ``file:`` URL for ffmpeg and PyAV.

    ffmpeg treats ``name:rest`` as a protocol, so a library file called
    ``concat:a.mp4|b.mp4`` or ``http:x.mp4`` would otherwise be misread.
    """
    return "file:" + os.path.abspath(os.fspath(path))


def input_args(path: str | os.PathLike[str]) -> list[str]:
    """ffmpeg input options for a library file: file protocol only, known demuxers only."""
    return [
        "-protocol_whitelist", "file",
        "-format_whitelist", INPUT_DEMUXERS,
        "-i", input_url(path),
    ]  # fmt: skip


def open_options() -> dict[str, str]:
    """PyAV ``av.open`` options matching :func:`input_args`."""
    return {"protocol_whitelist": "file", "format_whitelist": INPUT_DEMUXERS}


def _stderr_tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(lines[-_STDERR_LINES:])


#: An OpenTelemetry tracer a tracing plugin sets while it runs: each ``run_ffmpeg`` is then
#: a span ``ffmpeg``. None (the default): no span, no import of OpenTelemetry.
tracer: Any = None


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout: float,
    nice: bool = False,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with ``args``; see ``_run_ffmpeg`` (a span of its own when traced)."""
    if tracer is None:
        return _run_ffmpeg(args, timeout=timeout, nice=nice, cwd=cwd)
    with tracer.start_as_current_span("ffmpeg", attributes={"ffmpeg.args": " ".join(args)[:400]}):
        return _run_ffmpeg(args, timeout=timeout, nice=nice, cwd=cwd)


def _run_ffmpeg(
    args: Sequence[str],
    *,
    timeout: float,
    nice: bool = False,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with ``args`` (a list, never a shell) and return its output.

    Raises :class:`FFmpegError` on a non-zero exit or when ``timeout`` seconds pass; a
    timed-out ffmpeg is killed so a hostile file cannot pin a core forever. ``nice``
    lowers the child's priority (background transcodes must not starve web requests).
    It is applied with ``setpriority`` on the child's pid from the parent rather than in
    a ``preexec_fn``, which is unsafe in the threaded server.
    """
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
    except OSError as exc:  # binary vanished or not executable, cwd missing
        raise FFmpegError(f"could not start ffmpeg: {exc}") from exc
    if nice and hasattr(os, "setpriority"):
        # OSError: the child already exited, or the OS refused; run it as it is.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, _NICE_INCREMENT)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        tail = _stderr_tail(stderr)
        raise FFmpegError(
            f"ffmpeg timed out after {timeout:g} s" + (f": {tail}" if tail else ""),
            stderr=stderr,
        ) from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise FFmpegError(
            f"ffmpeg exited with status {proc.returncode}: {_stderr_tail(stderr)}",
            returncode=proc.returncode,
            stderr=stderr,
        )
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def av_reason(exc: BaseException) -> str:
    """PyAV's error without the errno and file URL it repeats (a message for users)."""
    reason = getattr(exc, "strerror", None)
    return reason if isinstance(reason, str) and reason else str(exc) or type(exc).__name__


def normalise_rotation(degrees: float) -> int:
    """Snap an angle to 0/90/180/270 (display matrices carry float noise)."""
    return (round(degrees / 90.0) * 90) % 360


def _first_tag(tags: Sequence[Mapping[str, str]], *names: str) -> str | None:
    for name in names:
        for mapping in tags:
            value = mapping.get(name)
            if value:
                return value
    return None


def main_video_stream(container: object) -> object | None:
    """The clip's picture stream, skipping cover art (an ``attached_pic`` still image
    that audio files and some MKVs carry as a one-frame "video" stream)."""
    import av

    cover = av.stream.Disposition.attached_pic
    for stream in container.streams.video:  # type: ignore[attr-defined]
        if not stream.disposition & cover:
            return stream
    return None


def stream_rotation(container: object, stream: object) -> int:
    """Clockwise display rotation of a video stream.

    PyAV 18 does not expose a stream's display matrix, but the decoder copies it onto
    every frame, so the first frame's ``rotation`` is read (it is counter-clockwise,
    hence the sign flip). Older ffmpeg builds exported a ``rotate`` tag instead, and
    older PyAV a ``side_data`` mapping; both are honoured first because they cost no
    decode.
    """
    tag = stream.metadata.get("rotate")  # type: ignore[attr-defined]
    if tag:
        try:
            return normalise_rotation(float(tag))
        except ValueError:
            pass
    side = getattr(stream, "side_data", None)
    if isinstance(side, Mapping) and "DISPLAYMATRIX" in side:
        try:
            return normalise_rotation(-float(side["DISPLAYMATRIX"]))
        except (TypeError, ValueError):
            pass
    import av

    for count, packet in enumerate(container.demux(stream)):  # type: ignore[attr-defined]
        if count >= _PROBE_PACKETS:
            break
        try:
            frames = packet.decode()
        except av.FFmpegError:  # a damaged packet: the next may decode
            continue
        for frame in frames:
            return normalise_rotation(-float(frame.rotation or 0))
    return 0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read duration, size, rotation, codecs and capture tags of a video with PyAV.

    Any failure (unreadable, not a video, no video stream) becomes
    :class:`MediaProbeError`, so callers handle one exception type. A clip whose first
    frames do not decode still probes, with rotation 0: the container facts stand.
    """
    import av

    if not Path(path).is_file():
        raise MediaProbeError(f"not a file: {path}")
    try:
        with av.open(input_url(path), options=open_options(), metadata_errors="replace") as c:
            vs = main_video_stream(c)
            if vs is None:
                raise MediaProbeError("no video stream")
            audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
            duration = 0.0
            if c.duration:
                duration = c.duration / 1_000_000
            elif vs.duration and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            tags = [dict(c.metadata), dict(vs.metadata)]
            info = VideoInfo(
                duration=max(duration, 0.0),
                width=int(vs.codec_context.width or 0),
                height=int(vs.codec_context.height or 0),
                rotation=0,
                video_codec=vs.codec_context.name,
                audio_codec=audio,
                format_name=c.format.name,
                created_at=_first_tag(tags, "creation_time", "com.apple.quicktime.creationdate"),
                location=_first_tag(
                    tags, "location", "com.apple.quicktime.location.ISO6709", "location-eng"
                ),
            )
            if info.width <= 0 or info.height <= 0:
                raise MediaProbeError("video stream has no picture size")
            rotation = stream_rotation(c, vs)
    except MediaProbeError:
        raise
    except Exception as exc:  # av.FFmpegError, UnicodeError, ... from a hostile file
        raise MediaProbeError(f"unreadable video: {av_reason(exc)}") from exc
    return dataclasses.replace(info, rotation=rotation)
