"""Face rows: what a photo's detection stored, the backlog, and the face routes' reads
and writes. Blocking (SQLAlchemy Core): callers run it in a worker thread.

A photo (a content hash) is *scanned* once it has a row of any status, manual faces
included: that is what keeps a photo whose only faces were drawn by hand from being
detected again, and what makes the second copy of a photo cost no Apollo call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, and_, delete, exists, func, select, update
from sqlalchemy.sql.util import ClauseAdapter

from kernel.db import Database
from kernel.excluder import PathExcluder
from kernel.index import FILE_COLUMNS
from kernel.tables import files

from . import persons
from .apollo import EMBEDDING_DIM
from .tables import face_detections as fd
from .tables import persons as persons_table

if TYPE_CHECKING:
    import numpy as np

ZERO_VECTOR = bytes(EMBEDDING_DIM * 4)  # a forced manual face: bound by hand, never clusters


@dataclass(frozen=True)
class NewFace:
    """A face to store: box normalised to the upright photo, float32 embedding."""

    bbox: tuple[float, float, float, float]
    embedding: np.ndarray | None  # None: forced, the zero vector
    confidence: float | None
    model_version: str | None
    person_id: int | None = None


def clamp_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple:
    """A pixel box of a ``width`` x ``height`` picture as 0..1 fractions, inside it."""
    left = min(max(x / width, 0.0), 1.0)
    top = min(max(y / height, 0.0), 1.0)
    right = min(max((x + w) / width, 0.0), 1.0)
    bottom = min(max((y + h) / height, 0.0), 1.0)
    return (left, top, max(right - left, 0.0), max(bottom - top, 0.0))


def is_scanned(conn: Connection, content_hash: str) -> bool:
    return conn.execute(select(exists().where(fd.c.content_hash == content_hash))).scalar_one()


def backlog_query(excluder: PathExcluder) -> Select[Any]:
    """Pending photos, one file per content hash, oldest first (no limit): present,
    hashed photos outside ``EXCLUDED_DIRS`` whose content has no row (an anti-join on
    ``ix_face_hash``).

    Of the copies of one content, only the *first* (lowest ``files.id`` among the
    copies that qualify) is ever returned. That file's id is the content's key in the
    ``faces`` claims queue (claims key by ``files.id``, faces by content hash): every
    process asking for a content picks the same file, so two workers that meet two
    copies of a photo in two libraries still claim one key and make one call.
    """
    copy = files.alias("copy")
    first = (
        select(func.min(copy.c.id))
        .where(
            copy.c.content_hash == files.c.content_hash,
            *_wanted(copy),
            ClauseAdapter(copy).traverse(excluder.sql_clause()),
        )
        .scalar_subquery()
    )
    return (
        select(*FILE_COLUMNS)
        .where(
            *_wanted(files),
            ~exists().where(fd.c.content_hash == files.c.content_hash),
            excluder.sql_clause(),
            files.c.id == first,
        )
        .order_by(files.c.id)
    )


def _wanted(table: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        table.c.status == "present",
        table.c.media_type == "photo",
        table.c.content_hash.isnot(None),
        table.c.error.is_(None),
    )


def _row_values(library_id: int, content_hash: str, rel_path: str, now: float) -> dict:
    return {
        "library_id": library_id, "content_hash": content_hash, "rel_path": rel_path,
        "created_at": now,
    }  # fmt: skip


def store_detection(
    db: Database,
    library_id: int,
    content_hash: str,
    rel_path: str,
    faces: Sequence[NewFace],
    **options: Any,
) -> list[int] | None:
    """``write_detection`` in a transaction of its own."""
    with db.write() as conn:
        return write_detection(conn, library_id, content_hash, rel_path, faces, **options)


def write_detection(
    conn: Connection,
    library_id: int,
    content_hash: str,
    rel_path: str,
    faces: Sequence[NewFace],
    *,
    status: str = "detected",
    error: str | None = None,
    model_version: str | None = None,
    replace_auto: bool = False,
) -> list[int] | None:
    """Store what a detection found: face rows, or one ``no_faces``/``failed`` marker.

    Without ``replace_auto`` nothing is written when the photo already has rows
    (another copy, another process, a user's manual face got there first) and None is
    returned; with it (a rerun) the photo's automatic rows, markers included, are
    replaced in the same transaction, and manual rows stay.
    """
    base = _row_values(library_id, content_hash, rel_path, time.time())
    if replace_auto:
        conn.execute(delete(fd).where(fd.c.content_hash == content_hash, fd.c.source == "auto"))
        _repair_covers(conn)
    elif is_scanned(conn, content_hash):
        return None
    if not faces:
        marker = status if status != "detected" else "no_faces"
        if replace_auto and marker == "no_faces" and is_scanned(conn, content_hash):
            return []  # manual faces remain: they mark the photo scanned
        conn.execute(
            fd.insert().values(
                **base, source="auto", status=marker, error=error, model_version=model_version
            )
        )
        return []
    return [insert_face(conn, base, face, "auto") for face in faces]


@dataclass(frozen=True)
class Detection:
    """One photo's outcome for ``write_detections``."""

    library_id: int
    content_hash: str
    rel_path: str
    faces: Sequence[NewFace]
    status: str = "detected"
    error: str | None = None
    model_version: str | None = None


def write_detections(
    conn: Connection,
    detections: Sequence[Detection],
    bind: Callable[[Connection, Detection], Sequence[NewFace]] | None = None,
) -> int:
    """``write_detection`` (not a rerun) for several photos in one transaction: one
    query for those that have rows already, and one multi-row insert for every row that
    names no person (a face bound by ``bind``, which sees the faces bound before it,
    goes alone: it may become its person's cover). Returns the photos written."""
    scanned = set(
        conn.execute(
            select(fd.c.content_hash)
            .where(fd.c.content_hash.in_({d.content_hash for d in detections}))
            .distinct()
        ).scalars()
    )
    now, rows, written = time.time(), [], 0
    for d in detections:
        if d.content_hash in scanned:
            continue  # another copy, another process, a manual face got there first
        scanned.add(d.content_hash)
        written += 1
        base = _row_values(d.library_id, d.content_hash, d.rel_path, now)
        faces = bind(conn, d) if bind is not None and d.faces else d.faces
        if not faces:
            marker = d.status if d.status != "detected" else "no_faces"
            rows.append(
                {**base, **_NO_FACE, "status": marker, "error": d.error,
                 "model_version": d.model_version}
            )  # fmt: skip
        for face in faces:
            if face.person_id is not None:
                insert_face(conn, base, face, "auto")
            else:
                rows.append({**base, **_face_values(face, "auto"), "error": None})
    if rows:
        conn.execute(fd.insert(), rows)
    return written


_NO_FACE = dict.fromkeys(("bbox_x", "bbox_y", "bbox_w", "bbox_h", "embedding", "confidence"))
_NO_FACE |= {"source": "auto", "person_id": None}


def _face_values(face: NewFace, source: str) -> dict[str, Any]:
    x, y, w, h = face.bbox
    blob = ZERO_VECTOR if face.embedding is None else face.embedding.astype("<f4").tobytes()
    return {
        "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "embedding": blob,
        "confidence": face.confidence, "source": source, "status": "detected",
        "person_id": face.person_id, "model_version": face.model_version,
    }  # fmt: skip


def insert_face(conn: Connection, base: dict, face: NewFace, source: str) -> int:
    face_id = conn.execute(
        fd.insert().values(**base, **_face_values(face, source))
    ).inserted_primary_key[0]
    if face.person_id is not None:
        persons.adopt_cover(conn, face.person_id, int(face_id))
    return int(face_id)


def add_manual(
    db: Database, library_id: int, content_hash: str, rel_path: str, face: NewFace
) -> int:
    with db.write() as conn:
        if face.person_id is not None:
            persons.require(conn, face.person_id)
        base = _row_values(library_id, content_hash, rel_path, time.time())
        return insert_face(conn, base, face, "manual")


def _repair_covers(conn: Connection) -> None:
    """Covers naming a face that is gone, or no longer the person's, pick another face."""
    stale = conn.execute(
        select(persons_table.c.id).where(
            persons_table.c.cover_face_id.isnot(None),
            ~exists().where(
                fd.c.id == persons_table.c.cover_face_id, fd.c.person_id == persons_table.c.id
            ),
        )
    ).scalars()
    for person_id in list(stale):
        persons.reset_cover(conn, person_id)


FACE_COLUMNS = (
    fd.c.id, fd.c.library_id, fd.c.content_hash, fd.c.rel_path, fd.c.bbox_x, fd.c.bbox_y,
    fd.c.bbox_w, fd.c.bbox_h, fd.c.confidence, fd.c.source, fd.c.person_id,
    fd.c.model_version, fd.c.created_at, persons_table.c.name.label("person_name"),
)  # fmt: skip


def faces_query() -> Any:
    """Detected faces (not markers) with their person's name."""
    return (
        select(*FACE_COLUMNS)
        .select_from(fd.outerjoin(persons_table, persons_table.c.id == fd.c.person_id))
        .where(fd.c.status == "detected")
    )


def face_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "library": row.library_id,
        "path": row.rel_path,
        "content_hash": row.content_hash,
        "bbox": [row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h],
        "confidence": row.confidence,
        "source": row.source,
        "person_id": row.person_id,
        "person_name": row.person_name,
        "model_version": row.model_version,
        "created_at": row.created_at,
    }


def faces_of_hash(db: Database, content_hash: str) -> tuple[str, list[dict[str, Any]], str | None]:
    """(scan state, faces, failure reason) of a photo's content."""
    with db.read() as conn:
        markers = conn.execute(
            select(fd.c.status, fd.c.error).where(
                fd.c.content_hash == content_hash, fd.c.status != "detected"
            )
        ).first()
        rows = conn.execute(
            faces_query().where(fd.c.content_hash == content_hash).order_by(fd.c.id)
        ).all()
    if rows:
        return "detected", [face_json(r) for r in rows], None
    if markers is not None:
        return markers.status, [], markers.error
    return "pending", [], None


def get_face(conn: Connection, face_id: int) -> Any | None:
    return conn.execute(faces_query().where(fd.c.id == face_id)).first()


def row_of(conn: Connection, row_id: int) -> Any | None:
    """Any row, markers included (a rerun by the id of a marker)."""
    return conn.execute(select(fd).where(fd.c.id == row_id)).first()


def set_person(db: Database, face_id: int, person_id: int | None) -> bool:
    with db.write() as conn:
        before = conn.execute(
            select(fd.c.person_id).where(fd.c.id == face_id, fd.c.status == "detected")
        ).first()
        if before is None:
            return False
        if person_id is not None:
            persons.require(conn, person_id)
        conn.execute(update(fd).where(fd.c.id == face_id).values(person_id=person_id))
        if person_id is not None:
            persons.adopt_cover(conn, person_id, face_id)
        if before.person_id is not None and before.person_id != person_id:
            persons.reset_cover_if(conn, before.person_id, face_id)
        return True


def delete_face(db: Database, face_id: int) -> Any | None:
    """Delete one face; returns its row (None when unknown). The last face of a photo
    leaves it unscanned, so the backlog detects it again."""
    with db.write() as conn:
        row = conn.execute(select(fd).where(fd.c.id == face_id, fd.c.status == "detected")).first()
        if row is None:
            return None
        conn.execute(delete(fd).where(fd.c.id == face_id))
        if row.person_id is not None:
            persons.reset_cover_if(conn, row.person_id, face_id)
        return row


def embeddings(conn: Connection, where: Any) -> tuple[list[Any], np.ndarray]:
    """(rows of id, person_id) and their embeddings as one float32 matrix; zero vectors
    (forced faces) are left out: they never cluster."""
    import numpy as np

    rows = conn.execute(
        select(fd.c.id, fd.c.person_id, fd.c.embedding).where(
            fd.c.status == "detected", fd.c.embedding != ZERO_VECTOR, where
        )
    ).all()
    if not rows:
        return [], np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4")
    return rows, matrix.reshape(len(rows), EMBEDDING_DIM)


def counts(conn: Connection) -> dict[str, int]:
    """Photos by scan state (contents, not paths): scanned, no_faces, failed, and the
    faces stored."""
    by_status = dict(
        conn.execute(
            select(fd.c.status, func.count(func.distinct(fd.c.content_hash))).group_by(fd.c.status)
        ).all()
    )
    face_count = conn.execute(
        select(func.count()).select_from(fd).where(fd.c.status == "detected")
    ).scalar_one()
    return {
        "with_faces": int(by_status.get("detected", 0)),
        "no_faces": int(by_status.get("no_faces", 0)),
        "failed": int(by_status.get("failed", 0)),
        "faces": int(face_count),
    }


def pending_count(conn: Connection, excluder: PathExcluder) -> int:
    return conn.execute(
        select(func.count(func.distinct(files.c.content_hash))).where(
            files.c.status == "present",
            files.c.media_type == "photo",
            files.c.content_hash.isnot(None),
            files.c.error.is_(None),
            ~exists().where(fd.c.content_hash == files.c.content_hash),
            excluder.sql_clause(),
        )
    ).scalar_one()


def forget_failed(db: Database, hashes: Sequence[str] | None = None) -> int:
    """Delete ``failed`` markers (all, or of these contents): they go back to the backlog."""
    condition = fd.c.status == "failed"
    if hashes is not None:
        condition = and_(condition, fd.c.content_hash.in_(list(hashes)))
    with db.write() as conn:
        return conn.execute(delete(fd).where(condition)).rowcount or 0
