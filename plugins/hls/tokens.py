"""Short-lived signed URL tokens for one video's playlist and segments.

AVPlayer, ExoPlayer and a browser's ``<video>`` fetch segments themselves and cannot add
an ``Authorization`` header, so every URL in a playlist carries ``token=EXPIRY.SIG``:
an HMAC-SHA256 over the file id and the expiry, keyed with a key derived from
``SECRET_KEY`` (a separate key, so a URL token can never pass as a login JWT or the
other way round). It grants reading that one video's rendition until it expires, and
nothing else; changing ``SECRET_KEY`` revokes every token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

_CONTEXT = b"imageapi hls url token v1"
_SIG_BYTES = 16  # 128 bits: forging one is as hard as guessing the key


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _signature(secret: str, file_id: int, expires: int) -> str:
    mac = hmac.new(_key(secret), f"{file_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:_SIG_BYTES]).rstrip(b"=").decode()


def sign(secret: str, file_id: int, lifetime: int, *, now: float | None = None) -> str:
    """A token for ``file_id`` valid for ``lifetime`` seconds (URL-safe as it is)."""
    expires = int(now if now is not None else time.time()) + lifetime
    return f"{expires}.{_signature(secret, file_id, expires)}"


def verify(secret: str, file_id: int, token: str | None, *, now: float | None = None) -> bool:
    """True only for an unexpired token made by ``sign`` for this very file id."""
    if not token or len(token) > 64:
        return False
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or not signature:
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature, _signature(secret, file_id, expires))
