"""Log-in, health, and what this server offers (libraries, plugins, LLM tools)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import get, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody

from kernel.auth import PUBLIC_OPT, PasswordTooLong, authenticate, issue_token
from kernel.deps import KernelDep
from kernel.types import InvalidParameter


class LoginRequest(msgspec.Struct):
    username: str
    password: str


class TokenResponse(msgspec.Struct):
    token: str


@post("/login", opt={PUBLIC_OPT: True}, status_code=200, summary="Exchange a password for a token")
async def login(kernel: KernelDep, data: JSONBody[LoginRequest]) -> TokenResponse:
    user = await asyncio.to_thread(authenticate, kernel.db, data.username, data.password)
    if user is None:
        raise NotAuthorizedException("wrong user name or password")
    secret = kernel.config.secret_key
    return TokenResponse(token=issue_token(secret, user.id, version=user.token_version))


@get("/health", opt={PUBLIC_OPT: True}, summary="Liveness and database check")
async def health(kernel: KernelDep) -> dict[str, Any]:
    def ping() -> None:
        with kernel.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    await asyncio.to_thread(ping)
    return {
        "status": "ok",
        "database": kernel.db.dialect,
        "plugins": kernel.registry.enabled_names(),
    }


@get("/libraries", summary="The libraries this server serves")
async def libraries(kernel: KernelDep) -> list[dict[str, object]]:
    return [library.to_json() for library in kernel.libraries]


@get("/tools", summary="The LLM-callable tools every enabled plugin offers")
async def tools(kernel: KernelDep) -> list[dict[str, Any]]:
    return [{"plugin": t.plugin, **t.to_openai()} for t in kernel.tools.values()]


def password_too_long_as_400(exc: PasswordTooLong) -> InvalidParameter:
    return InvalidParameter("password", str(exc))
