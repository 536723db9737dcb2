"""Configuration of the insights plugin, from two places.

The environment (and ``.env``, which the kernel merged into ``config.env``) says which
LLM servers exist, with the Rust server's variable names and defaults: they describe the
machine, and existing deployments set them. ``[plugins.insights]`` in plugins.toml holds
the few knobs of this server's own behaviour (image size, response bounds, the geocoder's
User-Agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import msgspec

from kernel.config import ConfigError

DEFAULT_OLLAMA_MODEL = "nemotron-3-nano:30b"
DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_NOMINATIM_URL = "https://nominatim.openstreetmap.org"
CONNECT_TIMEOUT_SECONDS = 5.0


class InsightsSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.insights]`` (every key optional)."""

    #: the longest side of the JPEG a model sees (the render hook's preview, scaled down).
    image_max_side: Annotated[int, msgspec.Meta(ge=128, le=4096)] = 1024
    #: a backend answer (or one streamed line) larger than this is an error, not a 1 GiB
    #: allocation.
    max_response_mib: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16
    #: a tool's result is cut to this many characters before the model sees it.
    tool_result_max_chars: Annotated[int, msgspec.Meta(ge=500, le=1_000_000)] = 16_000
    #: a chat turn's context budget in tokens when the request names no ``num_ctx``
    #: (the history is trimmed to this minus 2,048; see the README).
    chat_context_tokens: Annotated[int, msgspec.Meta(ge=4096, le=1_048_576)] = 32_768
    #: Nominatim's usage policy asks for an application name and a way to reach its user.
    nominatim_user_agent: str = "imageapi/0.1 (self-hosted photo server; reverse geocoding)"
    #: coordinates are rounded to this many decimals before lookup and caching (3 = ~100 m).
    geocode_precision: Annotated[int, msgspec.Meta(ge=0, le=6)] = 3
    geocode_cache_size: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 10_000


@dataclass(frozen=True)
class OllamaServer:
    """One Ollama server and the model to use there."""

    role: str  # "primary" | "fallback"
    url: str
    model: str


@dataclass(frozen=True)
class Environment:
    """The LLM and geocoder variables, read once at start-up."""

    ollama: tuple[OllamaServer, ...]
    request_timeout: float
    openrouter_key: str | None
    openrouter_base_url: str
    openrouter_default_model: str | None
    openrouter_allowed_models: tuple[str, ...]
    openrouter_referer: str | None
    openrouter_title: str | None
    max_iterations: int
    nominatim_url: str

    @property
    def ollama_configured(self) -> bool:
        return bool(self.ollama)

    @property
    def openrouter_configured(self) -> bool:
        return bool(self.openrouter_key)

    @classmethod
    def read(cls, env: Mapping[str, str]) -> Environment:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        primary_url = get("OLLAMA_PRIMARY_URL") or get("OLLAMA_URL")
        primary_model = get("OLLAMA_PRIMARY_MODEL") or get("OLLAMA_MODEL") or DEFAULT_OLLAMA_MODEL
        servers: list[OllamaServer] = []
        if primary_url:
            servers.append(OllamaServer("primary", primary_url.rstrip("/"), primary_model))
        fallback_url = get("OLLAMA_FALLBACK_URL")
        if fallback_url:
            model = get("OLLAMA_FALLBACK_MODEL") or primary_model
            servers.append(OllamaServer("fallback", fallback_url.rstrip("/"), model))
        allowed = tuple(m.strip() for m in (get("OPENROUTER_ALLOWED_MODELS") or "").split(","))
        return cls(
            ollama=tuple(servers),
            request_timeout=_positive(env, "OLLAMA_REQUEST_TIMEOUT_SECONDS", 120.0),
            openrouter_key=get("OPENROUTER_API_KEY"),
            openrouter_base_url=(get("OPENROUTER_BASE_URL") or DEFAULT_OPENROUTER_BASE_URL).rstrip(
                "/"
            ),
            openrouter_default_model=get("OPENROUTER_DEFAULT_MODEL"),
            openrouter_allowed_models=tuple(m for m in allowed if m),
            openrouter_referer=get("OPENROUTER_HTTP_REFERER"),
            openrouter_title=get("OPENROUTER_APP_TITLE"),
            max_iterations=int(_positive(env, "AGENTIC_CHAT_MAX_ITERATIONS", 6, integer=True)),
            nominatim_url=(get("NOMINATIM_URL") or DEFAULT_NOMINATIM_URL).rstrip("/"),
        )


def _positive(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value
