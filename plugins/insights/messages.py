"""The transcript: one message format stored in ``photo_insights.training_messages``
and translated to each backend's wire format when sent.

The stored form is close to Ollama's chat messages (``role``, ``content``, ``images`` as
base64, ``tool_calls`` with decoded arguments) plus the OpenAI fields a replay needs
(``tool_call_id``), so a transcript written by one backend can be replayed on the other:
chat continuation loads it, appends a user message and runs the same loop. Images stay
in the transcript (the first user message carries the photo the model saw); a hybrid
transcript has none, the local model's description being inlined as text.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(msgspec.Struct, omit_defaults=True):
    """One function call a model asked for. ``arguments`` is what the model sent:
    decoded JSON when it was an object, else the raw text (kept so the model sees its
    own mistake when the transcript is replayed)."""

    id: str
    name: str
    arguments: dict[str, Any] | str = msgspec.field(default_factory=dict)


class Message(msgspec.Struct, omit_defaults=True):
    """One transcript message; ``name`` is the tool's name on a ``tool`` message.

    ``synthetic`` marks a ``user`` message the server wrote (asking for an answer after
    the iteration cap, or once more for the JSON): the model sees it like any other, the
    rendered chat history does not show it as something the user said."""

    role: Role
    content: str = ""
    images: list[str] = msgspec.field(default_factory=list)
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    synthetic: bool = False


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[Message])


def dump(messages: list[Message]) -> str:
    return _ENCODER.encode(messages).decode()


def load(text: str | bytes) -> list[Message]:
    return _DECODER.decode(text)


def arguments_json(call: ToolCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return _ENCODER.encode(call.arguments).decode()


# --- Ollama /api/chat ---------------------------------------------------------------------------


def to_ollama(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        wire["images"] = message.images
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "function": {
                    "name": call.name,
                    # Ollama wants an object; a model's unparseable text goes back wrapped.
                    "arguments": call.arguments
                    if isinstance(call.arguments, dict)
                    else {"_raw": call.arguments},
                }
            }
            for call in message.tool_calls
        ]
    if message.role == "tool" and message.name:
        wire["tool_name"] = message.name
    return wire


# --- OpenAI chat completions (OpenRouter) -------------------------------------------------------


def to_openai(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    wire: dict[str, Any] = {"role": message.role}
    if message.images and message.role == "user":
        parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
        parts.extend(
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{image}"}}
            for image in message.images
        )
        wire["content"] = parts
    else:
        wire["content"] = message.content
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_json(call)},
            }
            for call in message.tool_calls
        ]
        if not message.content:
            wire["content"] = None
    return wire


def without_images(messages: list[Message]) -> list[Message]:
    """The transcript as a text-only model must see it."""
    return [msgspec.structs.replace(m, images=[]) if m.images else m for m in messages]
