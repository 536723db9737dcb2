"""One ffmpeg run: look at the source, decide remux or transcode, run ffmpeg, watch it.

Safety before anything runs: the source is probed with PyAV under the kernel's demuxer
allowlist (``kernel.media.ffmpeg.probe_video``), so a playlist or ffconcat script saved as
``.mp4``, or anything else that is not a camera/phone container, is refused without
ffmpeg ever following it to other files. ffmpeg then gets the probed demuxer forced with
``-f``, the same allowlist, ``-protocol_whitelist file`` and an absolute ``file:`` URL,
as an argument list (no shell), niced, and killed after a timeout.

Remux (stream copy) when a phone can play the source as it is: H.264 8-bit 4:2:0 or
HEVC (from MP4/MOV: ``hvc1``-tagged), AAC or no audio; the display matrix travels in the
fMP4 init segment, so a portrait phone clip stays portrait. Otherwise libx264 + AAC,
with keyframes forced every half segment so segments are cut on time; ffmpeg's
autorotation turns the picture upright as it transcodes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernel.media.ffmpeg import (
    INPUT_DEMUXERS,
    MediaProbeError,
    av_reason,
    ffmpeg_path,
    input_url,
    main_video_stream,
    open_options,
    probe_video,
)

from . import layout
from .settings import HlsSettings

#: Containers imageapi lets ffmpeg open for HLS (first name of PyAV's ``format.name``).
ALLOWED_CONTAINERS = frozenset({"mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"})
#: Containers whose H.264/HEVC timestamps survive a stream copy into fMP4 (AVI's do not).
COPY_CONTAINERS = frozenset({"mov", "matroska", "mpegts"})
COPY_PIXEL_FORMATS = {
    "h264": frozenset({"yuv420p", "yuvj420p"}),
    "hevc": frozenset({"yuv420p", "yuvj420p", "yuv420p10le"}),
}
_STDERR_LINES = 12


class Unplayable(Exception):
    """The source cannot become HLS (refused container, unreadable, no picture)."""


@dataclass(frozen=True, slots=True)
class Source:
    """What the probe found out about a video, enough to choose ffmpeg's arguments."""

    demuxer: str
    duration: float
    video_index: int
    video_codec: str
    pixel_format: str | None
    rotation: int
    audio_index: int | None
    audio_codec: str | None

    @property
    def copy_video(self) -> bool:
        if self.video_codec == "hevc" and self.demuxer != "mov":
            return False  # only MP4/MOV carry the hvc1 parameter sets phones insist on
        allowed = COPY_PIXEL_FORMATS.get(self.video_codec, frozenset())
        return self.demuxer in COPY_CONTAINERS and self.pixel_format in allowed

    @property
    def copy_audio(self) -> bool:
        return self.audio_codec == "aac"

    @property
    def mode(self) -> str:
        return "remux" if self.copy_video else "transcode"


def inspect(path: Path) -> Source:
    """Probe ``path`` under the allowlist; ``Unplayable`` says why it cannot be streamed."""
    try:
        info = probe_video(path)
    except MediaProbeError as exc:
        raise Unplayable(str(exc)) from None
    demuxer = info.format_name.split(",", 1)[0]
    if demuxer not in ALLOWED_CONTAINERS:
        raise Unplayable(f"container {info.format_name!r} is not allowed for streaming")
    import av

    try:
        with av.open(input_url(path), options=open_options(), metadata_errors="replace") as c:
            video = main_video_stream(c)
            if video is None:
                raise Unplayable("no video stream")
            audio = c.streams.audio[0] if c.streams.audio else None
            return Source(
                demuxer=demuxer,
                duration=info.duration,
                video_index=video.index,
                video_codec=info.video_codec,
                pixel_format=video.codec_context.pix_fmt,
                rotation=info.rotation,
                audio_index=audio.index if audio is not None else None,
                audio_codec=audio.codec_context.name if audio is not None else None,
            )
    except Unplayable:
        raise
    except Exception as exc:  # av.FFmpegError and friends from a hostile file
        raise Unplayable(f"unreadable video: {av_reason(exc)}") from exc


def ffmpeg_args(source: Source, path: Path, settings: HlsSettings) -> list[str]:
    """ffmpeg's arguments (after the binary) for one rendition, written to the cwd."""
    args = [
        "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-y",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file",
        "-format_whitelist", INPUT_DEMUXERS,
        "-f", source.demuxer,
        "-i", input_url(path),
        "-map", f"0:{source.video_index}",
    ]  # fmt: skip
    if source.audio_index is not None:
        args += ["-map", f"0:{source.audio_index}"]
    args += ["-map_chapters", "-1", "-sn", "-dn"]
    if source.copy_video:
        args += ["-c:v", "copy"]
        if source.video_codec == "hevc":
            args += ["-tag:v", "hvc1"]
    else:
        side = settings.max_resolution
        scale = f"min(1,{side}/min(iw,ih))" if side else "1"
        keyframe_every = settings.segment_seconds / 2
        args += [
            "-vf", f"scale='trunc(iw*{scale}/2)*2':'trunc(ih*{scale}/2)*2'",
            "-c:v", "libx264", "-preset", settings.preset, "-crf", str(settings.crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high",
            "-force_key_frames", f"expr:gte(t,n_forced*{keyframe_every:g})",
        ]  # fmt: skip
    if source.audio_index is not None:
        if source.copy_audio:
            args += ["-c:a", "copy"]
            if source.demuxer in ("mpegts", "mpeg", "flv"):
                args += ["-bsf:a", "aac_adtstoasc"]  # ADTS frames → MP4's AudioSpecificConfig
        else:
            args += ["-c:a", "aac", "-b:a", f"{settings.audio_bitrate_kbps}k", "-ac", "2"]
    args += [
        "-max_muxing_queue_size", "4096",
        "-f", "hls",
        "-hls_time", f"{settings.segment_seconds:g}",
        "-hls_list_size", "0",
        "-hls_playlist_type", "event",
        "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", layout.INIT,
        "-hls_segment_filename", layout.SEGMENT_PATTERN,
        "-hls_flags", "independent_segments+temp_file",
        layout.PLAYLIST,
    ]  # fmt: skip
    return args


def timeout_for(source: Source, settings: HlsSettings) -> float:
    return max(settings.timeout_min_seconds, source.duration * settings.timeout_ratio)


class Control:
    """The handle the scheduler holds on a run: pause (SIGSTOP), resume, cancel.

    Calls may come before ffmpeg has started; ``attach`` applies them to the process
    as soon as it exists. Time spent paused does not count against the timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.cancelled: str | None = None
        self._paused_since = 0.0
        self._paused_total = 0.0

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.send_signal(sig)

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self.proc = proc
            if self.cancelled:
                self._signal(signal.SIGKILL)
            elif self.paused:
                self._signal(signal.SIGSTOP)

    def pause(self) -> None:
        with self._lock:
            if not self.paused and not self.cancelled:
                self.paused = True
                self._paused_since = time.monotonic()
                self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        with self._lock:
            if self.paused:
                self.paused = False
                self._paused_total += time.monotonic() - self._paused_since
                self._signal(signal.SIGCONT)

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self.cancelled is None:
                self.cancelled = reason
            self._signal(signal.SIGKILL)  # works on a stopped process too

    def paused_seconds(self) -> float:
        with self._lock:
            current = time.monotonic() - self._paused_since if self.paused else 0.0
            return self._paused_total + current


@dataclass(frozen=True, slots=True)
class Outcome:
    returncode: int
    error_tail: str
    timed_out: bool


def run(
    args: list[str],
    cwd: Path,
    *,
    timeout: float,
    nice: int,
    control: Control,
    on_start: Callable[[int], None],
    on_progress: Callable[[float], None],
    progress_every: float = 1.0,
) -> Outcome:
    """Run ffmpeg in ``cwd`` until it exits, reporting seconds of output as it goes."""
    processed = [0.0]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [ffmpeg_path(), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
        )
        if nice and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):  # exited already, or not permitted
                os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
        control.attach(proc)
        reader = threading.Thread(target=_read_progress, args=(proc, processed), daemon=True)
        reader.start()
        timed_out = False
        try:
            on_start(proc.pid)
            started = last_report = time.monotonic()
            reported = 0.0
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - started - control.paused_seconds() > timeout:
                    timed_out = True
                    control.cancel("timeout")
                elif processed[0] != reported and time.monotonic() - last_report >= progress_every:
                    reported, last_report = processed[0], time.monotonic()
                    on_progress(reported)
        finally:
            if proc.poll() is None:
                control.cancel("error")
                proc.wait()
            reader.join(timeout=5)
        stderr.seek(0)
        lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
    return Outcome(proc.returncode, "\n".join(lines[-_STDERR_LINES:]), timed_out)


def _read_progress(proc: subprocess.Popen[bytes], processed: list[float]) -> None:
    """Follow ``-progress pipe:1`` (key=value lines) for the output time in seconds."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            processed[0] = max(processed[0], int(value) / 1_000_000)
