"""hello: an example imageapi plugin that greets visitors and counts the greetings.

It shows the whole plugin contract in one page: settings validated from plugins.toml,
its own migration branch and table, a route that needs a token, and an LLM tool.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
from litestar import get
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, func, insert, select

from kernel import Tool, hookimpl
from kernel.core import Kernel
from kernel.deps import CurrentUser, KernelDep
from kernel.types import ToolContext

metadata = MetaData()
greetings = Table(
    "hello_greetings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("greeted_at", Float, nullable=False),
)


class HelloSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.hello]`` in plugins.toml."""

    greeting: str = "Hello"


def greet(kernel: Kernel, name: str) -> dict[str, object]:
    """Record a greeting and say how many times this name was greeted."""
    settings: HelloSettings = kernel.settings_for("hello")
    with kernel.db.write() as conn:
        conn.execute(insert(greetings).values(name=name, greeted_at=time.time()))
        count = conn.execute(
            select(func.count()).select_from(greetings).where(greetings.c.name == name)
        ).scalar_one()
    return {"message": f"{settings.greeting}, {name}!", "times": count}


@get("/hello")
async def hello_route(kernel: KernelDep, user: CurrentUser) -> dict[str, object]:
    return await asyncio.to_thread(greet, kernel, user.username)


class GreetParams(msgspec.Struct):
    name: str


async def greet_tool(params: GreetParams, ctx: ToolContext) -> dict[str, object]:
    return await asyncio.to_thread(greet, ctx.kernel, params.name)


@hookimpl
def plugin_settings() -> type[msgspec.Struct]:
    return HelloSettings


@hookimpl
def migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def routes() -> list[object]:
    return [hello_route]


@hookimpl
def tools() -> list[Tool]:
    return [
        Tool(
            name="greet",
            description="Greet someone by name and say how often they were greeted.",
            params=GreetParams,
            call=greet_tool,
        )
    ]
