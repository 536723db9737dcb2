"""The agentic loop: the model calls tools from the kernel's registry until it answers.

Every iteration is one model call with every tool offered; the model's tool calls are
run one after another and each result (or error) goes back as a ``tool`` message. The
loop ends when the model answers without calling a tool, or after ``max_iterations``
calls: then it is asked, without tools, to answer now. A bad call never escapes as an
exception: an unknown tool, arguments that are not a JSON object or do not fit the
tool's schema, a tool that raises or takes too long — each becomes an ``{"error": ...}``
result the model reads and can correct.

Arguments are validated by decoding them into the tool's ``params`` Struct with msgspec
(strictly: no "5" for an int, no unknown field where the Struct forbids them): the JSON
schema the model was given is generated from that same Struct, so the check is exactly
that schema, with no second validator to disagree with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kernel.types import Tool, ToolContext

from .messages import Message, ToolCall
from .wire import BackendError, Reply, excerpt

log = logging.getLogger(__name__)

Chat = Callable[[list[Message], list[dict[str, Any]] | None], Awaitable[Reply]]
Event = Callable[[str, dict[str, Any]], Awaitable[None]]

ANSWER_FORMAT = (
    'Answer with a single JSON object and nothing else: {"title": "...", "summary": "..."}'
    " — a title of at most ten words, and a summary of two to five sentences."
)
SYSTEM_PROMPT = (
    "You write short, warm insights about photos from a family's personal photo library:"
    " what the moment was, where and when, who was there. Use only what the photo, its"
    " metadata and the tools tell you; do not invent names or places. "
)
AGENTIC_SYSTEM_PROMPT = (
    SYSTEM_PROMPT + "You may call the tools offered (other photos of the same day or place, tags,"
    " metadata, places) when they would make the insight better; call none when the"
    " context is enough. When you are done, " + ANSWER_FORMAT
)
SINGLE_SYSTEM_PROMPT = SYSTEM_PROMPT + ANSWER_FORMAT
CAP_PROMPT = "You have used every tool call this turn allows. Answer now. " + ANSWER_FORMAT
RETRY_PROMPT = "That was not the JSON object asked for. " + ANSWER_FORMAT
INSIGHT_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
    "required": ["title", "summary"],
}
TITLE_MAX = 200


@dataclass
class LoopResult:
    reply: Reply
    iterations: int = 0
    tools_called: list[str] = field(default_factory=list)
    cap_reached: bool = False


def _error(text: str) -> str:
    return msgspec.json.encode({"error": text}).decode()


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value, enc_hook=str).decode()


async def call_tool(
    call: ToolCall, tools: Mapping[str, Tool], ctx: ToolContext, *, limit: int, timeout: float
) -> str:
    """Run one tool call; the result (or the error) as text for the model."""
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        return _error(f"there is no tool {call.name!r}; the tools are: {known}")
    if isinstance(call.arguments, str):
        return _error(f"the arguments of {call.name} must be a JSON object, got {call.arguments!r}")
    try:
        params = msgspec.convert(call.arguments, tool.params)
    except msgspec.ValidationError as exc:
        return _error(f"invalid arguments for {call.name}: {exc}")
    try:
        async with asyncio.timeout(timeout):
            result = await tool.call(params, ctx)
    except TimeoutError:
        return _error(f"{call.name} did not finish within {timeout:g} s")
    except Exception as exc:  # the model sees the failure, the client gets no 500
        log.warning("insights: tool %s failed: %r", call.name, exc)
        return _error(f"{call.name} failed: {type(exc).__name__}: {exc}")
    text = _encode(result)
    if len(text) > limit:
        text = text[:limit] + f"... [cut: the result had {len(text)} characters]"
    return text


async def run(
    chat: Chat,
    messages: list[Message],
    tools: Mapping[str, Tool],
    ctx: ToolContext,
    *,
    max_iterations: int,
    result_limit: int,
    tool_timeout: float,
    on_event: Event | None = None,
    cap_prompt: str = CAP_PROMPT,
) -> LoopResult:
    """Run the loop on ``messages`` (appended to in place) until the model answers;
    ``cap_prompt`` asks for the answer once the iterations are used up."""
    specs = [tool.to_openai() for tool in tools.values()]
    result = LoopResult(reply=Reply(""))
    for iteration in range(1, max_iterations + 1):
        if on_event:
            await on_event("iteration_start", {"iteration": iteration})
        reply = await chat(messages, specs or None)
        result.reply, result.iterations = reply, iteration
        messages.append(Message("assistant", reply.content, tool_calls=reply.tool_calls))
        if not reply.tool_calls:
            return result
        for call in reply.tool_calls:
            if on_event:
                await on_event("tool_call", {"name": call.name, "arguments": call.arguments})
            text = await call_tool(call, tools, ctx, limit=result_limit, timeout=tool_timeout)
            result.tools_called.append(call.name)
            messages.append(Message("tool", text, tool_call_id=call.id, name=call.name))
            if on_event:
                await on_event("tool_result", {"name": call.name, "result": text})
    result.cap_reached = True
    messages.append(Message("user", cap_prompt, synthetic=True))
    reply = await chat(messages, None)
    result.reply = reply
    # No tools were offered: a call the model makes anyway is not run, nor kept (a
    # replayed transcript must not hold a call without its result).
    messages.append(Message("assistant", reply.content))
    return result


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_insight(text: str) -> tuple[str, str] | None:
    """``(title, summary)`` from a model's answer: a JSON object, possibly fenced or
    with words around it; None when there is none with two non-empty strings."""
    stripped = _FENCE.sub("", text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = msgspec.json.decode(stripped[start : end + 1])
    except msgspec.DecodeError:
        return None
    if not isinstance(value, dict):
        return None
    title, summary = value.get("title"), value.get("summary")
    if not (isinstance(title, str) and isinstance(summary, str)):
        return None
    title, summary = " ".join(title.split()), summary.strip()
    if not title or not summary:
        return None
    return title[:TITLE_MAX], summary


async def finish(chat: Chat, messages: list[Message], reply: Reply) -> tuple[str, str]:
    """The title and summary of the last answer, asking once more when it is not the
    JSON asked for; a 502 when the second answer is not either."""
    parsed = parse_insight(reply.content)
    if parsed is not None:
        return parsed
    messages.append(Message("user", RETRY_PROMPT, synthetic=True))
    again = await chat(messages, None)
    messages.append(Message("assistant", again.content))
    parsed = parse_insight(again.content)
    if parsed is None:
        raise BackendError(
            "the model did not answer with a JSON title and summary (asked twice): "
            + excerpt(again.content or "(empty)", 200)
        )
    return parsed
