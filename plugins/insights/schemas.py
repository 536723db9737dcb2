"""Request and response bodies of the insights routes (their OpenAPI schemas too)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec


class GenerateRequest(msgspec.Struct):
    """``POST /insights/generate``: one file, optional model and sampling options."""

    file_path: str
    library: str | int | None = None
    model: str | None = None
    num_ctx: Annotated[int, msgspec.Meta(ge=256, le=1_048_576)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=5)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    min_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


class AgenticRequest(GenerateRequest):
    """``POST /insights/generate/agentic``: also the backend and an iteration bound
    (clamped to ``AGENTIC_CHAT_MAX_ITERATIONS``)."""

    backend: str | None = None  # "local" (default) | "hybrid"
    max_iterations: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ChatRequest(AgenticRequest, kw_only=True):
    """``POST /insights/chat`` and ``/insights/chat/stream``: one turn on a file's
    current insight; ``amend`` stores the answer as a new insight with a new title."""

    user_message: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    amend: bool = False


class RewindRequest(msgspec.Struct):
    """``POST /insights/chat/rewind``: cut the chat before rendered message ``index``."""

    path: str
    index: Annotated[int, msgspec.Meta(ge=0)]
    library: str | int | None = None


class ToolUse(msgspec.Struct, omit_defaults=True):
    """A tool call that led to an answer; ``result`` cut at 2,000 characters."""

    name: str
    arguments: Any
    result: str | None
    result_truncated: bool = False


class ChatReply(msgspec.Struct):
    """One chat turn: the answer, the tools it called, how the loop went;
    ``amended_insight_id`` is the new insight's id when ``amend`` was asked."""

    insight_id: int
    reply: str
    backend: str
    model: str
    iterations: int
    iteration_cap_reached: bool
    truncated: bool
    tools: list[ToolUse]
    amended_insight_id: int | None = None


class ChatMessage(msgspec.Struct, omit_defaults=True):
    """A rendered message: ``images`` counts the pictures of the first user message;
    an assistant message carries ``tools`` (the calls that led up to it)."""

    index: int
    role: str
    content: str
    images: int = 0
    tools: list[ToolUse] | None = None


class ChatHistory(msgspec.Struct):
    insight_id: int
    file_path: str
    library: int
    backend: str
    model: str
    messages: list[ChatMessage]


class RateRequest(msgspec.Struct):
    insight_id: int
    rating: Literal["up", "down"] | None = None


class Insight(msgspec.Struct):
    """A stored insight; ``has_training_messages``: chat can continue it."""

    id: int
    file_path: str
    library: int
    content_hash: str | None
    title: str
    summary: str
    backend: str
    model: str
    is_current: bool
    rating: str | None
    created_at: float
    has_training_messages: bool


class GeneratedInsight(Insight):
    """A new insight, with how the agentic loop went (0 and [] for a single shot)."""

    iterations: int = 0
    tools_called: list[str] = []
    iteration_cap_reached: bool = False


class ModelInfo(msgspec.Struct):
    name: str
    capabilities: list[str] | None = None
    size: int | None = None
    parameter_size: str | None = None
    family: str | None = None


class ServerModels(msgspec.Struct):
    role: str
    url: str
    default_model: str
    reachable: bool
    models: list[ModelInfo]
    error: str | None = None


class OllamaModels(msgspec.Struct):
    servers: list[ServerModels]


class OpenRouterModels(msgspec.Struct):
    models: list[str]
    default_model: str | None
    configured: bool


def insight_of(row: Any) -> dict[str, Any]:
    # A transcript is a JSON list of messages; an empty one cannot be continued.
    has_transcript = (row.training_messages or "[]").strip() not in ("", "[]")
    return {
        "id": row.id,
        "file_path": row.rel_path,
        "library": row.library_id,
        "content_hash": row.content_hash,
        "title": row.title,
        "summary": row.summary,
        "backend": row.backend,
        "model": row.model,
        "is_current": bool(row.is_current),
        "rating": row.rating,
        "created_at": row.created_at,
        "has_training_messages": has_transcript,
    }
