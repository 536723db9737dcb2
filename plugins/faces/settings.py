"""``[plugins.faces]`` in plugins.toml, and the operator's environment variables on top.

The reference's variables (``APOLLO_FACE_API_BASE_URL``, ``APOLLO_API_BASE_URL``,
``FACE_*``) are the interface operators already use, so they win over plugins.toml: the
plugin reads them from the environment and ``.env`` the kernel merged
(``kernel.config.env``), as the thumbnails and hls plugins read ``THUMBNAILS`` and
``VIDEO_PATH``. A malformed number stops start-up naming the variable; a missing URL
only leaves the plugin inert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from kernel.config import ConfigError

Count = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class FaceSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Settings of the faces plugin (every key is optional)."""

    #: Apollo's base URL; ``APOLLO_FACE_API_BASE_URL``, else ``APOLLO_API_BASE_URL``, win.
    api_base_url: str | None = None
    #: ``FACE_DETECT_TIMEOUT_SEC``: one Apollo call, connect to last byte.
    detect_timeout_sec: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    #: ``FACE_DETECT_CONCURRENCY``: Apollo calls in flight at once.
    detect_concurrency: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    #: the long side of the JPEG sent to ``detect``, in pixels.
    detect_max_side: Annotated[int, msgspec.Meta(ge=64, le=16384)] = 1920
    #: ``FACE_BACKLOG_MAX_PER_TICK``: photos detected per scanner tick at most.
    backlog_max_per_tick: Count = 64
    #: ``FACE_HASH_BACKFILL_MAX_PER_TICK``: accepted for the reference's env files; the
    #: kernel hashes every file itself, so faces has no hash backfill (see README).
    hash_backfill_max_per_tick: Count = 2000
    #: ``FACE_AUTOBIND_MIN_COS``: a tag-named person takes a new face from this cosine on.
    autobind_min_cos: Annotated[float, msgspec.Meta(ge=-1, le=1)] = 0.4
    #: the largest Apollo response read, in bytes; a longer one is a failed call.
    max_response_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 << 20)] = 1 << 20
    #: first wait before a photo whose call failed transiently is tried again; doubles.
    retry_base_seconds: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 30.0
    retry_max_seconds: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] = 3600.0
    #: the long side of a ``GET /faces/{id}/crop`` JPEG.
    crop_size: Annotated[int, msgspec.Meta(ge=32, le=2048)] = 256
    #: ``Cache-Control: max-age`` of crops (the thumbnails plugin's default).
    cache_seconds: Annotated[int, msgspec.Meta(ge=0)] = 86400


#: environment variable → settings field (the URL is resolved separately: two names).
ENV_FIELDS = {
    "FACE_DETECT_TIMEOUT_SEC": ("detect_timeout_sec", float),
    "FACE_DETECT_CONCURRENCY": ("detect_concurrency", int),
    "FACE_BACKLOG_MAX_PER_TICK": ("backlog_max_per_tick", int),
    "FACE_HASH_BACKFILL_MAX_PER_TICK": ("hash_backfill_max_per_tick", int),
    "FACE_AUTOBIND_MIN_COS": ("autobind_min_cos", float),
}
URL_VARIABLES = ("APOLLO_FACE_API_BASE_URL", "APOLLO_API_BASE_URL")


def effective(settings: FaceSettings, env: Mapping[str, str]) -> FaceSettings:
    """The plugins.toml settings with every variable the operator set applied, checked
    against the same bounds."""
    values = msgspec.structs.asdict(settings)
    for variable in URL_VARIABLES:
        url = (env.get(variable) or "").strip()
        if url:
            values["api_base_url"] = url
            break
    for variable, (name, kind) in ENV_FIELDS.items():
        raw = (env.get(variable) or "").strip()
        if not raw:
            continue
        try:
            values[name] = kind(raw)
        except ValueError:
            raise ConfigError(f"{variable} must be a number, got {raw!r}") from None
    try:
        return msgspec.convert(values, FaceSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"faces: {exc} (from plugins.toml or the FACE_* variables)") from exc
