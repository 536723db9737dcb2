"""Log-in, health, and what this server offers (libraries, plugins, LLM tools)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgspec
from litestar import get, post
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from kernel.auth import PUBLIC_OPT, authenticate, issue_token
from kernel.deps import KernelDep
from kernel.schemas import BAD_REQUEST, LibraryInfo, Problem, PublicOperation

WRONG_PASSWORD = ResponseSpec(
    Problem, description="Wrong user name or password", generate_examples=False
)


class LoginRequest(msgspec.Struct):
    username: str
    password: str


class TokenResponse(msgspec.Struct):
    token: str


class WorkerInfo(msgspec.Struct):
    """A process that recorded a heartbeat recently (PostgreSQL scale-out)."""

    host: str
    pid: int
    roles: list[str]  # "http", "worker", "scan", "hash", plugin names
    started_at: float  # Unix time
    heartbeat_at: float  # Unix time of its last heartbeat


class Health(msgspec.Struct):
    status: str
    database: str  # the SQL dialect: "sqlite" or "postgresql"
    plugins: list[str]
    pid: int  # the serving process that answered (``serve --workers`` runs several)
    background: bool  # whether it is the one scanning, watching and catching up backlogs
    #: every process seen within three heartbeats (on PostgreSQL; empty on SQLite)
    workers: list[WorkerInfo] = []


class ToolFunction(msgspec.Struct):
    name: str
    description: str
    parameters: dict[str, Any]  # the JSON Schema of the tool's arguments


class ToolInfo(msgspec.Struct):
    """An LLM tool in the OpenAI / Ollama ``tools`` format, with the plugin offering it."""

    plugin: str
    type: str
    function: ToolFunction


@post(
    "/login",
    opt={PUBLIC_OPT: True},
    status_code=200,
    summary="Exchange a password for a token",
    operation_class=PublicOperation,
    responses={**BAD_REQUEST, 401: WRONG_PASSWORD},
)
async def login(kernel: KernelDep, data: JSONBody[LoginRequest]) -> TokenResponse:
    user = await asyncio.to_thread(authenticate, kernel.db, data.username, data.password)
    if user is None:
        raise NotAuthorizedException("wrong user name or password")
    secret = kernel.config.secret_key
    return TokenResponse(token=issue_token(secret, user.id, version=user.token_version))


@get(
    "/health",
    opt={PUBLIC_OPT: True},
    summary="Liveness and database check",
    operation_class=PublicOperation,
)
async def health(kernel: KernelDep) -> Health:
    def ping() -> list[WorkerInfo]:
        if kernel.claims.shared:
            return [msgspec.convert(w, WorkerInfo) for w in kernel.heartbeat.recent()]
        with kernel.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return []

    seen = await asyncio.to_thread(ping)
    return Health(
        "ok",
        kernel.db.dialect,
        kernel.registry.enabled_names(),
        os.getpid(),
        not kernel.serve_only,
        seen,
    )


@get("/libraries", summary="The libraries this server serves")
async def libraries(kernel: KernelDep) -> list[LibraryInfo]:
    return [LibraryInfo(library.id, library.name) for library in kernel.libraries]


@get("/tools", summary="The LLM-callable tools every enabled plugin offers")
async def tools(kernel: KernelDep) -> list[ToolInfo]:
    return [
        msgspec.convert({"plugin": t.plugin, **t.to_openai()}, ToolInfo)
        for t in kernel.tools.values()
    ]
