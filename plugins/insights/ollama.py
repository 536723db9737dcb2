"""Ollama's HTTP API (``/api/tags``, ``/api/show``, ``/api/chat``), with failover.

Servers are tried in order — ``OLLAMA_PRIMARY_URL`` then ``OLLAMA_FALLBACK_URL`` (or the
legacy ``OLLAMA_URL``) — each with its own model unless the request names one. A server
that cannot be reached (refused, no connection within 5 s, dropped before answering) is
logged at warning and the next one tried; one that answers and then fails is an error
for the caller (a 502), not a reason to ask another model the same thing. The server and
model that answered are logged at info.

``/api/chat`` is called with ``stream: false`` (one JSON object) or streamed (NDJSON,
one object a line, ``done: true`` last), the latter handing each content delta to
``on_delta`` as it arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .messages import Message, ToolCall, to_ollama
from .settings import Environment, OllamaServer
from .wire import (
    BackendError,
    NotConfigured,
    Reply,
    Unreachable,
    deadline,
    excerpt,
    lines,
    read_body,
    transport_errors,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

Delta = Callable[[str], Awaitable[None]]
ERROR_BODY_LIMIT = 64 * 1024
OPTION_NAMES = ("num_ctx", "temperature", "top_p", "top_k", "min_p")


class _ToolFunction(msgspec.Struct):
    name: str
    arguments: Any = None


class _ToolCall(msgspec.Struct):
    function: _ToolFunction
    id: str | None = None


class _Message(msgspec.Struct):
    role: str = "assistant"
    content: str | None = ""
    tool_calls: list[_ToolCall] | None = None


class _ChatChunk(msgspec.Struct):
    message: _Message | None = None
    done: bool = False
    error: str | None = None
    model: str | None = None


_CHUNK = msgspec.json.Decoder(_ChatChunk)


def _calls(raw: Sequence[_ToolCall], first: int) -> list[ToolCall]:
    calls = []
    for n, call in enumerate(raw, start=first):
        arguments = call.function.arguments
        if isinstance(arguments, str):  # some models send a JSON string here
            try:
                decoded = msgspec.json.decode(arguments)
                arguments = decoded if isinstance(decoded, dict) else arguments
            except msgspec.DecodeError:
                pass
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict | str):
            arguments = msgspec.json.encode(arguments).decode()
        calls.append(ToolCall(call.id or f"call_{n}", call.function.name, arguments))
    return calls


class Ollama:
    """The configured Ollama servers of one plugin instance, over one HTTP client."""

    def __init__(self, env: Environment, http: httpx.AsyncClient, max_bytes: int) -> None:
        self.servers: tuple[OllamaServer, ...] = env.ollama
        self.timeout = env.request_timeout
        self.http = http
        self.max_bytes = max_bytes
        self._capabilities: dict[tuple[str, str], frozenset[str] | None] = {}

    def require(self) -> None:
        if not self.servers:
            raise NotConfigured("OLLAMA_PRIMARY_URL", "Ollama")

    # --- discovery ----------------------------------------------------------------------------

    async def _get_json(self, server: OllamaServer, method: str, path: str, body: Any) -> Any:
        what = f"Ollama {server.role} at {server.url}"
        answered = [False]
        with transport_errors(what, self.timeout, answered):
            async with deadline(self.timeout):
                request = self.http.build_request(method, server.url + path, json=body)
                response = await self.http.send(request, stream=True)
                answered[0] = True
                try:
                    limit = self.max_bytes if response.status_code == 200 else ERROR_BODY_LIMIT
                    data = await read_body(response, limit)
                finally:
                    await response.aclose()
        if response.status_code != 200:
            raise BackendError(f"{what} answered {response.status_code}: {_error_text(data)}")
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise BackendError(f"{what} answered with invalid JSON: {excerpt(data)}") from None

    async def list_models(self, server: OllamaServer) -> list[dict[str, Any]]:
        """``GET /api/tags``: every model on a server."""
        data = await self._get_json(server, "GET", "/api/tags", None)
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise BackendError(f"Ollama at {server.url}: /api/tags has no model list")
        return [m for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]

    async def capabilities(self, server: OllamaServer, model: str) -> frozenset[str] | None:
        """``POST /api/show``: what a model can do (``vision``, ``tools``, ...), or None
        when the server does not say (Ollama before capabilities were reported).
        Cached per server and model for the plugin's life."""
        key = (server.url, model)
        if key not in self._capabilities:
            data = await self._get_json(server, "POST", "/api/show", {"model": model})
            found = data.get("capabilities") if isinstance(data, dict) else None
            self._capabilities[key] = (
                frozenset(c for c in found if isinstance(c, str))
                if isinstance(found, list)
                else None
            )
        return self._capabilities[key]

    async def is_model_available(self, server: OllamaServer, model: str) -> bool:
        names = {m["name"] for m in await self.list_models(server)}
        return model in names or f"{model}:latest" in names

    async def discover(self) -> list[dict[str, Any]]:
        """Every configured server's models with their capabilities (``/insights/models``)."""
        self.require()

        async def one(server: OllamaServer) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "role": server.role,
                "url": server.url,
                "default_model": server.model,
                "reachable": True,
                "models": [],
            }
            try:
                models = await self.list_models(server)
                caps = await asyncio.gather(
                    *(self.capabilities(server, m["name"]) for m in models),
                    return_exceptions=True,
                )
            except BackendError as exc:
                entry.update(reachable=False, error=str(exc))
                return entry
            for model, cap in zip(models, caps, strict=True):
                details = model.get("details") if isinstance(model.get("details"), dict) else {}
                entry["models"].append(
                    {
                        "name": model["name"],
                        "capabilities": sorted(cap) if isinstance(cap, frozenset) else None,
                        "size": model.get("size"),
                        "parameter_size": details.get("parameter_size"),
                        "family": details.get("family"),
                    }
                )
            return entry

        return list(await asyncio.gather(*(one(s) for s in self.servers)))

    async def first_capabilities(
        self, model: str | None, start: int = 0
    ) -> tuple[int, frozenset[str] | None]:
        """The first reachable server (from ``start``) and the capabilities of the model
        it would use: where a generation starts."""
        self.require()
        errors = []
        for index in range(start, len(self.servers)):
            server = self.servers[index]
            try:
                return index, await self.capabilities(server, model or server.model)
            except Unreachable as exc:
                errors.append(str(exc))
                self._warn_failover(index, exc)
        raise BackendError("no Ollama server reachable: " + "; ".join(errors))

    def model_at(self, index: int, model: str | None) -> str:
        return model or self.servers[index].model

    # --- chat ---------------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
        format: Any = None,
        on_delta: Delta | None = None,
        start: int = 0,
    ) -> Reply:
        """One ``/api/chat`` call, streamed when ``on_delta`` is given; failover from
        server ``start`` on. ``Reply.server_index`` says where to continue a loop."""
        self.require()
        errors = []
        for index in range(start, len(self.servers)):
            server = self.servers[index]
            chosen = model or server.model
            body: dict[str, Any] = {
                "model": chosen,
                "messages": [to_ollama(m) for m in messages],
                "stream": on_delta is not None,
            }
            if tools:
                body["tools"] = tools
            if options:
                body["options"] = options
            if format is not None:
                body["format"] = format
            try:
                reply = await self._chat_once(server, body, on_delta)
            except Unreachable as exc:
                errors.append(str(exc))
                self._warn_failover(index, exc)
                continue
            reply.server_index = index
            log.info("insights: Ollama %s at %s answered with %s", server.role, server.url, chosen)
            return reply
        raise BackendError("no Ollama server reachable: " + "; ".join(errors))

    def _warn_failover(self, index: int, exc: Exception) -> None:
        following = self.servers[index + 1] if index + 1 < len(self.servers) else None
        if following is not None:
            log.warning("insights: %s; failing over to %s", exc, following.url)
        else:
            log.warning("insights: %s", exc)

    async def _chat_once(
        self, server: OllamaServer, body: dict[str, Any], on_delta: Delta | None
    ) -> Reply:
        what = f"Ollama {server.role} at {server.url}"
        answered = [False]
        with transport_errors(what, self.timeout, answered):
            async with deadline(self.timeout):
                request = self.http.build_request("POST", server.url + "/api/chat", json=body)
                response = await self.http.send(request, stream=True)
                answered[0] = True
                try:
                    if response.status_code != 200:
                        data = await read_body(response, ERROR_BODY_LIMIT)
                        raise BackendError(
                            f"{what} answered {response.status_code}: {_error_text(data)}"
                        )
                    if on_delta is None:
                        return _reply(
                            what, _decode(what, await read_body(response, self.max_bytes))
                        )
                    return await self._stream(what, response, on_delta)
                finally:
                    await response.aclose()

    async def _stream(self, what: str, response: httpx.Response, on_delta: Delta) -> Reply:
        content: list[str] = []
        size = 0
        calls: list[ToolCall] = []
        model = ""
        async for line in lines(response, self.max_bytes):
            if not line.strip():
                continue
            chunk = _decode(what, line)
            model = chunk.model or model
            message = chunk.message
            if message is not None:
                if message.content:
                    size += len(message.content)
                    if size > self.max_bytes:
                        raise BackendError(f"{what}: answer larger than the response limit")
                    content.append(message.content)
                    await on_delta(message.content)
                if message.tool_calls:
                    calls.extend(_calls(message.tool_calls, len(calls)))
            if chunk.done:
                return Reply("".join(content), calls, model)
        raise BackendError(f"{what}: the stream ended before done")


def _decode(what: str, data: bytes) -> _ChatChunk:
    try:
        chunk = _CHUNK.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BackendError(f"{what} answered with invalid JSON: {excerpt(data)}") from None
    if chunk.error:
        raise BackendError(f"{what}: {chunk.error}")
    return chunk


def _reply(what: str, chunk: _ChatChunk) -> Reply:
    if chunk.message is None:
        raise BackendError(f"{what}: the answer has no message")
    message = chunk.message
    return Reply(message.content or "", _calls(message.tool_calls or [], 0), chunk.model or "")


def _error_text(data: bytes) -> str:
    try:
        decoded = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return excerpt(data)
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
        return excerpt(decoded["error"])
    return excerpt(data)


def options_from(request: Any) -> dict[str, Any]:
    """Ollama ``options`` from a request's num_ctx, temperature, top_p, top_k, min_p."""
    return {
        name: getattr(request, name)
        for name in OPTION_NAMES
        if getattr(request, name, None) is not None
    }
