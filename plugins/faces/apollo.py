"""The client of Apollo's face inference service (the protocol is in README.md).

One ``httpx.AsyncClient`` per plugin instance: redirects are not followed, every call
is bounded by ``detect_timeout_sec`` from connect to last byte, at most
``detect_concurrency`` calls are in flight, and a response is read as a stream and
abandoned past ``max_response_bytes``, so a broken (or hostile) server can neither hang
the backlog nor fill memory. Bodies are validated with msgspec and numpy: a wrong
vector length or a non-finite value makes the call fail.

Three kinds of failure, because the caller treats them differently:
``Transient`` (connection refused, timeout, 5xx: try again later, store nothing),
``Rejected`` (4xx: Apollo looked at the photo and said no; embed's 422 is ``NoFace``)
and ``BadResponse`` (a redirect, an oversized or malformed body: a server bug that
retrying the same bytes will not fix).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import TYPE_CHECKING, Annotated

import msgspec

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx
    import numpy as np

EMBEDDING_DIM = 512
DETECT_PATH = "/api/internal/faces/detect"
EMBED_PATH = "/api/internal/faces/embed"


class ApolloError(Exception):
    """A call that did not produce a usable answer; ``str()`` is the reason stored."""


class Transient(ApolloError):
    """Apollo unreachable, too slow, or failing on its side (5xx): retry later.

    ``unreachable``: no answer at all (refused, reset, timed out), so every other photo
    would fail the same way; a 5xx is about this photo's call alone."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class Rejected(ApolloError):
    """Apollo refused the picture (4xx)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class NoFace(Rejected):
    """``embed`` found no face in the crop (422)."""


class BadResponse(ApolloError):
    """A redirect, a body past the cap, or one that is not the protocol's JSON."""


Box = Annotated[list[float], msgspec.Meta(min_length=4, max_length=4)]


class DetectedFace(msgspec.Struct):
    bbox: Box  # x, y, w, h in pixels of the picture sent
    confidence: float
    embedding: list[float]


class DetectResponse(msgspec.Struct):
    model_version: str
    width: Annotated[int, msgspec.Meta(gt=0)]
    height: Annotated[int, msgspec.Meta(gt=0)]
    faces: list[DetectedFace]


class EmbedResponse(msgspec.Struct):
    model_version: str
    embedding: list[float]


def vector(values: list[float]) -> np.ndarray:
    """The embedding as float32, or BadResponse for a wrong length or a non-finite value."""
    import numpy as np

    if len(values) != EMBEDDING_DIM:
        raise BadResponse(f"embedding has {len(values)} values, not {EMBEDDING_DIM}")
    array = np.asarray(values, dtype=np.float32)
    if not np.isfinite(array).all():
        raise BadResponse("embedding has a NaN or infinite value")
    return array


class Apollo:
    """Calls to one Apollo base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        concurrency: int,
        max_response_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.slots = asyncio.Semaphore(concurrency)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def detect(self, jpeg: bytes) -> DetectResponse:
        body = await self._post(DETECT_PATH, jpeg, "photo.jpg")
        try:
            answer = msgspec.json.decode(body, type=DetectResponse)
        except msgspec.DecodeError as exc:
            raise BadResponse(f"detect: malformed response: {exc}") from None
        for face in answer.faces:
            vector(face.embedding)
            if not all(math.isfinite(v) for v in (*face.bbox, face.confidence)):
                raise BadResponse("detect: a box or confidence is not a finite number")
        return answer

    async def embed(self, jpeg: bytes) -> tuple[str, np.ndarray]:
        body = await self._post(EMBED_PATH, jpeg, "face.jpg")
        try:
            answer = msgspec.json.decode(body, type=EmbedResponse)
        except msgspec.DecodeError as exc:
            raise BadResponse(f"embed: malformed response: {exc}") from None
        return answer.model_version, vector(answer.embedding)

    async def _post(self, path: str, jpeg: bytes, filename: str) -> bytes:
        """The body of a 200 answer to a multipart upload of ``jpeg`` as ``file``."""
        import httpx

        url = self.base_url + path
        async with self.slots:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._exchange(url, jpeg, filename)
            except (TimeoutError, httpx.TimeoutException):
                reason = f"{path}: no answer within {self.timeout:g} s"
                raise Transient(reason, unreachable=True) from None
            except httpx.TransportError as exc:
                reason = f"{path}: {type(exc).__name__}: {exc}"
                raise Transient(reason, unreachable=True) from None

    async def _exchange(self, url: str, jpeg: bytes, filename: str) -> bytes:
        body, content_type = multipart(jpeg, filename)
        headers = {"Content-Type": content_type}
        async with self.client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
            if 300 <= status < 400:
                where = response.headers.get("location", "?")
                raise BadResponse(f"HTTP {status} redirect to {where} (not followed)")
            body = await self._read_capped(response)
        if status >= 500:
            raise Transient(f"HTTP {status}: {_snippet(body)}")
        if status == 422 and url.endswith(EMBED_PATH):
            raise NoFace(status, f"no face found: {_snippet(body)}")
        if status >= 400:
            raise Rejected(status, f"HTTP {status}: {_snippet(body)}")
        if status != 200:
            raise BadResponse(f"HTTP {status} is not the protocol's 200")
        return body

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise BadResponse(f"response of {int(declared)} bytes is over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise BadResponse(f"response is over the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)


def multipart(jpeg: bytes, filename: str) -> tuple[bytes, str]:
    """The upload as one ``multipart/form-data`` body (the bytes httpx's ``files=``
    sends): handed over whole, it leaves in one write instead of one per part, and
    a detection call is a few syscalls and wake-ups on both sides cheaper."""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
        f' filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    body = b"".join((head.encode(), jpeg, f"\r\n--{boundary}--\r\n".encode()))
    return body, f"multipart/form-data; boundary={boundary}"


def _snippet(body: bytes) -> str:
    """The start of an error body, for the stored reason."""
    text = body[:300].decode("utf-8", "replace").strip()
    try:
        detail = msgspec.json.decode(body)
        if isinstance(detail, dict) and "detail" in detail:
            text = str(detail["detail"])[:300]
    except msgspec.DecodeError:
        pass
    return text or "(empty body)"
