"""What a client may ask for (sizes and formats) and where each rendition lives on disk.

Storage mirrors every library under its id, so an operator can find, back up or delete
the renditions of one folder, and two libraries with the same relative path never
collide::

    THUMBNAILS/<library_id>/<rel_path>.thumb.jpg      size=thumb   (format=jpeg)
    THUMBNAILS/<library_id>/<rel_path>.thumb.webp     size=thumb   format=webp
    THUMBNAILS/<library_id>/<rel_path>.preview.jpg    size=preview (and .preview.webp)
    GIFS_DIRECTORY/<library_id>/<rel_path>.gif        size=gif     (videos only)

Files are written to a hidden temporary name beside their final one and renamed into
place, so a reader sees the old file or the new one, never half of one; temporary
files a crash leaves behind carry ``TMP_PREFIX`` and are swept at start-up.

The two folders are the plugin's own: it reads ``THUMBNAILS`` and ``GIFS_DIRECTORY``
(the Rust server's names) from the environment and ``.env`` the kernel merged, and
declares them through ``storage_folders`` so the kernel creates them and never scans
them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.types import InvalidParameter

if TYPE_CHECKING:
    from kernel.config import Config

    from .settings import ThumbnailSettings

SIZES = ("thumb", "preview", "gif")
#: format= values a client may send, and the file extension each is stored with.
FORMATS = {"jpeg": "jpg", "jpg": "jpg", "webp": "webp"}
MEDIA_TYPES = {"jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
#: every stored extension of a still size, for deleting all renditions of a file.
STILL_EXTENSIONS = ("jpg", "webp")
TMP_PREFIX = ".imageapi-tmp-"
STALE_TMP_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendition: a size name, how it is encoded, and the box it fits in."""

    size: str  # "thumb" | "preview" | "gif"
    ext: str  # "jpg" | "webp" | "gif"
    max_side: int

    @property
    def token(self) -> str:
        """How the state table records that this rendition was made, and at what size:
        changing ``thumb_size`` makes every recorded ``thumb.jpg@200`` stale at once."""
        return f"{self.size}.{self.ext}@{self.max_side}"

    @property
    def fmt(self) -> str:
        return "jpeg" if self.ext == "jpg" else self.ext

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.ext]

    @property
    def is_gif(self) -> bool:
        return self.size == "gif"


def variant(settings: ThumbnailSettings, size: str, fmt: str = "jpeg") -> Variant | None:
    """The rendition for ``size=`` and ``format=``, None for a size this plugin does not own.

    ``size=gif`` ignores ``format`` (an animated preview is always a GIF). An unknown
    format for a size we own is the client's mistake, answered with 400.
    """
    size = size.strip().lower()
    fmt = (fmt or "jpeg").strip().lower()
    if size == "gif":
        return Variant("gif", "gif", settings.thumb_size)
    if size not in ("thumb", "preview"):
        return None
    ext = FORMATS.get(fmt)
    if ext is None:
        raise InvalidParameter("format", f"{fmt!r} is not one of jpeg, webp")
    side = settings.thumb_size if size == "thumb" else settings.preview_size
    return Variant(size, ext, side)


def pregenerated(settings: ThumbnailSettings, media_type: str) -> tuple[Variant, ...]:
    """The renditions made on ingest for a file of this media type (JPEG only)."""
    found = [variant(settings, size) for size in dict.fromkeys(settings.pregenerate_sizes)]
    if settings.gif and media_type == "video":
        found.append(variant(settings, "gif"))
    return tuple(v for v in found if v is not None)


@dataclass(frozen=True, slots=True)
class Storage:
    """The plugin's two storage roots, absolute."""

    thumbnails: Path  # THUMBNAILS: stills (thumb, preview)
    gifs: Path  # GIFS_DIRECTORY: animated previews

    @classmethod
    def from_config(cls, config: Config) -> Storage:
        """``THUMBNAILS`` and ``GIFS_DIRECTORY``, else ``thumbnails`` and ``gifs`` in the
        data directory (an empty value counts as unset, as for the kernel's variables)."""

        def folder(name: str, default: str) -> Path:
            value = config.env.get(name) or config.data_dir / default
            return Path(value).expanduser().resolve()

        return cls(folder("THUMBNAILS", "thumbnails"), folder("GIFS_DIRECTORY", "gifs"))

    @property
    def roots(self) -> list[Path]:
        return [self.thumbnails, self.gifs]


def path_for(storage: Storage, library_id: int, rel_path: str, v: Variant) -> Path:
    """Where a rendition of ``rel_path`` is stored (see the module docstring)."""
    if v.is_gif:
        return storage.gifs.joinpath(str(library_id), *f"{rel_path}.gif".split("/"))
    name = f"{rel_path}.{v.size}.{v.ext}"
    return storage.thumbnails.joinpath(str(library_id), *name.split("/"))


def all_paths(storage: Storage, library_id: int, rel_path: str) -> list[Path]:
    """Every rendition a file can have, whatever the current settings."""
    paths = [
        path_for(storage, library_id, rel_path, Variant(size, ext, 1))
        for size in ("thumb", "preview")
        for ext in STILL_EXTENSIONS
    ]
    paths.append(path_for(storage, library_id, rel_path, Variant("gif", "gif", 1)))
    return paths


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file.

    No fsync (it would cost more than the encoding of a thumbnail): a killed process
    leaves complete files or hidden temporaries, both harmless. Only a power cut could
    leave an empty rendition behind; ``imageapi thumbnails rebuild`` repairs that.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
    try:
        with open(tmp, "xb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove(paths: list[Path], stop_at: list[Path]) -> int:
    """Delete renditions and then the folders they leave empty (up to a storage root)."""
    removed = 0
    roots = {p.resolve() for p in stop_at}
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        _prune(path.parent, roots)
    return removed


def _prune(parent: Path, roots: set[Path]) -> None:
    """Delete ``parent`` and its ancestors while they are empty, up to a storage root."""
    while parent.resolve() not in roots and parent != parent.parent:
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            break
        parent = parent.parent


def move(storage: Storage, old: tuple[int, str], new: tuple[int, str]) -> int:
    """Rename every rendition of a moved file (``(library_id, rel_path)`` before and
    after) to where the new path keeps it; returns how many. A rendition left at the new
    place by a file that stood there before is replaced: it showed other content."""
    moved = 0
    roots = {p.resolve() for p in storage.roots}
    olds, news = all_paths(storage, *old), all_paths(storage, *new)
    for source, target in zip(olds, news, strict=True):
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            continue
        moved += 1
        _prune(source.parent, roots)
    return moved


def _walk_files(root: Path) -> Iterator[os.DirEntry[str]]:
    stack = [str(root)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    yield entry


def sweep_temporaries(roots: list[Path], older_than: float = STALE_TMP_SECONDS) -> int:
    """Delete temporary files a killed process left behind; returns how many.

    Only files older than ``older_than`` seconds go, so a write in progress in another
    process (``imageapi thumbnails rebuild`` beside the server) is left alone.
    """
    cutoff = time.time() - older_than
    removed = 0
    for root in roots:
        for entry in _walk_files(root):
            if not entry.name.startswith(TMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed += 1
    return removed
