"""What counts as a photo or a video: by extension (case-insensitive), confirmed by magic bytes.

The extension decides what the scanner indexes (cheap: no file is opened while walking);
the magic bytes, read when the file is hashed, confirm it, so a text file renamed
``.jpg`` is marked failed instead of being handed to every plugin.
"""

from __future__ import annotations

RAW_EXTENSIONS = frozenset({
    "nef", "nrw", "cr2", "cr3", "arw", "srf", "sr2", "dng", "orf", "rw2", "raf", "pef", "srw",
    "raw", "rwl", "3fr", "iiq", "x3f", "erf", "mrw", "kdc", "dcr",
})  # fmt: skip
PHOTO_EXTENSIONS = frozenset({
    "jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "hif",
    "avif",
}) | RAW_EXTENSIONS  # fmt: skip
VIDEO_EXTENSIONS = frozenset({
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "3gp", "3g2", "mts", "m2ts", "ts", "mpg", "mpeg",
    "wmv", "flv", "ogv",
})  # fmt: skip

#: Content types by extension; RAWs other than DNG are ``image/x-<ext>`` (see below).
CONTENT_TYPES = {
    **dict.fromkeys(("jpg", "jpeg", "jpe"), "image/jpeg"),
    **{ext: f"image/{ext}" for ext in ("png", "gif", "webp", "bmp", "heic", "heif", "avif")},
    **dict.fromkeys(("tif", "tiff"), "image/tiff"),
    "hif": "image/heif",
    "dng": "image/x-adobe-dng",
    **{ext: f"video/{ext}" for ext in ("mp4", "webm", "mpeg")},
    "m4v": "video/x-m4v",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "3gp": "video/3gpp",
    "3g2": "video/3gpp2",
    **dict.fromkeys(("mts", "ts", "m2ts"), "video/mp2t"),
    "mpg": "video/mpeg",
    "wmv": "video/x-ms-wmv",
    "flv": "video/x-flv",
    "ogv": "video/ogg",
}

MAGIC_BYTES_NEEDED = 256
#: ISO-BMFF brands of still pictures (HEIF, AVIF, Canon CR3); any other ``ftyp`` is video.
PHOTO_BRANDS = frozenset({
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis",
    b"crx ",
})  # fmt: skip


MEDIA_TYPE_BY_EXTENSION = {
    **{ext: "photo" for ext in PHOTO_EXTENSIONS},
    **{ext: "video" for ext in VIDEO_EXTENSIONS},
}


def extension_of(name: str) -> str:
    dot = name.rfind(".")
    return name[dot + 1 :].lower() if dot >= 0 else ""


def media_type_for(name: str) -> str | None:
    """ "photo", "video" or None (not media) from the file name alone (the scanner's hot
    path: one slice and one dict lookup per file)."""
    dot = name.rfind(".")
    return MEDIA_TYPE_BY_EXTENSION.get(name[dot + 1 :].lower()) if dot >= 0 else None


def content_type_for(name: str) -> str:
    ext = extension_of(name)
    if ext in RAW_EXTENSIONS and ext != "dng":
        return f"image/x-{ext}"
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def sniff(head: bytes) -> str | None:
    """ "photo", "video" or None from the first bytes of a file."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "photo"
    if head[:6] in (b"GIF87a", b"GIF89a") or head.startswith(b"BM"):
        return "photo"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "photo"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"IIRO", b"IIU\x00") or head[:8] == b"FUJIFILM":
        return "photo"  # TIFF and the TIFF-like RAWs (ORF, RW2), RAF
    if head[:4] in (b"FOVb", b"\x00MRM") or head[:6] == b"IIII\x04\x00":
        return "photo"  # Sigma X3F, Minolta MRW, Phase One IIQ
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video"  # Matroska / WebM
    if head[:3] == b"FLV" or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video"
    if head[:4] == b"OggS" or head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "video"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video"  # MPEG transport stream
    if head[4:5] == b"\x47" and len(head) > 196 and head[196] == 0x47:
        return "video"  # M2TS (timecoded TS packets)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in PHOTO_BRANDS:
            return "photo"
        return "video"
    return None


def confirm(name: str, head: bytes) -> str | None:
    """None when the bytes agree with the extension, else a reason to mark the file failed."""
    expected = media_type_for(name)
    found = sniff(head)
    if not head:
        return "empty file"
    if found is None:
        return f"content is not a recognised {expected or 'media'} format"
    if expected == "photo" and found == "video":
        return "named like a photo but contains a video"
    if expected == "video" and found == "photo":
        return "named like a video but contains an image"
    return None
