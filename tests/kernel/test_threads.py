"""``[kernel] threads`` sizes the event loop's pool for blocking work (asyncio's default,
CPUs + 4, when 0): a request's blocking calls run that many at once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from litestar import Router, get

from kernel import Plugin, hookimpl
from kernel.testing import harness

AT_ONCE = 20  # above asyncio's default (CPUs + 4) on up to 15 CPUs


@get("/at-once")
async def at_once() -> dict[str, int]:
    """Blocking calls that can only finish when AT_ONCE of them run at the same time."""
    barrier = threading.Barrier(AT_ONCE)
    await asyncio.gather(*(asyncio.to_thread(barrier.wait, 3) for _ in range(AT_ONCE)))
    return {"together": AT_ONCE}


class Blocking(Plugin[None]):
    @hookimpl
    def routes(self) -> list[Router]:
        return [Router("/", route_handlers=[at_once])]


def test_threads_setting_runs_that_many_at_once(tmp_path: Path) -> None:
    toml = "[kernel]\nthreads = 24\n"
    with harness(tmp_path, extra_plugins={"blocking": Blocking}, plugins_toml=toml) as h:
        response = h.get("/at-once")
        assert response.status_code == 200, response.text
        assert response.json() == {"together": AT_ONCE}


def test_threads_setting_bounds_them(tmp_path: Path) -> None:
    toml = "[kernel]\nthreads = 4\n"
    with harness(tmp_path, extra_plugins={"blocking": Blocking}, plugins_toml=toml) as h:
        assert h.get("/at-once").status_code == 500  # 4 threads never gather 20 at once
