"""A process that does what a server does for faces — scan, then drain the backlog tick
after tick — until it is killed. ``test_crash`` kills it with SIGKILL mid-backlog.

Configured entirely by the environment (DATABASE_URL, BASE_PATH, APOLLO_*, FACE_*).
"""

from __future__ import annotations

import asyncio
import os

from kernel.config import load_config
from kernel.core import Kernel


async def main() -> None:
    kernel = Kernel(load_config(os.environ, env_file=None), only=["faces"])
    kernel.migrate()
    await kernel.hooks.on_startup()
    await kernel.scanner.scan(full=True)
    while True:
        done = await kernel.hooks.drain_backlog(500)
        print("drained", done.get("faces", 0), flush=True)
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main())
