"""One batch of the backlog as three overlapping stages, so that Apollo always has
``detect_concurrency`` calls to answer.

Photo after photo, a slot also waited for its photo's decoding and for its database
writes (three worker-thread hops and a commit each), and every such millisecond was one
without a call in flight: with 8 slots and 50 ms calls, little more than half of the
160 photos/s they allow. Here

* preparers (``PREPARERS`` worker threads at a time) decode and re-encode the next
  pictures while calls are on the wire, at most ``detect_concurrency`` ahead;
* callers hold a slot for the call alone;
* one writer stores the answers of up to ``GROUP_SECONDS`` in one transaction (one
  thread hop), the tags auto-bind needs read by one hook call for the group.

What is stored is unchanged, and so is when: an answer is written only after Apollo
gave it, so a kill loses the answers not written yet (at most ``GROUP_SECONDS`` of
them) and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kernel.types import FileRef

from . import images, store

if TYPE_CHECKING:
    from .pipeline import Pipeline

PREPARERS = 2  # decoding keeps ahead of 8 calls of 50 ms with room to spare
GROUP_SECONDS = 0.05  # answers written together: a few per transaction, none held longer


@dataclass
class Outcome:
    """What to store for one photo: its faces (``detected``; none: a ``no_faces``
    marker) or a ``failed`` marker with the reason."""

    file: FileRef
    faces: list[store.NewFace] = field(default_factory=list)
    status: str = "detected"
    error: str | None = None
    model_version: str | None = None


@dataclass
class Tally:
    """A drain's counts: photos stored (markers included) and transient failures."""

    stored: int = 0
    failures: int = 0


async def run(
    pipeline: Pipeline, files: list[FileRef], going: Callable[[], bool], tally: Tally
) -> None:
    """Detect and store ``files`` (claimed by the caller); no call starts once ``going()``
    is false, and the photos not called are left pending."""
    if not files:
        return
    todo = deque(files)
    callers = min(pipeline.settings.detect_concurrency, len(files))
    ready: asyncio.Queue[tuple[FileRef, images.Picture | images.NoPicture] | None]
    ready = asyncio.Queue(callers)
    answered: asyncio.Queue[Outcome | None] = asyncio.Queue()
    finished = asyncio.Event()

    async def prepare() -> None:
        while todo and going():
            file = todo.popleft()
            await ready.put((file, await pipeline.picture(file)))

    async def preparers() -> None:
        await asyncio.gather(*(prepare() for _ in range(min(PREPARERS, len(files)))))
        for _ in range(callers):
            await ready.put(None)

    async def call() -> None:
        while (item := await ready.get()) is not None:
            file, picture = item
            if not going():
                continue  # past the budget, or Apollo unreachable: a later tick's work
            outcome = await pipeline.call(file, picture)
            if outcome is None:
                tally.failures += 1
            else:
                answered.put_nowait(outcome)

    async def calls() -> None:
        await asyncio.gather(*(call() for _ in range(callers)))
        answered.put_nowait(None)
        finished.set()

    async def write() -> None:
        while True:
            group = [await answered.get()]
            if group[0] is not None:  # let a group gather, unless the calls are over
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GROUP_SECONDS):
                        await finished.wait()
            while not answered.empty():
                group.append(answered.get_nowait())
            outcomes = [o for o in group if o is not None]
            if outcomes:
                await pipeline.store(outcomes)
                tally.stored += len(outcomes)
            if len(outcomes) < len(group):
                return

    try:
        async with asyncio.TaskGroup() as tasks:
            for stage in (preparers, calls, write):
                tasks.create_task(stage())
    except ExceptionGroup as failed:  # the first failure, as a plain exception
        raise failed.exceptions[0] from None
