"""A stored transcript as a chat client sees it, and the two edits chat makes to it.

* ``render``: the user and assistant messages a person would see, in order. System
  prompts, the server's own prompts (``synthetic``) and tool traffic are not messages
  of their own: each assistant answer carries the tool calls that led up to it, with
  their results (cut at ``RESULT_SHOWN`` characters, flagged ``result_truncated``).
  Rendered index 0 is the first user message: the photo and its facts.
* ``rewind``: cut the transcript before a rendered message — that message, the
  scaffolding between it and the message before it, and everything after.
* ``fit``: the context budget. A history longer than ``num_ctx - 2048`` tokens (4 bytes
  a token) loses its oldest assistant tool-call messages with their results until it
  fits; the system prompt and the first user message (with its picture) never go, nor
  does the current turn's own tool traffic. The bound is soft: a turn may go over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from .messages import Message

RESULT_SHOWN = 2_000
RESERVED_TOKENS = 2_048
BYTES_PER_TOKEN = 4
#: What a picture costs in the budget: vision models encode an image to a fixed number
#: of tokens, whatever the length of its base64 text.
IMAGE_TOKENS = 768

_ENCODER = msgspec.json.Encoder()


@dataclass
class Rendered:
    """One rendered message; ``stored`` is its position in the transcript and ``start``
    where a rewind to it cuts (just after the rendered message before it)."""

    role: str
    content: str
    stored: int
    start: int
    images: int = 0
    tools: list[dict[str, Any]] | None = None


@dataclass
class _Pending:
    id: str
    name: str
    arguments: Any
    result: str | None = None
    done: bool = False


def shown_result(text: str) -> dict[str, Any]:
    """A tool result as a client sees it: at most ``RESULT_SHOWN`` characters."""
    if len(text) <= RESULT_SHOWN:
        return {"result": text}
    return {"result": text[:RESULT_SHOWN], "result_truncated": True}


def _use(call: _Pending) -> dict[str, Any]:
    use: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    use.update(shown_result(call.result) if call.result is not None else {"result": None})
    return use


def render(messages: list[Message]) -> list[Rendered]:
    out: list[Rendered] = []
    pending: list[_Pending] = []
    last = -1  # the stored position of the previous rendered message
    for position, message in enumerate(messages):
        if message.role == "system" or (message.role == "user" and message.synthetic):
            continue
        if message.role == "user":
            out.append(
                Rendered("user", message.content, position, last + 1, images=len(message.images))
            )
            last, pending = position, []
        elif message.role == "assistant" and message.tool_calls:
            pending.extend(_Pending(c.id, c.name, c.arguments) for c in message.tool_calls)
        elif message.role == "assistant":
            tools = [_use(call) for call in pending]
            out.append(Rendered("assistant", message.content, position, last + 1, tools=tools))
            last, pending = position, []
        elif message.role == "tool":
            _settle(pending, message)
    return out


def _settle(pending: list[_Pending], result: Message) -> None:
    """Give a tool result to its call: by id (ids repeat across iterations on Ollama, so
    the first open call with it), else by name, else the first open call."""
    open_calls = [c for c in pending if not c.done]
    match = (
        next((c for c in open_calls if result.tool_call_id and c.id == result.tool_call_id), None)
        or next((c for c in open_calls if result.name and c.name == result.name), None)
        or next(iter(open_calls), None)
    )
    if match is not None:
        match.result, match.done = result.content, True


class RewindRefused(ValueError):
    """The index cannot be rewound to (index 0, or past the end): a 400."""


def rewind(messages: list[Message], index: int) -> list[Message]:
    """The transcript without rendered message ``index`` and all that follows it."""
    rendered = render(messages)
    if index == 0:
        raise RewindRefused("index 0 (the photo and its facts) cannot be rewound")
    if not 0 < index < len(rendered):
        raise RewindRefused(f"index {index} is out of range: the chat has {len(rendered)} messages")
    return messages[: rendered[index].start]


# --- the context budget --------------------------------------------------------------------------


def tokens_of(message: Message) -> int:
    """A message's cost: its JSON (pictures aside) at 4 bytes a token, plus the pictures."""
    text = message if not message.images else msgspec.structs.replace(message, images=[])
    return len(_ENCODER.encode(text)) // BYTES_PER_TOKEN + IMAGE_TOKENS * len(message.images)


@dataclass
class Budget:
    """``fit`` keeps each message's cost, so a long history is measured once per turn."""

    num_ctx: int
    #: id → (message, cost); the message is held so its id is not reused meanwhile.
    costs: dict[int, tuple[Message, int]] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        return self.num_ctx - RESERVED_TOKENS

    def cost(self, message: Message) -> int:
        key = id(message)
        if key not in self.costs:
            self.costs[key] = (message, tokens_of(message))
        return self.costs[key][1]

    def fit(self, messages: list[Message], keep_from: int) -> int:
        """Drop the oldest tool-call messages (and their results) before ``keep_from``
        until ``messages`` fits; returns how many messages were dropped."""
        total = sum(self.cost(m) for m in messages)
        dropped = 0
        position = _first_user(messages) + 1
        while total > self.limit:
            while position < keep_from and not (
                messages[position].role == "assistant" and messages[position].tool_calls
            ):
                position += 1
            if position >= keep_from:
                break  # nothing left that may go: the bound is soft
            end = position + 1
            while end < keep_from and messages[end].role == "tool":
                end += 1
            total -= sum(self.cost(m) for m in messages[position:end])
            dropped += end - position
            keep_from -= end - position
            del messages[position:end]
        return dropped


def _first_user(messages: list[Message]) -> int:
    return next((n for n, m in enumerate(messages) if m.role == "user"), len(messages))
