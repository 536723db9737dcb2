"""Where renditions live under ``VIDEO_PATH`` and how their playlists reach clients.

::

    VIDEO_PATH/<file_id>/<out_key>/index.m3u8      ffmpeg's EVENT playlist
    VIDEO_PATH/<file_id>/<out_key>/init.mp4        fMP4 init segment (codecs, rotation)
    VIDEO_PATH/<file_id>/<out_key>/seg_00000.m4s   ~4 s media segments

Every run writes into a new ``out_key`` folder, so a run that is replaced (source
changed, crash) can be deleted whole and never mixes with its successor. ffmpeg writes
segments under a ``.tmp`` name and renames them, and renames the playlist into place
after each segment, so a playlist only ever names whole segments.

Clients never see ffmpeg's playlist as written: ``render`` rewrites each URI into the
authenticated segment route with a signed token, drops anything after a segment that is
not on disk, and adds ``EXT-X-START`` so players begin at the start of a growing EVENT
playlist instead of at its "live" edge.

``VIDEO_PATH`` is the plugin's own folder: it reads the variable (the Rust server's name)
from the environment and ``.env`` the kernel merged, and declares the folder through
``storage_folders`` so the kernel creates it and never scans it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernel.config import Config

PLAYLIST = "index.m3u8"
INIT = "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"
KEY = re.compile(r"[0-9a-f]{16}")
NAME = re.compile(r"init\.mp4|seg_[0-9]{5,9}\.m4s")
MEDIA_TYPES = {"mp4": "video/mp4", "m4s": "video/iso.segment"}
ORPHAN_AGE_SECONDS = 600.0
_MAP_URI = re.compile(r'URI="([^"]*)"')
_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")


def video_root(config: Config) -> Path:
    """``VIDEO_PATH``, else ``hls`` in the data directory (an empty value counts as
    unset, as for the kernel's variables), absolute."""
    value = config.env.get("VIDEO_PATH") or config.data_dir / "hls"
    return Path(value).expanduser().resolve()


def file_dir(root: Path, file_id: int) -> Path:
    return root / str(file_id)


def run_dir(root: Path, file_id: int, key: str) -> Path:
    return root / str(file_id) / key


def segment_path(root: Path, file_id: int, key: str, name: str) -> Path | None:
    """The file behind a segment URL, or None for a name this plugin never writes."""
    if not KEY.fullmatch(key) or not NAME.fullmatch(name):
        return None
    return run_dir(root, file_id, key) / name


def media_type(name: str) -> str:
    return MEDIA_TYPES[name.rsplit(".", 1)[-1]]


def remove_run(root: Path, file_id: int, key: str | None) -> None:
    """Delete one run's output and the video's folder if that leaves it empty."""
    if key and KEY.fullmatch(key):
        shutil.rmtree(run_dir(root, file_id, key), ignore_errors=True)
    with contextlib.suppress(OSError):
        file_dir(root, file_id).rmdir()  # only when empty


def render(directory: Path, prefix: str, query: str, target_floor: float) -> str | None:
    """The playlist of a run as clients get it, or None while no segment is ready.

    ``prefix`` + name + ``?`` + ``query`` is each URI (relative to ``/video/stream``).
    ``#EXT-X-ENDLIST`` is kept only when every segment the playlist names is on disk.
    ``EXT-X-TARGETDURATION`` never drops below ``target_floor`` so it stays the same
    while ffmpeg grows the playlist (players may not see it change).
    """
    try:
        raw = (directory / PLAYLIST).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    head: list[str] = []
    body: list[str] = []
    pending: list[str] = []
    longest = 0.0
    segments = 0
    complete = ended = False
    for line in (text.strip() for text in raw.splitlines()):
        if not line or line == "#EXTM3U":
            continue
        if line == "#EXT-X-ENDLIST":
            ended = True
            continue
        if line.startswith("#EXT-X-MAP:"):
            found = _MAP_URI.search(line)
            if not found or not _on_disk(directory, found.group(1)):
                return None
            head.append(line.replace(found.group(0), f'URI="{prefix}{found.group(1)}?{query}"'))
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            continue  # recomputed below
        elif line.startswith(("#EXTINF", "#EXT-X-DISCONTINUITY", "#EXT-X-PROGRAM-DATE-TIME")):
            pending.append(line)
            if (match := _EXTINF.match(line)) is not None:
                longest = max(longest, float(match.group(1)))
        elif line.startswith("#"):
            (body if segments else head).append(line)
        else:
            if not _on_disk(directory, line):
                break
            body += [*pending, f"{prefix}{line}?{query}"]
            pending = []
            segments += 1
    else:
        complete = True
    if not segments:
        return None
    target = max(math.ceil(target_floor), math.ceil(longest))
    lines = ["#EXTM3U", *head[:1], f"#EXT-X-TARGETDURATION:{target}", *head[1:]]
    lines += ["#EXT-X-START:TIME-OFFSET=0,PRECISE=YES", *body]
    if ended and complete:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _on_disk(directory: Path, name: str) -> bool:
    return NAME.fullmatch(name) is not None and (directory / name).is_file()


def is_complete(directory: Path) -> tuple[bool, int]:
    """(ffmpeg wrote ENDLIST and every segment is there, how many segments)."""
    text = render(directory, "", "", 0)
    if text is None:
        return False, 0
    count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return text.rstrip().endswith("#EXT-X-ENDLIST"), count


def sweep(root: Path, keep: set[tuple[int, str]], older_than: float = ORPHAN_AGE_SECONDS) -> int:
    """Delete run folders no job row points at (a crash between claim and cleanup), and
    files left beside them; returns how many went. Recent folders are left alone: they
    may belong to a run another process has just claimed."""
    cutoff = time.time() - older_than
    removed = 0
    with contextlib.suppress(OSError), os.scandir(root) as videos:
        for video in videos:
            if not (video.name.isdigit() and video.is_dir(follow_symlinks=False)):
                continue
            file_id = int(video.name)
            with contextlib.suppress(OSError), os.scandir(video.path) as runs:
                for run in runs:
                    if (file_id, run.name) in keep:
                        continue
                    with contextlib.suppress(OSError):
                        if run.stat(follow_symlinks=False).st_mtime > cutoff:
                            continue
                        if run.is_dir(follow_symlinks=False):
                            shutil.rmtree(run.path, ignore_errors=True)
                        else:
                            os.unlink(run.path)
                        removed += 1
            with contextlib.suppress(OSError):
                os.rmdir(video.path)
    return removed
