"""Generating an insight: resolve the file, gather its context, talk to the backend,
store the result with its transcript.

* ``generate``: one Ollama call with the picture and the facts, asking for
  ``{title, summary}`` (Ollama's ``format`` holds the JSON schema), asked once more when
  the answer is not that JSON.
* ``generate_agentic`` with ``backend="local"``: the tool loop on Ollama (streamed
  NDJSON), staying on the server that answered first (a model's own transcript is not
  handed to another model half-way, unless its server goes away).
* ``backend="hybrid"``: the local vision model describes the picture; the description
  is inlined as text and the loop runs on OpenRouter, so the transcript holds no image
  and can be replayed on either backend.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException

from kernel.types import FileRef, ToolContext

from . import agent, context, store
from .messages import Message, dump
from .ollama import Ollama, options_from
from .openrouter import OpenRouter
from .settings import CONNECT_TIMEOUT_SECONDS, Environment, InsightsSettings
from .wire import BackendError, NotConfigured, Refused, Reply

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx

    from kernel.core import Kernel

    from .locks import FileLocks

LOCAL, HYBRID = "local", "hybrid"
DESCRIBE_PROMPT = (
    "Describe this photo in detail for someone who cannot see it: the people (how many,"
    " what they do, no guesses at names), the place, the objects, the light, the mood,"
    " any text visible. Plain prose, no lists."
)


@dataclass
class Generated:
    row: Any
    iterations: int = 0
    tools_called: tuple[str, ...] = ()
    cap_reached: bool = False


async def _quiet(_delta: str) -> None:
    """Streamed deltas are not shown to anyone during generation (chat shows them)."""


class InsightService:
    """The backends and storage of one plugin instance."""

    def __init__(
        self, kernel: Kernel, settings: InsightsSettings, env: Environment, locks: FileLocks
    ) -> None:
        self.kernel = kernel
        self.settings = settings
        self.env = env
        self.locks = locks
        self._http: httpx.AsyncClient | None = None
        self._ollama: Ollama | None = None
        self._openrouter: OpenRouter | None = None

    # --- resources ----------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """One client (one connection pool) for every backend, made in the loop that
        first needs it; closed by ``close``."""
        if self._http is None:
            import httpx

            timeout = httpx.Timeout(self.env.request_timeout, connect=CONNECT_TIMEOUT_SECONDS)
            self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._http

    @property
    def ollama(self) -> Ollama:
        if self._ollama is None:
            self._ollama = Ollama(self.env, self.http, self.settings.max_response_mib << 20)
        return self._ollama

    @property
    def openrouter(self) -> OpenRouter:
        if self._openrouter is None:
            self._openrouter = OpenRouter(self.env, self.http, self.settings.max_response_mib << 20)
        return self._openrouter

    async def close(self) -> None:
        http, self._http = self._http, None
        self._ollama = self._openrouter = None
        if http is not None:
            await http.aclose()

    # --- files --------------------------------------------------------------------------------

    async def file(self, library: str | int | None, path: str) -> FileRef:
        """The indexed file at a client's path (through the kernel's resolver)."""
        resolved = self.kernel.libraries.resolve(library, path)
        ref = await asyncio.to_thread(self.kernel.index.get, resolved.library.id, resolved.rel_path)
        if ref is None:
            raise NotFoundException(f"{resolved.rel_path} is not a photo or video of the index")
        return ref

    def library_name(self, library_id: int) -> str:
        return self.kernel.libraries.by_id(library_id).name

    async def _context(self, ref: FileRef, user_id: int | None) -> context.PhotoContext:
        return await context.gather(
            self.kernel,
            ref,
            self.library_name(ref.library_id),
            user_id,
            max_side=self.settings.image_max_side,
        )

    async def _save(
        self, ref: FileRef, title: str, summary: str, backend: str, model: str, messages: list
    ) -> Any:
        new = store.NewInsight(
            library_id=ref.library_id,
            rel_path=ref.rel_path,
            content_hash=ref.content_hash,
            title=title,
            summary=summary,
            backend=backend,
            model=model,
            training_messages=dump(messages),
        )
        async with self.locks(ref.library_id, ref.rel_path):
            return await asyncio.to_thread(store.store, self.kernel.db, new)

    # --- single shot --------------------------------------------------------------------------

    async def generate(self, request: Any, user_id: int | None) -> Generated:
        self.ollama.require()
        ref = await self.file(request.library, request.file_path)
        index, caps = await self.ollama.first_capabilities(request.model)
        ctx = await self._context(ref, user_id)
        images = [ctx.image] if ctx.image and (caps is None or "vision" in caps) else []
        messages = [
            Message("system", agent.SINGLE_SYSTEM_PROMPT),
            Message(
                "user",
                "Write the insight for this photo.\n\n" + ctx.text(bool(images)),
                images=images,
            ),
        ]
        options = options_from(request)
        where = {"index": index}

        async def chat(history: list[Message], _tools: Any) -> Reply:
            reply = await self.ollama.chat(
                history,
                model=request.model,
                options=options,
                format=agent.INSIGHT_SCHEMA,
                start=where["index"],
            )
            where["index"] = reply.server_index
            return reply

        reply = await chat(messages, None)
        messages.append(Message("assistant", reply.content))
        title, summary = await agent.finish(chat, messages, reply)
        model = self.ollama.model_at(where["index"], request.model)
        return Generated(await self._save(ref, title, summary, LOCAL, model, messages))

    # --- agentic ------------------------------------------------------------------------------

    def iterations_for(self, requested: int | None) -> int:
        """The request's ``max_iterations`` clamped to ``AGENTIC_CHAT_MAX_ITERATIONS``."""
        cap = self.env.max_iterations
        return cap if requested is None else max(1, min(requested, cap))

    async def generate_agentic(self, request: Any, user_id: int | None) -> Generated:
        backend = (request.backend or LOCAL).strip().lower()
        if backend not in (LOCAL, HYBRID):
            raise Refused(f"backend must be {LOCAL!r} or {HYBRID!r}, not {request.backend!r}")
        if backend == HYBRID:
            chosen = self.openrouter.choose_model(request.model)  # 400/503 before any work
        self.ollama.require()
        ref = await self.file(request.library, request.file_path)
        tools = self.kernel.tools
        tool_ctx = ToolContext(
            self.kernel, user_id, result_limit=self.settings.tool_result_max_chars
        )
        options = options_from(request)
        description: str | None = None
        where = {"index": 0}
        if backend == LOCAL:
            index, caps = await self.ollama.first_capabilities(request.model)
            model_name = self.ollama.model_at(index, request.model)
            if caps is not None and "tools" not in caps:
                raise Refused(f"model {model_name!r} cannot call tools (Ollama capabilities)")
            ctx = await self._context(ref, user_id)
            images = [ctx.image] if ctx.image and (caps is None or "vision" in caps) else []
            where["index"] = index

            async def chat(history: list[Message], offered: Any) -> Reply:
                reply = await self.ollama.chat(
                    history,
                    model=request.model,
                    tools=offered,
                    options=options,
                    on_delta=_quiet,
                    start=where["index"],
                )
                where["index"] = reply.server_index
                return reply

        else:
            ctx = await self._context(ref, user_id)
            images = []
            description = await self._describe(ctx) if ctx.image else None

            async def chat(history: list[Message], offered: Any) -> Reply:
                return await self.openrouter.chat(
                    history, model=chosen, tools=offered, options=options, on_delta=_quiet
                )

        text = "Write the insight for this photo.\n\n" + ctx.text(bool(images or description))
        if description:
            text += "\nWhat the picture shows (described by a local vision model): "
            text += description
        messages = [
            Message("system", agent.AGENTIC_SYSTEM_PROMPT),
            Message("user", text, images=images),
        ]
        result = await agent.run(
            chat,
            messages,
            tools,
            tool_ctx,
            max_iterations=self.iterations_for(request.max_iterations),
            result_limit=self.settings.tool_result_max_chars,
            tool_timeout=self.env.request_timeout,
        )
        title, summary = await agent.finish(chat, messages, result.reply)
        model = chosen if backend == HYBRID else self.ollama.model_at(where["index"], request.model)
        row = await self._save(ref, title, summary, backend, model, messages)
        return Generated(row, result.iterations, tuple(result.tools_called), result.cap_reached)

    async def _describe(self, ctx: context.PhotoContext) -> str:
        """The local vision model's description of the picture (hybrid's first step)."""
        index, caps = await self.ollama.first_capabilities(None)
        if caps is not None and "vision" not in caps:
            model = self.ollama.model_at(index, None)
            raise NotConfigured(
                "OLLAMA_PRIMARY_MODEL", f"a local vision model ({model!r} has no vision)"
            )
        reply = await self.ollama.chat(
            [Message("user", DESCRIBE_PROMPT, images=[ctx.image or ""])], start=index
        )
        if not reply.content.strip():
            raise BackendError("the local vision model described nothing")
        return reply.content.strip()
