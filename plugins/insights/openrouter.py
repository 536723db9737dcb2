"""OpenRouter: the OpenAI chat-completions protocol at ``OPENROUTER_BASE_URL``.

``POST /chat/completions`` with ``tools`` as functions; a reply's ``tool_calls`` carry
their arguments as a JSON *string*. Streamed answers are Server-Sent Events
(``data: {chunk}`` lines, ``: comments`` as keep-alives, ``data: [DONE]`` last), tool
calls arriving in pieces keyed by ``index``. Every request carries ``Authorization:
Bearer`` and the attribution headers ``HTTP-Referer`` and ``X-Title``.

The API key never leaves this module except in that header: every error text passes
through ``redact`` (an upstream error body may echo the request), and the key is not
part of any repr.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .messages import Message, ToolCall, to_openai
from .settings import Environment
from .wire import (
    BackendError,
    NotConfigured,
    Refused,
    Reply,
    deadline,
    excerpt,
    lines,
    read_body,
    redact,
    transport_errors,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

Delta = Callable[[str], Awaitable[None]]
ERROR_BODY_LIMIT = 64 * 1024
OPTION_NAMES = ("temperature", "top_p", "top_k", "min_p")
DEFAULT_TITLE = "imageapi"


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _Call(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_Call] | None = None


class _Choice(msgspec.Struct):
    message: _Message | None = None
    delta: _Message | None = None


class _Error(msgspec.Struct):
    message: str = ""
    code: int | str | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = []
    model: str | None = None
    error: _Error | None = None


_COMPLETION = msgspec.json.Decoder(_Completion)


def _arguments(raw: str | None) -> dict[str, Any] | str:
    if not raw:
        return {}
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw  # the model's broken JSON, kept for it to see
    return decoded if isinstance(decoded, dict) else raw


class OpenRouter:
    """OpenRouter as configured by ``OPENROUTER_*``."""

    def __init__(self, env: Environment, http: httpx.AsyncClient, max_bytes: int) -> None:
        self._key = env.openrouter_key
        self.base_url = env.openrouter_base_url
        self.default_model = env.openrouter_default_model
        self.allowed = env.openrouter_allowed_models
        self.referer = env.openrouter_referer
        self.title = env.openrouter_title or DEFAULT_TITLE
        self.timeout = env.request_timeout
        self.http = http
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"OpenRouter({self.base_url!r})"

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def redact(self, text: str) -> str:
        return redact(text, [self._key])

    def choose_model(self, requested: str | None) -> str:
        """The model for a call: the request's, which must be the default or on
        ``OPENROUTER_ALLOWED_MODELS`` (400 naming it otherwise), else the default."""
        if not self._key:
            raise NotConfigured("OPENROUTER_API_KEY", "OpenRouter")
        if requested and requested != self.default_model and requested not in self.allowed:
            allowed = ", ".join(self.allowed) or "none (OPENROUTER_ALLOWED_MODELS is empty)"
            raise Refused(f"model {requested!r} is not allowed; allowed: {allowed}")
        model = requested or self.default_model
        if not model:
            raise NotConfigured("OPENROUTER_DEFAULT_MODEL", "an OpenRouter model")
        return model

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._key}", "X-Title": self.title}
        if self.referer:
            headers["HTTP-Referer"] = self.referer
        return headers

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: list[dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
        on_delta: Delta | None = None,
    ) -> Reply:
        """One chat completion, streamed (SSE) when ``on_delta`` is given."""
        if not self._key:
            raise NotConfigured("OPENROUTER_API_KEY", "OpenRouter")
        body: dict[str, Any] = {
            "model": model,
            "messages": [to_openai(m) for m in messages],
            "stream": on_delta is not None,
        }
        if tools:
            body["tools"] = tools
        for name in OPTION_NAMES:
            if options and options.get(name) is not None:
                body[name] = options[name]
        what = f"OpenRouter ({model})"
        try:
            reply = await self._send(what, body, on_delta)
        except BackendError as exc:
            raise type(exc)(self.redact(str(exc))) from None
        reply.model = reply.model or model
        reply.server = "openrouter"
        log.info("insights: OpenRouter answered with %s", model)
        return reply

    async def _send(self, what: str, body: dict[str, Any], on_delta: Delta | None) -> Reply:
        answered = [False]
        with transport_errors(what, self.timeout, answered):
            async with deadline(self.timeout):
                request = self.http.build_request(
                    "POST", self.base_url + "/chat/completions", json=body, headers=self._headers()
                )
                response = await self.http.send(request, stream=True)
                answered[0] = True
                try:
                    if response.status_code != 200:
                        data = await read_body(response, ERROR_BODY_LIMIT)
                        raise BackendError(
                            f"{what} answered {response.status_code}: {_error_text(data)}"
                        )
                    if on_delta is None:
                        data = await read_body(response, self.max_bytes)
                        return _reply(what, _decode(what, data))
                    return await self._stream(what, response, on_delta)
                finally:
                    await response.aclose()

    async def _stream(self, what: str, response: httpx.Response, on_delta: Delta) -> Reply:
        content: list[str] = []
        size = 0
        calls: dict[int, dict[str, Any]] = {}
        model = ""
        async for line in lines(response, self.max_bytes):
            if not line.startswith(b"data:"):
                continue  # blank separators, ": keep-alive" comments, event/id fields
            payload = line[5:].strip()
            if payload == b"[DONE]":
                ordered = [calls[i] for i in sorted(calls)]
                tool_calls = [
                    ToolCall(c["id"] or f"call_{n}", c["name"], _arguments(c["arguments"]))
                    for n, c in enumerate(ordered)
                ]
                return Reply("".join(content), tool_calls, model)
            chunk = _decode(what, payload)
            model = chunk.model or model
            for choice in chunk.choices:
                delta = choice.delta or choice.message
                if delta is None:
                    continue
                if delta.content:
                    size += len(delta.content)
                    if size > self.max_bytes:
                        raise BackendError(f"{what}: answer larger than the response limit")
                    content.append(delta.content)
                    await on_delta(delta.content)
                for part in delta.tool_calls or ():
                    slot = calls.setdefault(
                        part.index if part.index is not None else len(calls),
                        {"id": None, "name": "", "arguments": ""},
                    )
                    slot["id"] = slot["id"] or part.id
                    if part.function is not None:
                        slot["name"] += part.function.name or ""
                        slot["arguments"] += part.function.arguments or ""
        raise BackendError(f"{what}: the stream ended without [DONE]")


def _decode(what: str, data: bytes) -> _Completion:
    try:
        completion = _COMPLETION.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BackendError(f"{what} answered with invalid JSON: {excerpt(data)}") from None
    if completion.error is not None:
        raise BackendError(f"{what}: {excerpt(completion.error.message or 'error')}")
    return completion


def _reply(what: str, completion: _Completion) -> Reply:
    if not completion.choices or completion.choices[0].message is None:
        raise BackendError(f"{what}: the answer has no choices")
    message = completion.choices[0].message
    calls = [
        ToolCall(
            c.id or f"call_{n}",
            c.function.name or "" if c.function else "",
            _arguments(c.function.arguments if c.function else None),
        )
        for n, c in enumerate(message.tool_calls or ())
    ]
    return Reply(message.content or "", calls, completion.model or "")


def _error_text(data: bytes) -> str:
    try:
        decoded = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return excerpt(data)
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return excerpt(error["message"])
    return excerpt(data)
