"""The chat routes: a turn answered at once or as Server-Sent Events, the rendered
history, and rewind.

The stream's events, each ``data`` a JSON object: ``iteration_start`` ``{iteration}``,
``text`` ``{delta}`` (as the backend streams it), ``tool_call`` ``{name, arguments}``,
``tool_result`` ``{name, result, result_truncated?}``, ``truncated``
``{dropped_messages}``, then ``done`` (the ``ChatReply``) or ``error_message``
``{status, message}``. What can be refused before the turn starts (an unknown file, no
insight, a backend the routing rules forbid, nothing configured) is an ordinary HTTP
error instead. The turn runs as a task feeding a queue the response drains; when the
client goes away, Litestar cancels the response, which cancels the task — and with it
the backend call — before anything is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from kernel.deps import CurrentUser
from kernel.schemas import BAD_REQUEST

from . import Plugin, chat, history, store
from .messages import dump, load
from .routes import backend_errors
from .schemas import ChatHistory, ChatMessage, ChatReply, ChatRequest, RewindRequest, ToolUse
from .wire import BackendError, NotConfigured, Refused

log = logging.getLogger(__name__)

PluginDep = NamedDependency[Plugin]
PathQuery = Annotated[str, QueryParameter(name="path")]
_ENCODER = msgspec.json.Encoder()


def reply_of(turn: chat.Turn) -> ChatReply:
    return ChatReply(
        insight_id=turn.insight_id,
        reply=turn.reply,
        backend=turn.backend,
        model=turn.model,
        iterations=turn.iterations,
        iteration_cap_reached=turn.cap_reached,
        truncated=turn.truncated,
        tools=msgspec.convert(turn.tools, list[ToolUse]),
        amended_insight_id=turn.amended_insight_id,
    )


def history_of(row: Any, messages: list) -> ChatHistory:
    rendered = [
        ChatMessage(
            index=n,
            role=m.role,
            content=m.content,
            images=m.images,
            tools=None if m.tools is None else msgspec.convert(m.tools, list[ToolUse]),
        )
        for n, m in enumerate(history.render(messages))
    ]
    return ChatHistory(
        insight_id=row.id,
        file_path=row.rel_path,
        library=row.library_id,
        backend=row.backend,
        model=row.model,
        messages=rendered,
    )


def error_of(plugin: Plugin, exc: Exception) -> dict[str, Any]:
    """What a failed streamed turn tells the client (the statuses the plain route uses)."""
    if isinstance(exc, NotConfigured):
        return {"status": 503, "message": str(exc)}
    if isinstance(exc, Refused):
        return {"status": 400, "message": plugin.redact(str(exc))}
    if isinstance(exc, BackendError):
        reason = plugin.redact(str(exc))
        log.warning("insights: chat backend failed: %s", reason)
        return {"status": 502, "message": reason}
    if isinstance(exc, HTTPException):
        return {"status": exc.status_code, "message": str(exc.detail)}
    log.exception("insights: chat turn failed", exc_info=exc)
    return {"status": 500, "message": "internal error (see the server log)"}


@post("/insights/chat", summary="One chat turn on a file's insight",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def chat_turn(plugin: PluginDep, user: CurrentUser, data: JSONBody[ChatRequest]) -> ChatReply:
    with backend_errors(plugin):
        where = await chat.route(plugin.service, data)
        turn = await chat.run_turn(plugin.service, data, where, user.id)
    return reply_of(turn)


async def _events(
    plugin: Plugin, data: ChatRequest, where: chat.Route, user_id: int
) -> AsyncIterator[ServerSentEventMessage]:
    queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()

    async def emit(name: str, payload: dict[str, Any]) -> None:
        queue.put_nowait((name, payload))

    async def work() -> None:
        try:
            turn = await chat.run_turn(plugin.service, data, where, user_id, on_event=emit)
            queue.put_nowait(("done", reply_of(turn)))
        except Exception as exc:
            queue.put_nowait(("error_message", error_of(plugin, exc)))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(work())
    try:
        while (item := await queue.get()) is not None:
            name, payload = item
            yield ServerSentEventMessage(data=_ENCODER.encode(payload).decode(), event=name)
    finally:
        if not task.done():  # the client went away: the turn is abandoned, nothing kept
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(task, return_exceptions=True)


@post("/insights/chat/stream", summary="One chat turn as Server-Sent Events",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def chat_stream(
    plugin: PluginDep, user: CurrentUser, data: JSONBody[ChatRequest]
) -> ServerSentEvent:
    with backend_errors(plugin):
        where = await chat.route(plugin.service, data)
    return ServerSentEvent(_events(plugin, data, where, user.id))


async def _current(plugin: Plugin, library: str | int | None, path: str) -> Any:
    resolved = plugin.kernel.libraries.resolve(library, path)
    row = await asyncio.to_thread(
        store.current, plugin.kernel.db, resolved.library.id, resolved.rel_path
    )
    if row is None:
        raise NotFoundException(f"no insight for {resolved.rel_path}")
    return row


@get("/insights/chat/history", summary="The chat of a file's insight, rendered",
     responses=BAD_REQUEST)  # fmt: skip
async def chat_history(
    plugin: PluginDep, file_path: PathQuery, library: FromQuery[str | None] = None
) -> ChatHistory:
    row = await _current(plugin, library, file_path)
    return history_of(row, load(row.training_messages or "[]"))


@post("/insights/chat/rewind", summary="Cut the chat before a rendered message",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def chat_rewind(plugin: PluginDep, data: JSONBody[RewindRequest]) -> ChatHistory:
    first = await _current(plugin, data.library, data.path)
    async with plugin.locks(first.library_id, first.rel_path):
        row = await _current(plugin, data.library, data.path)  # as the last turn left it
        try:
            kept = history.rewind(load(row.training_messages or "[]"), data.index)
        except history.RewindRefused as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        text = dump(kept)
        await asyncio.to_thread(store.replace_transcript, plugin.kernel.db, row.id, text)
    return history_of(row, kept)


CHAT_ROUTES = [chat_turn, chat_stream, chat_history, chat_rewind]
