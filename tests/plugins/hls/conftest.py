"""Clips for the HLS tests, made once per session with the ffmpeg imageio-ffmpeg ships,
and a ``player`` that does what a phone does: fetch the playlist, then every segment by
the URL in it (no Authorization header), and decode them.

Clips are tiny (160x120, 10 fps) so the whole suite stays fast; what matters is the
container and codecs, which decide between remux and transcode.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from kernel.media.ffmpeg import ffmpeg_path

SIZE = "160x120"


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=120,
    )


def picture(seconds: float, size: str = SIZE) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10:duration={seconds}"]


def tone(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]


H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p", "-g", "10"]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``h264_aac.mp4`` (6 s, keyframe every second), ``h264_aac.mts``, ``hevc.mp4``,
    ``vp9_opus.webm``, ``mjpeg.avi`` (PCM audio), ``rotated.mov`` (stored landscape,
    shown portrait, like a phone), ``rotated444.mov`` (the same in 4:4:4, which phones
    cannot decode), ``one_second.mp4``, ``long.avi`` (slow to transcode)
    and ``corrupt.mp4``."""
    d = tmp_path_factory.mktemp("hls-clips")
    ffmpeg(*picture(6), *tone(6), *H264, "-c:a", "aac", "-shortest", str(d / "h264_aac.mp4"))
    ffmpeg("-i", str(d / "h264_aac.mp4"), "-c", "copy", "-f", "mpegts", str(d / "h264_aac.mts"))
    ffmpeg(*picture(3), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=error", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
           str(d / "hevc.mp4"))  # fmt: skip
    ffmpeg(*picture(3), *tone(3), "-c:v", "libvpx-vp9", "-deadline", "realtime",
           "-cpu-used", "8", "-c:a", "libopus", "-shortest", str(d / "vp9_opus.webm"))  # fmt: skip
    ffmpeg(*picture(3), *tone(3), "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le",
           "-shortest", str(d / "mjpeg.avi"))  # fmt: skip
    ffmpeg(*picture(3, "160x120"), *tone(3), *H264, "-c:a", "aac", "-shortest",
           str(d / "stored.mp4"))  # fmt: skip
    ffmpeg("-display_rotation", "-90", "-i", str(d / "stored.mp4"), "-c", "copy",
           str(d / "rotated.mov"))  # fmt: skip
    ffmpeg(*picture(3), *H264, "-pix_fmt", "yuv444p", str(d / "stored444.mp4"))
    ffmpeg("-display_rotation", "-90", "-i", str(d / "stored444.mp4"), "-c", "copy",
           str(d / "rotated444.mov"))  # fmt: skip
    ffmpeg(*picture(1), *tone(1), *H264, "-c:a", "aac", "-shortest", str(d / "one_second.mp4"))
    ffmpeg(*picture(60, "320x240"), "-c:v", "mjpeg", "-q:v", "20", str(d / "long.avi"))
    whole = (d / "h264_aac.mp4").read_bytes()
    (d / "corrupt.mp4").write_bytes(whole[:40] + bytes(range(256)) * 16)
    return {p.name: p for p in d.iterdir()}


@dataclass
class Decoded:
    """What decoding a playlist's segments found."""

    segments: int
    seconds: float  # sum of each segment's decoded picture span
    extinf: float  # sum of the playlist's EXTINF durations
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    rotation: int
    frames: int


class Player:
    """Plays renditions the way AVPlayer / ExoPlayer would (fixture ``player``)."""

    @staticmethod
    def wait(h: Any, path: str, until: Callable[[dict[str, Any]], bool] | None = None) -> dict:
        """Poll ``/video/status`` until the job is done or failed (or ``until`` holds)."""
        until = until or (lambda s: s["status"] in ("done", "failed"))
        state: dict[str, Any] = {}
        for _ in range(1200):  # a safety net for a hang, not a time limit on the code
            state = h.get("/video/status", params={"path": path}).json()
            if until(state):
                return state
            time.sleep(0.05)
        raise AssertionError(f"{path} never got there: {state}")

    @staticmethod
    def uris(playlist: str) -> list[str]:
        """Every URI in a playlist: the EXT-X-MAP init segment first, then the segments."""
        found = []
        for line in playlist.splitlines():
            if line.startswith("#EXT-X-MAP:"):
                found.append(line.split('URI="', 1)[1].rstrip('"'))
            elif line and not line.startswith("#"):
                found.append(line)
        return found

    @staticmethod
    def fetch(h: Any, uri: str) -> Any:
        """GET a playlist URI as a player does: relative to /video/stream, no header."""
        return h.client.get("/video/" + uri)

    @classmethod
    def play(cls, h: Any, playlist: str) -> Decoded:
        """Download and decode every segment (each with the init segment before it)."""
        init_uri, *segment_uris = cls.uris(playlist)
        init = cls.fetch(h, init_uri)
        assert init.status_code == 200, init.text
        extinf = sum(
            float(line.split(":", 1)[1].rstrip(","))
            for line in playlist.splitlines()
            if line.startswith("#EXTINF:")
        )
        total = 0.0
        frames = 0
        facts: dict[str, Any] = {}
        for uri in segment_uris:
            response = cls.fetch(h, uri)
            assert response.status_code == 200, (uri, response.text)
            with av.open(io.BytesIO(init.content + response.content)) as c:
                video = c.streams.video[0]
                audio = c.streams.audio[0] if c.streams.audio else None
                times, rotation = [], 0
                for frame in c.decode(video):
                    times.append(frame.time)
                    rotation = int(-(frame.rotation or 0)) % 360
                assert times, f"{uri} holds no decodable picture"
                rate = float(video.average_rate or 10)
                total += max(times) - min(times) + 1 / rate
                frames += len(times)
                facts = {
                    "video_codec": video.codec_context.name,
                    "audio_codec": audio.codec_context.name if audio else None,
                    "width": video.codec_context.width,
                    "height": video.codec_context.height,
                    "rotation": rotation,
                }
        return Decoded(len(segment_uris), total, extinf, frames=frames, **facts)


@pytest.fixture(scope="session")
def player() -> type[Player]:
    return Player
