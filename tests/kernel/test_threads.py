"""``[kernel] threads`` sizes the event loop's pool for blocking work (when 0: three on
SQLite, asyncio's default of CPUs + 4 on PostgreSQL): a request's blocking calls run that
many at once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from litestar import Router, get
from litestar.params import FromQuery

from kernel import Plugin, hookimpl
from kernel.testing import harness

AT_ONCE = 20  # above asyncio's default (CPUs + 4) on up to 15 CPUs


@get("/together")
async def together(count: FromQuery[int]) -> dict[str, int]:
    """``count`` blocking calls that can only finish when all of them run at the same
    time (each waits 2 s at most)."""
    barrier = threading.Barrier(count)
    await asyncio.gather(*(asyncio.to_thread(barrier.wait, 2) for _ in range(count)))
    return {"together": count}


class Blocking(Plugin[None]):
    @hookimpl
    def routes(self) -> list[Router]:
        return [Router("/", route_handlers=[together])]


def test_threads_setting_runs_that_many_at_once(tmp_path: Path) -> None:
    toml = "[kernel]\nthreads = 24\n"
    with harness(tmp_path, extra_plugins={"blocking": Blocking}, plugins_toml=toml) as h:
        response = h.get("/together", params={"count": AT_ONCE})
        assert response.status_code == 200, response.text
        assert response.json() == {"together": AT_ONCE}


def test_threads_setting_bounds_them(tmp_path: Path) -> None:
    toml = "[kernel]\nthreads = 4\n"
    with harness(tmp_path, extra_plugins={"blocking": Blocking}, plugins_toml=toml) as h:
        at_once = h.get("/together", params={"count": AT_ONCE})
        assert at_once.status_code == 500  # 4 threads never gather 20 at once


def test_on_sqlite_three_threads_by_default(tmp_path: Path) -> None:
    """A serving process's Python work shares one interpreter lock: on SQLite, with the
    data mostly in the page cache, more threads only hand it back and forth (the mixed
    benchmark served 8-17 % more requests with 3 or 2 than with asyncio's 6 on 2 CPUs)."""
    with harness(tmp_path, extra_plugins={"blocking": Blocking}) as h:
        if not h.kernel.db.is_sqlite:
            pytest.skip("PostgreSQL keeps asyncio's default: its queries wait on the network")
        assert h.get("/together", params={"count": 3}).json() == {"together": 3}
        assert h.get("/together", params={"count": 4}).status_code == 500


def test_a_scan_walks_and_writes_the_index_off_the_request_threads(tmp_path: Path) -> None:
    """The steps of a scan that take seconds on a large library (the walk, the index
    writes) run on the scanner's own threads: the serving process that scans keeps its
    few request threads for requests."""
    library = tmp_path / "library"
    (library / "2024").mkdir(parents=True)
    for n in range(3):
        (library / "2024" / f"{n}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([n]) * 64)
    threads: dict[str, set[str]] = {}

    def progress(phase: str, done: int, total: int | None) -> None:
        threads.setdefault(phase, set()).add(threading.current_thread().name)

    with harness(tmp_path, library=library) as h:
        h.run(h.kernel.scanner.scan, full=True, progress=progress)
    assert {"walk", "index"} <= threads.keys(), threads
    for phase in ("walk", "index"):
        assert all(name.startswith("imageapi-hash") for name in threads[phase]), threads
