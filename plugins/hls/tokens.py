"""Short-lived signed URL tokens for one video's playlist and segments.

AVPlayer, ExoPlayer and a browser's ``<video>`` fetch segments themselves and cannot add
an ``Authorization`` header, so every URL in a playlist carries
``token=EXPIRY.USER.SIG``: an HMAC-SHA256 over the file id, the expiry, the user the URL
was made for and that user's token version, keyed with a key derived from ``SECRET_KEY``
(a separate key, so a URL token can never pass as a login JWT or the other way round).
It grants reading that one video's rendition until it expires, and nothing else. Like a
login token it dies with a password change (the version moves on) or the user's
deletion; changing ``SECRET_KEY`` revokes every token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

_CONTEXT = b"imageapi hls url token v2"
_SIG_BYTES = 16  # 128 bits: forging one is as hard as guessing the key
MAX_LENGTH = 96


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _signature(secret: str, file_id: int, expires: int, user_id: int, version: int) -> str:
    message = f"{file_id}:{expires}:{user_id}:{version}".encode()
    mac = hmac.new(_key(secret), message, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:_SIG_BYTES]).rstrip(b"=").decode()


def sign(
    secret: str,
    file_id: int,
    user_id: int,
    version: int,
    lifetime: int,
    *,
    now: float | None = None,
) -> str:
    """A token for ``file_id``, made for ``user_id`` at token ``version``, valid for
    ``lifetime`` seconds (URL-safe as it is)."""
    expires = int(now if now is not None else time.time()) + lifetime
    return f"{expires}.{user_id}.{_signature(secret, file_id, expires, user_id, version)}"


def verify(
    secret: str,
    file_id: int,
    token: str | None,
    version_of: Callable[[int], int | None],
    *,
    now: float | None = None,
) -> int | None:
    """The user id of an unexpired token made by ``sign`` for this very file id, whose
    user still exists at the same token version (``version_of`` looks it up: blocking);
    None for anything else."""
    if not token or len(token) > MAX_LENGTH:
        return None
    expires_text, _, rest = token.partition(".")
    user_text, _, signature = rest.partition(".")
    if not expires_text.isdigit() or not user_text.isdigit() or not signature:
        return None
    expires, user_id = int(expires_text), int(user_text)
    if expires < (now if now is not None else time.time()):
        return None
    version = version_of(user_id)
    if version is None:
        return None
    expected = _signature(secret, file_id, expires, user_id, version)
    return user_id if hmac.compare_digest(signature, expected) else None
