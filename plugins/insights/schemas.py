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
