"""What the two backends have in common: errors a route turns into 502/503/400, and
reading an HTTP answer without trusting its size.

A backend may answer garbage, 1 GiB, or nothing: bodies are read chunk by chunk against
a byte limit, streamed answers line by line with the same limit per line, and every
call runs under one total deadline. Texts that may carry a secret (an error body that
echoes the request) go through ``redact`` before they reach a log or a client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .messages import ToolCall

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx


class BackendError(Exception):
    """The backend failed: the route answers 502 with this reason."""


class Unreachable(BackendError):
    """No connection (refused, connect timeout, dropped before any answer): the next
    server may be tried."""


class NotConfigured(Exception):
    """The route needs a backend that is not configured: 503 naming the variable."""

    def __init__(self, variable: str, what: str) -> None:
        super().__init__(f"{what} is not configured: set {variable}")
        self.variable = variable


class Refused(Exception):
    """The request asks for something the configuration forbids: 400."""


@dataclass
class Reply:
    """One answer of a model: its text, the calls it asked for, and who answered."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    server: str = ""  # a URL (Ollama) or "openrouter"
    server_index: int = 0


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def excerpt(body: bytes | str, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body, or BackendError once it passes ``limit`` bytes (nothing more is
    read: the connection is closed)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BackendError(f"answer larger than {limit // (1 << 20)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def lines(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """Lines of a streamed body (NDJSON, SSE) as they arrive; a line longer than
    ``limit`` bytes is an error."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            yield bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
        del buffer[:start]
        if len(buffer) > limit:
            raise BackendError(f"a streamed line larger than {limit // (1 << 20)} MiB")
    if buffer.strip():
        yield bytes(buffer)


@contextlib.contextmanager
def transport_errors(what: str, timeout: float, answered: list[bool]) -> Iterator[None]:
    """Turn httpx's and asyncio's exceptions into ``Unreachable`` (nothing answered yet:
    try the next server) or ``BackendError`` (it answered, then failed)."""
    import httpx

    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unreachable(f"{what}: cannot connect ({type(exc).__name__})") from None
    except (TimeoutError, httpx.TimeoutException):
        raise BackendError(f"{what}: no complete answer within {timeout:g} s") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        if not answered[0]:
            raise Unreachable(f"{what}: connection dropped before an answer") from None
        raise BackendError(f"{what}: connection dropped mid-answer ({exc})") from None
    except httpx.HTTPError as exc:
        raise BackendError(f"{what}: {type(exc).__name__}") from None


def deadline(seconds: float) -> asyncio.Timeout:
    return asyncio.timeout(seconds)
