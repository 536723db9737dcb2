"""Chat: one more turn of the agentic loop on an insight's stored transcript.

A turn loads the file's current insight, appends the user's message (after a short
system note saying how to answer: plain prose for a question, the new text for an
amendment), runs ``agent.run`` with every tool and writes the transcript back:

* append (default): the same row's ``training_messages`` is replaced;
* amend: the answer is the insight's new summary, the model is asked for a new title,
  and a new row is stored (the older ones stop being current).

Routing: the backend stored on the insight is authoritative. A turn may ask for
``local`` on a ``hybrid`` insight (its transcript already holds the picture's
description as text, so it replays verbatim), never ``hybrid`` on a ``local`` one (its
transcript holds the picture itself, which OpenRouter is not sent). ``model`` overrides
the chat model for the turn: an Ollama model (local), an allowed OpenRouter one (hybrid).

The whole turn holds the per-(library, file) lock: concurrent turns on one insight run
one after another, each reading the transcript the previous one wrote. A turn that
fails or is cancelled (a streaming client went away) writes nothing: the transcript is
as it was before the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException

from kernel.types import ToolContext

from . import agent, store
from .history import Budget, render, shown_result
from .messages import Message, dump, load, without_images
from .ollama import options_from
from .schemas import insight_of
from .service import HYBRID, LOCAL
from .wire import BackendError, NotConfigured, Refused, Reply

if TYPE_CHECKING:
    from .service import InsightService

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
Delta = Callable[[str], Awaitable[None]]
ChatCall = Callable[[list[Message], Any], Awaitable[Reply]]

CHAT_PROMPT = (
    "The user now talks with you about this photo and the insight you wrote. Answer their"
    " last message in plain prose (no JSON), briefly; call the tools when they help."
)
AMEND_PROMPT = (
    "The user asks you to change the insight you wrote. Answer with the new insight's text"
    " only: two to five sentences of plain prose, no title, no JSON."
)
CHAT_CAP_PROMPT = "You have used every tool call this turn allows. Answer the user now."
AMEND_CAP_PROMPT = (
    "You have used every tool call this turn allows. Answer now with the new insight's text."
)
TITLE_PROMPT = "Give the new insight a title of at most ten words. Answer with the title only."


@dataclass
class Route:
    """Where a turn goes, decided before it starts (so a stream can still answer 400)."""

    library_id: int
    rel_path: str
    backend: str
    model: str | None  # the request's Ollama model, or the chosen OpenRouter model


@dataclass
class Turn:
    insight_id: int
    reply: str
    backend: str
    model: str
    iterations: int = 0
    cap_reached: bool = False
    truncated: bool = False
    tools: list[dict[str, Any]] = field(default_factory=list)
    amended_insight_id: int | None = None


async def _nothing(_name: str, _data: dict[str, Any]) -> None:
    """No listener (``POST /insights/chat`` answers once, at the end)."""


def _continuable(row: Any, rel_path: str) -> Any:
    if row is None:
        raise NotFoundException(f"no insight for {rel_path}")
    if not insight_of(row)["has_training_messages"]:
        raise Refused(
            f"the insight of {rel_path} has no transcript to continue"
            " (write one with POST /insights/generate/agentic)"
        )
    return row


async def route(service: InsightService, request: Any) -> Route:
    """The turn's backend and model, or the 404 / 400 / 503 that stops it."""
    if not (service.env.ollama_configured or service.env.openrouter_configured):
        raise NotConfigured("OLLAMA_PRIMARY_URL", "Ollama")
    kernel = service.kernel
    resolved = kernel.libraries.resolve(request.library, request.file_path)
    row = await asyncio.to_thread(store.current, kernel.db, resolved.library.id, resolved.rel_path)
    _continuable(row, resolved.rel_path)
    stored = row.backend
    backend = (request.backend or stored).strip().lower()
    if backend not in (LOCAL, HYBRID):
        raise Refused(f"backend must be {LOCAL!r} or {HYBRID!r}, not {request.backend!r}")
    if stored == LOCAL and backend == HYBRID:
        raise Refused(
            "this insight was written by the local backend: its transcript holds the"
            " picture, not a description of it, so it cannot continue on 'hybrid'"
        )
    if backend == HYBRID:
        openrouter = service.openrouter
        kept = row.model if row.model in (openrouter.default_model, *openrouter.allowed) else None
        model = openrouter.choose_model(request.model or kept)
    else:
        service.ollama.require()
        model = request.model
    return Route(resolved.library.id, resolved.rel_path, backend, model)


async def _backend(
    service: InsightService, where: Route, request: Any
) -> tuple[Callable[[Delta | None], ChatCall], Callable[[], str]]:
    """``(chat_with(on_delta), model_name())`` for the turn's backend."""
    options = options_from(request)
    if where.backend == HYBRID:
        openrouter, chosen = service.openrouter, where.model or ""

        def hybrid_with(on_delta: Delta | None) -> ChatCall:
            async def chat(history: list[Message], offered: Any) -> Reply:
                return await openrouter.chat(
                    history, model=chosen, tools=offered, options=options, on_delta=on_delta
                )

            return chat

        return hybrid_with, lambda: chosen

    ollama = service.ollama
    index, caps = await ollama.first_capabilities(where.model)
    if caps is not None and "tools" not in caps:
        name = ollama.model_at(index, where.model)
        raise Refused(f"model {name!r} cannot call tools (Ollama capabilities)")
    blind = caps is not None and "vision" not in caps
    at = {"index": index}

    def local_with(on_delta: Delta | None) -> ChatCall:
        async def chat(history: list[Message], offered: Any) -> Reply:
            reply = await ollama.chat(
                without_images(history) if blind else history,
                model=where.model,
                tools=offered,
                options=options,
                on_delta=on_delta,
                start=at["index"],
            )
            at["index"] = reply.server_index
            return reply

        return chat

    return local_with, lambda: ollama.model_at(at["index"], where.model)


async def run_turn(
    service: InsightService,
    request: Any,
    where: Route,
    user_id: int | None,
    on_event: Emit | None = None,
) -> Turn:
    """One turn, under the file's lock; ``on_event`` hears the loop as it runs
    (``iteration_start``, ``text``, ``tool_call``, ``tool_result``, ``truncated``)."""
    emit = on_event or _nothing
    kernel, db = service.kernel, service.kernel.db
    async with service.locks(where.library_id, where.rel_path):
        row = await asyncio.to_thread(store.current, db, where.library_id, where.rel_path)
        _continuable(row, where.rel_path)
        messages = load(row.training_messages)
        chat_with, model_name = await _backend(service, where, request)

        async def delta(text: str) -> None:
            await emit("text", {"delta": text})

        streamed = chat_with(delta)
        messages.append(Message("system", AMEND_PROMPT if request.amend else CHAT_PROMPT))
        question = Message("user", request.user_message)
        messages.append(question)
        budget = Budget(request.num_ctx or service.settings.chat_context_tokens)
        truncated = False

        async def bounded(history: list[Message], offered: Any) -> Reply:
            nonlocal truncated
            keep_from = next(n for n, m in enumerate(history) if m is question)
            dropped = budget.fit(history, keep_from)
            if dropped:
                truncated = True
                await emit("truncated", {"dropped_messages": dropped})
            return await streamed(history, offered)

        async def shown(name: str, data: dict[str, Any]) -> None:
            if name == "tool_result":
                data = {"name": data["name"], **shown_result(data["result"])}
            await emit(name, data)

        limit = service.settings.tool_result_max_chars
        result = await agent.run(
            bounded,
            messages,
            kernel.tools,
            ToolContext(kernel, user_id, result_limit=limit),
            max_iterations=service.iterations_for(request.max_iterations),
            result_limit=limit,
            tool_timeout=service.env.request_timeout,
            on_event=shown,
            cap_prompt=AMEND_CAP_PROMPT if request.amend else CHAT_CAP_PROMPT,
        )
        reply = result.reply.content.strip()
        rendered = render(messages)
        last = rendered[-1] if rendered else None
        turn = Turn(
            insight_id=row.id,
            reply=reply,
            backend=where.backend,
            model=model_name(),
            iterations=result.iterations,
            cap_reached=result.cap_reached,
            truncated=truncated,
            tools=(last.tools or []) if last is not None and last.role == "assistant" else [],
        )
        if request.amend:
            if not reply:
                raise BackendError("the model answered the amendment with nothing")
            title = await _title(chat_with(None), messages, row.title)
            ref = await asyncio.to_thread(kernel.index.get, where.library_id, where.rel_path)
            new = store.NewInsight(
                library_id=where.library_id,
                rel_path=where.rel_path,
                content_hash=ref.content_hash if ref is not None else row.content_hash,
                title=title,
                summary=reply,
                backend=where.backend,
                model=turn.model,
                training_messages=dump(messages),
            )
            saved = await asyncio.to_thread(store.store, db, new)
            turn.amended_insight_id = saved.id
        else:
            await asyncio.to_thread(store.replace_transcript, db, row.id, dump(messages))
    return turn


async def _title(chat: ChatCall, messages: list[Message], old: str) -> str:
    """A new title for an amended insight (asked without tools, not kept in the
    transcript: the row's title is its record); the old one when the answer is empty."""
    reply = await chat([*messages, Message("user", TITLE_PROMPT, synthetic=True)], None)
    for line in reply.content.splitlines():
        title = " ".join(line.split()).strip("\"'*# ")
        if title.lower().startswith("title:"):
            title = title[6:].strip("\"'* ")
        if title:
            return title[: agent.TITLE_MAX]
    return old
