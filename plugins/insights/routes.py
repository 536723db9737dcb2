"""The HTTP routes of the insights plugin.

Backend trouble maps to status codes here and only here: a backend that is not
configured is a 503 naming the variable to set, one that is down or answers nonsense a
502 with the reason, a request the configuration refuses (a model off the allowlist) a
400. The handlers receive their plugin instance as the ``plugin`` dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromQuery, JSONBody, QueryParameter

from kernel.deps import CurrentUser
from kernel.schemas import BAD_REQUEST

from . import Plugin, store
from .schemas import (
    AgenticRequest,
    GeneratedInsight,
    GenerateRequest,
    Insight,
    OllamaModels,
    OpenRouterModels,
    RateRequest,
    ServerModels,
    insight_of,
)
from .wire import BackendError, NotConfigured, Refused

log = logging.getLogger(__name__)

PluginDep = NamedDependency[Plugin]
PathQuery = Annotated[str, QueryParameter(name="path")]


@contextlib.contextmanager
def backend_errors(plugin: Plugin) -> Iterator[None]:
    """503 / 502 / 400 for what a backend call raised; the texts are redacted."""
    try:
        yield
    except NotConfigured as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except Refused as exc:
        raise HTTPException(status_code=400, detail=plugin.redact(str(exc))) from None
    except BackendError as exc:
        reason = plugin.redact(str(exc))
        log.warning("insights: backend failed: %s", reason)
        raise HTTPException(status_code=502, detail=reason) from None


@post("/insights/generate", summary="Write an insight for a photo (one model call)",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def generate(
    plugin: PluginDep, user: CurrentUser, data: JSONBody[GenerateRequest]
) -> GeneratedInsight:
    with backend_errors(plugin):
        done = await plugin.service.generate(data, user.id)
    return GeneratedInsight(**insight_of(done.row))


@post("/insights/generate/agentic", summary="Write an insight with a tool-calling loop",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def generate_agentic(
    plugin: PluginDep, user: CurrentUser, data: JSONBody[AgenticRequest]
) -> GeneratedInsight:
    with backend_errors(plugin):
        done = await plugin.service.generate_agentic(data, user.id)
    return GeneratedInsight(
        **insight_of(done.row),
        iterations=done.iterations,
        tools_called=list(done.tools_called),
        iteration_cap_reached=done.cap_reached,
    )


@get("/insights", summary="The current insight of a file", responses=BAD_REQUEST)
async def current_insight(
    plugin: PluginDep, file_path: PathQuery, library: FromQuery[str | None] = None
) -> Insight:
    resolved = plugin.kernel.libraries.resolve(library, file_path)
    row = await asyncio.to_thread(
        store.current, plugin.kernel.db, resolved.library.id, resolved.rel_path
    )
    if row is None:
        raise NotFoundException(f"no insight for {resolved.rel_path}")
    return Insight(**insight_of(row))


@get("/insights/all", summary="Every insight of a file, newest first", responses=BAD_REQUEST)
async def all_insights(
    plugin: PluginDep, file_path: PathQuery, library: FromQuery[str | None] = None
) -> list[Insight]:
    resolved = plugin.kernel.libraries.resolve(library, file_path)
    rows = await asyncio.to_thread(
        store.history, plugin.kernel.db, resolved.library.id, resolved.rel_path
    )
    return [Insight(**insight_of(row)) for row in rows]


@post("/insights/rate", summary="Rate an insight up or down (null clears) for training export",
      status_code=200, responses=BAD_REQUEST)  # fmt: skip
async def rate(plugin: PluginDep, data: JSONBody[RateRequest]) -> Insight:
    row = await asyncio.to_thread(store.rate, plugin.kernel.db, data.insight_id, data.rating)
    if row is None:
        raise NotFoundException(f"no insight {data.insight_id}")
    return Insight(**insight_of(row))


@get("/insights/models", summary="Each configured Ollama server's models and capabilities")
async def models(plugin: PluginDep) -> OllamaModels:
    with backend_errors(plugin):
        servers = await plugin.service.ollama.discover()
    return OllamaModels(servers=msgspec.convert(servers, list[ServerModels]))


@get("/insights/openrouter/models", summary="The OpenRouter models clients may pick")
async def openrouter_models(plugin: PluginDep) -> OpenRouterModels:
    env = plugin.env
    return OpenRouterModels(
        models=list(env.openrouter_allowed_models),
        default_model=env.openrouter_default_model,
        configured=env.openrouter_configured,
    )


ROUTES = [
    generate,
    generate_agentic,
    current_insight,
    all_insights,
    rate,
    models,
    openrouter_models,
]
