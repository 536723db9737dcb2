"""Detection: which photos go to Apollo, when, and what is stored.

The database is the queue: a photo (content hash) without a row is pending. ``on_hashed``
starts a detection at once when a slot is free and otherwise leaves the photo to
``drain``, which every scanner tick takes up to ``backlog_max_per_tick`` pending photos
with an anti-join and runs them through ``backlog`` (pictures prepared ahead, calls
``detect_concurrency`` at a time, answers written in groups). A content hash
being detected is *in flight* and never sent twice at once; its rows are written in one
transaction only after Apollo answered, so a kill at any moment loses only calls whose
answer was not stored yet, and those photos are still pending at the next start.

Failures: a transient one (Apollo down, slow, 5xx) stores nothing and puts the photo
(or, when Apollo cannot be reached at all, the whole backlog) on an exponential backoff
held in memory; a refusal (4xx), a broken answer or an unreadable photo stores a
``failed`` marker with the reason, which ``imageapi faces retry-failed`` clears.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, exists, select

from kernel.tables import files
from kernel.types import FileRef

from . import backlog, images, persons, store
from .apollo import Apollo, BadResponse, Rejected, Transient
from .settings import FaceSettings
from .tables import face_detections as fd
from .tables import name_key
from .tables import persons as persons_table

if TYPE_CHECKING:
    import numpy as np

    from kernel.core import Kernel

log = logging.getLogger(__name__)

STORED, TRANSIENT, SKIPPED = "stored", "transient", "skipped"


def cosine(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``matrix`` with ``vector`` (0 where a norm is 0)."""
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(vector))
    dots = matrix @ vector
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


class Pipeline:
    """The detection work of one plugin instance (one Apollo client)."""

    def __init__(self, kernel: Kernel, settings: FaceSettings, apollo: Apollo) -> None:
        self.kernel = kernel
        self.settings = settings
        self.apollo = apollo
        self.in_flight: set[str] = set()
        self.retry_at: dict[str, tuple[float, int]] = {}  # hash -> (monotonic time, failures)
        self.paused_until = 0.0
        self.pauses = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.flow: backlog.Flow | None = None
        # Pictures are decoded (a 24 MP JPEG: tens of ms) on threads of their own, the
        # backlog's up to ``detect_concurrency`` ahead: on the event loop's few threads
        # they would keep the requests of the process that runs the backlog waiting.
        decoders = max(1, min(settings.detect_concurrency, os.cpu_count() or 1))
        self.decoder = ThreadPoolExecutor(decoders, thread_name_prefix="imageapi-faces")

    # --- what goes to Apollo -----------------------------------------------------------------

    def wanted(self, file: FileRef) -> bool:
        """A hashed photo outside ``EXCLUDED_DIRS``: videos and excluded paths never go."""
        return (
            file.media_type == "photo"
            and file.content_hash is not None
            and not self.kernel.excluder.is_excluded(file.rel_path)
        )

    def waiting(self, content_hash: str, now: float) -> bool:
        due = self.retry_at.get(content_hash)
        return due is not None and due[0] > now

    def _backoff(self, content_hash: str, exc: Transient) -> None:
        _due, failures = self.retry_at.get(content_hash, (0.0, 0))
        delay = min(self.settings.retry_base_seconds * 2**failures, self.settings.retry_max_seconds)
        self.retry_at[content_hash] = (time.monotonic() + delay, failures + 1)
        log.warning("faces: detection of %s failed (%s); retry in %.0f s", content_hash, exc, delay)

    def _pause(self, exc: Transient) -> None:
        """Apollo cannot be reached: no call at all until the backoff has passed."""
        s = self.settings
        delay = min(s.retry_base_seconds * 2**self.pauses, s.retry_max_seconds)
        self.pauses += 1
        self.paused_until = time.monotonic() + delay
        log.warning("faces: Apollo unreachable (%s); detection paused for %.0f s", exc, delay)

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    # --- ingest --------------------------------------------------------------------------------

    async def on_hashed(self, file: FileRef) -> None:
        """Detect now when a slot is free; otherwise the next drain will (never blocks)."""
        h = file.content_hash
        if not self.wanted(file) or h is None or h in self.in_flight or self.paused():
            return
        if self.waiting(h, time.monotonic()):
            return
        if len(self.in_flight) >= self.settings.detect_concurrency:
            return
        self.in_flight.add(h)
        task = asyncio.create_task(self._detect_if_new(file), name=f"faces: {file.rel_path}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _detect_if_new(self, file: FileRef) -> None:
        """Detect ``file``'s content unless it has rows; on PostgreSQL only once claimed
        (the claim is on the content's first file, see ``store.backlog_query``)."""
        h = file.content_hash or ""
        claimed: FileRef | None = None
        try:
            if self.kernel.claims.shared:
                claimed = await asyncio.to_thread(self._claim_content, h)
                if claimed is None:  # stored, or another process is on it
                    return
                file = claimed
            elif await asyncio.to_thread(self._is_scanned, h):
                return
            await self.process(file, claimed=True)
        except Exception:
            log.exception("faces: detection of %s failed", file.rel_path)
        finally:
            self.in_flight.discard(h)
            if claimed is not None:
                await asyncio.to_thread(self.release, [claimed.id])

    def _claim_content(self, content_hash: str) -> FileRef | None:
        query = store.backlog_query(self.kernel.excluder).where(
            files.c.content_hash == content_hash
        )
        refs = self.kernel.index.refs(self.kernel.claims.take(backlog.QUEUE, query, 1))
        return refs[0] if refs else None

    def _is_scanned(self, content_hash: str | None) -> bool:
        with self.kernel.db.read() as conn:
            return store.is_scanned(conn, content_hash or "")

    async def drain(self, limit: int, budget_seconds: float) -> int:
        """Detect up to ``min(limit, backlog_max_per_tick)`` pending photos; returns how
        many were stored. Failed calls do not count against the cap; no new call starts
        after ``budget_seconds`` or once Apollo proved unreachable. Detections that
        ``on_hashed`` started are waited for first."""
        cap = min(limit, self.settings.backlog_max_per_tick)
        started = time.monotonic()
        if self.tasks:  # the ingest detections under way finish first (never sent twice)
            await asyncio.wait(list(self.tasks), timeout=budget_seconds)
        if self.flow is None:
            self.flow = backlog.Flow(self)
        budget = max(0.0, budget_seconds - (time.monotonic() - started))
        return await self.flow.drain(cap, budget)

    def candidates(self, limit: int, skip: set[str]) -> list[FileRef]:
        """Up to ``limit`` pending photos, one file per content hash, none of ``skip``;
        on PostgreSQL claimed for this process (``release`` once stored)."""
        query = store.backlog_query(self.kernel.excluder)
        if skip:
            query = query.where(files.c.content_hash.notin_(sorted(skip)))
        return self.kernel.index.refs(self.kernel.claims.take(backlog.QUEUE, query, limit))

    def release(self, file_ids: list[int]) -> None:
        """Give back claims (after the photos' rows are committed, or on giving up)."""
        self.kernel.claims.release(backlog.QUEUE, file_ids)

    # --- one photo -----------------------------------------------------------------------------

    async def process(self, file: FileRef, *, claimed: bool = False) -> str:
        """Detect one photo and store the outcome (unless it got rows meanwhile)."""
        h = file.content_hash or ""
        if not claimed:
            if h in self.in_flight:
                return SKIPPED
            self.in_flight.add(h)
        try:
            outcome = await self.call(file, await self.picture(file))
            if outcome is None:
                return TRANSIENT
            await self.store([outcome])
            return STORED
        finally:
            if not claimed:
                self.in_flight.discard(h)

    async def picture(self, file: FileRef) -> images.Picture | images.NoPicture:
        """The upright JPEG to send, or why there is none (stored as a failure)."""
        try:
            return await self.photo(file)
        except images.NoPicture as exc:
            return exc

    async def call(
        self, file: FileRef, picture: images.Picture | images.NoPicture
    ) -> backlog.Outcome | None:
        """Apollo's answer as what to store; None after a transient failure (backoff or
        pause set, nothing to store)."""
        h = file.content_hash or ""
        try:
            if isinstance(picture, images.NoPicture):
                raise picture
            faces, model_version = await self.faces(picture)
        except Transient as exc:
            if exc.unreachable:
                self._pause(exc)
            else:
                self._backoff(h, exc)
            return None
        except (Rejected, BadResponse, images.NoPicture) as exc:
            log.info("faces: %s failed: %s", file.rel_path, exc)
            return backlog.Outcome(file, status="failed", error=str(exc)[:1000])
        return backlog.Outcome(file, faces, model_version=model_version)

    async def store(self, outcomes: list[backlog.Outcome]) -> None:
        """Store outcomes in one transaction, faces auto-bound on the way."""
        keys = await self._tag_keys([o.file for o in outcomes if o.faces])
        await asyncio.to_thread(self._write, outcomes, keys)
        for outcome in outcomes:
            self.retry_at.pop(outcome.file.content_hash or "", None)
            log.debug("faces: stored %s %s", outcome.file.rel_path, outcome.status)
        if any(o.status == "detected" for o in outcomes):
            self.pauses = 0

    def _write(self, outcomes: list[backlog.Outcome], keys: dict[int, list[str]]) -> None:
        detections = [
            store.Detection(
                o.file.library_id, o.file.content_hash or "", o.file.rel_path, o.faces,
                o.status, o.error, o.model_version,
            )
            for o in outcomes
        ]  # fmt: skip
        tags = {o.file.content_hash: keys[o.file.id] for o in outcomes if keys.get(o.file.id)}

        def bind(conn: Connection, detection: store.Detection) -> list[store.NewFace]:
            found = tags.get(detection.content_hash)
            faces = list(detection.faces)
            return self._bind_in(conn, found, faces) if found else faces

        with self.kernel.db.write() as conn:
            store.write_detections(conn, detections, bind if tags else None)

    async def detect(self, file: FileRef) -> tuple[list[store.NewFace], str]:
        """Apollo's faces of the upright photo, boxes normalised (raises on failure)."""
        return await self.faces(await self.photo(file))

    async def photo(self, file: FileRef) -> images.Picture:
        """The upright picture of ``file`` to send (raises ``images.NoPicture``)."""
        return await images.photo(self.kernel, file, self.settings.detect_max_side, self.decoder)

    async def faces(self, picture: images.Picture) -> tuple[list[store.NewFace], str]:
        """Apollo's faces of a prepared picture, boxes normalised (raises on failure)."""
        import numpy as np

        answer = await self.apollo.detect(picture.jpeg)
        faces = [
            store.NewFace(
                store.clamp_box(*face.bbox, answer.width, answer.height),
                np.asarray(face.embedding, dtype=np.float32),
                float(face.confidence),
                answer.model_version,
            )
            for face in answer.faces
        ]
        return [f for f in faces if f.bbox[2] > 0 and f.bbox[3] > 0], answer.model_version

    # --- auto-bind -----------------------------------------------------------------------------

    async def autobind(self, file: FileRef, faces: list[store.NewFace]) -> list[store.NewFace]:
        """Bind new faces to persons named by the photo's tags (no tags plugin, no
        auto-bind)."""
        keys = (await self._tag_keys([file])).get(file.id)
        if not keys:
            return faces
        return await asyncio.to_thread(self._bind, keys, faces)

    async def _tag_keys(self, files: list[FileRef]) -> dict[int, list[str]]:
        """Case-folded tag names of each file (by id) while any person exists, read
        through the ``file_extras`` hook in one call."""
        if not files or not await asyncio.to_thread(self._any_person):
            return {}
        names: dict[int, set[str]] = {}
        for extras in await self.kernel.hooks.file_extras(files, None):
            for file in files:
                for tag in (extras.get(file.id) or {}).get("tags") or ():
                    name = tag.get("name") if isinstance(tag, dict) else tag
                    if isinstance(name, str):
                        names.setdefault(file.id, set()).add(name_key(name))
        return {file_id: sorted(keys) for file_id, keys in names.items()}

    def _any_person(self) -> bool:
        with self.kernel.db.read() as conn:
            return conn.execute(select(exists().where(persons_table.c.id.isnot(None)))).scalar_one()

    def _bind(self, keys: list[str], faces: list[store.NewFace]) -> list[store.NewFace]:
        with self.kernel.db.read() as conn:
            return self._bind_in(conn, keys, faces)

    def _bind_in(
        self, conn: Connection, keys: list[str], faces: list[store.NewFace]
    ) -> list[store.NewFace]:
        import numpy as np

        bound = list(faces)
        for person in persons.by_name_keys(conn, keys):
            free = [i for i, f in enumerate(bound) if f.person_id is None]
            if not free:
                break
            _rows, matrix = store.embeddings(conn, fd.c.person_id == person.id)
            has_faces = conn.execute(
                select(exists().where(fd.c.person_id == person.id))
            ).scalar_one()
            if not has_faces:  # unconditional; the face becomes the cover on insert
                chosen = max(free, key=lambda i: bound[i].confidence or 0.0)
            elif len(matrix):
                mean = matrix.mean(axis=0)
                candidates = np.stack([bound[i].embedding for i in free])
                scores = cosine(candidates, mean)
                best = int(np.argmax(scores))
                if scores[best] < self.settings.autobind_min_cos:
                    continue
                chosen = free[best]
            else:
                continue  # only forced faces: nothing to compare with
            face = bound[chosen]
            bound[chosen] = store.NewFace(
                face.bbox, face.embedding, face.confidence, face.model_version, person.id
            )
        return bound

    async def close(self) -> None:
        if self.flow is not None:
            await self.flow.close()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.decoder.shutdown(wait=False, cancel_futures=True)
