"""Phase 2: the magic bytes of every present file against its extension.

The scanner already refuses a file whose bytes are not media, or are a video named like
a photo; this phase also finds the quieter lies (a JPEG named ``.png``, a PNG named
``.jpg``) that some decoders and every browser's content type get wrong, and names the
right extension. ``--fix`` renames such a file beside itself (never over another file)
through the kernel's move path, so it keeps its row and everything attached to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from kernel import moves
from kernel.core import Kernel
from kernel.index import FILE_COLUMNS, Stat
from kernel.media.mediatypes import (
    MAGIC_BYTES_NEEDED,
    RAW_EXTENSIONS,
    extension_of,
    media_type_for,
)
from kernel.tables import files
from kernel.types import FileRef

# Detected format → (the extension suggested, every extension that is no lie for it).
_ISO_VIDEO = frozenset({"mp4", "m4v", "mov", "3gp", "3g2"})
_HEIF = frozenset({"heic", "heif", "hif", "avif"})
_TIFF = frozenset({"tif", "tiff"}) | RAW_EXTENSIONS - {"raf", "x3f", "mrw", "iiq", "cr3"}
FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    "jpeg": ("jpg", frozenset({"jpg", "jpeg", "jpe"})),
    "png": ("png", frozenset({"png"})),
    "gif": ("gif", frozenset({"gif"})),
    "bmp": ("bmp", frozenset({"bmp"})),
    "webp": ("webp", frozenset({"webp"})),
    "tiff": ("tif", _TIFF),
    "raf": ("raf", frozenset({"raf"})),
    "x3f": ("x3f", frozenset({"x3f"})),
    "mrw": ("mrw", frozenset({"mrw"})),
    "iiq": ("iiq", frozenset({"iiq"})),
    "avi": ("avi", frozenset({"avi"})),
    "matroska": ("mkv", frozenset({"mkv", "webm"})),
    "flv": ("flv", frozenset({"flv"})),
    "mpeg": ("mpg", frozenset({"mpg", "mpeg"})),
    "ogg": ("ogv", frozenset({"ogv"})),
    "asf": ("wmv", frozenset({"wmv"})),
    "ts": ("ts", frozenset({"ts", "mts", "m2ts"})),
    "heif": ("heic", _HEIF),
    "avif": ("avif", _HEIF),
    "cr3": ("cr3", frozenset({"cr3"})),
    "quicktime": ("mov", _ISO_VIDEO),
    "mp4": ("mp4", _ISO_VIDEO),
}


def detect(head: bytes) -> str | None:
    """The format a file's first bytes announce (a key of ``FORMATS``), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF":
        return {b"WEBP": "webp", b"AVI ": "avi"}.get(head[8:12])
    if head[:8] == b"FUJIFILM":
        return "raf"
    if head[:4] == b"FOVb":
        return "x3f"
    if head[:4] == b"\x00MRM":
        return "mrw"
    if head[:6] == b"IIII\x04\x00":
        return "iiq"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"IIRO", b"IIU\x00"):
        return "tiff"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"
    if (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47) or (
        head[4:5] == b"\x47" and len(head) > 196 and head[196] == 0x47
    ):
        return "ts"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "cr3"
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "heif"
        return "quicktime" if brand == b"qt  " else "mp4"
    return None


@dataclass
class Finding:
    ref: FileRef
    found: str | None  # the detected format, None: not media at all
    suggested: str | None  # the file name it should have (None: no fix)
    renamed: bool = False
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.ref.id,
            "library": self.ref.library_id,
            "path": self.ref.rel_path,
            "content": self.found or "not media",
            "suggested_path": self.suggested,
            "renamed": self.renamed,
            **({"skipped": self.skipped} if self.skipped else {}),
        }


def _present(kernel: Kernel) -> list[FileRef]:
    query = select(*FILE_COLUMNS).where(files.c.status == "present").order_by(files.c.id)
    with kernel.db.read() as conn:
        return kernel.index.refs(conn.execute(query).all())


def check_one(ref: FileRef) -> Finding | None:
    """A finding for a file whose bytes contradict its extension, else None."""
    try:
        with open(ref.abs_path, "rb") as handle:
            head = handle.read(MAGIC_BYTES_NEEDED)
    except OSError:
        return None  # gone or unreadable: the scanner's business, not a type question
    found = detect(head)
    ext = extension_of(ref.rel_path)
    if found is None:
        return Finding(ref, None, None)
    suggested_ext, accepted = FORMATS[found]
    if ext in accepted:
        return None
    original = ref.rel_path.rsplit(".", 1)[-1]
    new_ext = suggested_ext.upper() if original.isupper() else suggested_ext
    stem = ref.rel_path[: -len(original) - 1] if "." in ref.rel_path else ref.rel_path
    return Finding(ref, found, f"{stem}.{new_ext}")


def examine(kernel: Kernel, progress: Callable[[int, int], None] | None = None) -> list[Finding]:
    refs = _present(kernel)
    findings: list[Finding] = []
    with ThreadPoolExecutor(4) as pool:
        for done, finding in enumerate(pool.map(check_one, refs), 1):
            if finding is not None:
                findings.append(finding)
            if progress and (done % 200 == 0 or done == len(refs)):
                progress(done, len(refs))
    return findings


def _renames(kernel: Kernel, findings: list[Finding]) -> Iterator[tuple[FileRef, moves.Arrival]]:
    for finding in findings:
        if finding.suggested is None:
            continue
        ref = finding.ref
        library = kernel.libraries.by_id(ref.library_id)
        target = library.root / finding.suggested
        try:
            os.link(ref.abs_path, target)  # fails when the target exists: never overwrite
        except FileExistsError:
            finding.skipped = "a file with the suggested name exists"
            continue
        except OSError:  # no hard links here (FAT, some network shares): check, then rename
            if target.exists():
                finding.skipped = "a file with the suggested name exists"
                continue
            os.rename(ref.abs_path, target)
        else:
            os.unlink(ref.abs_path)
        finding.renamed = True
        st = target.stat()
        media_type = media_type_for(target.name) or ref.media_type
        yield (
            ref,
            moves.Arrival(library, Stat(finding.suggested, st.st_size, st.st_mtime_ns, media_type)),
        )


def fix(kernel: Kernel, findings: list[Finding]) -> list[moves.Move]:
    """Rename the fixable files on disk, then re-point their rows (ids kept). A file the
    scanner refused for its name (no hash) gets its error cleared, so it is hashed again."""
    pairs = list(_renames(kernel, findings))
    if not pairs:
        return []
    with kernel.db.write() as conn:
        moved = moves.apply(conn, pairs)
        conn.execute(
            update(files)
            .where(files.c.id.in_([old.id for old, _new in pairs]), files.c.error.is_not(None))
            .values(error=None, content_hash=None, hashed_at=None)
        )
    return moved
