"""What faces adds to listings and the reads behind the person routes: the
``person_ids`` filter of ``GET /photos``, each photo's ``persons`` field, a person's
photos, and suggestions for unassigned faces (nearest person mean by cosine, numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select

from kernel.db import Database
from kernel.index import FILE_COLUMNS
from kernel.tables import files
from kernel.types import FileRef, SearchFilter, SearchParam, SearchQuery

from . import persons as persons_store
from . import store
from .pipeline import cosine
from .tables import face_detections as fd
from .tables import persons

if TYPE_CHECKING:
    import numpy as np

PARAMS = [
    SearchParam(
        "person_ids", list[int], "Person ids, comma-separated: photos showing any of them."
    ),
]


def person_filter(query: SearchQuery) -> list[SearchFilter]:
    """Files whose content has a face bound to one of the persons (any copy of it)."""
    wanted = sorted(set(query.get_int_list("person_ids") or ()))
    if not wanted:
        return []
    hashes = select(fd.c.content_hash).where(fd.c.person_id.in_(wanted))
    return [SearchFilter.of(files.c.content_hash.in_(hashes))]


def person_extras(db: Database, refs: Sequence[FileRef]) -> dict[int, dict[str, Any]]:
    """``{"persons": [{"id", "name"}]}`` for every photo of a page, in one query."""
    by_hash: dict[str, list[int]] = {}
    extras: dict[int, dict[str, Any]] = {}
    for ref in refs:
        if ref.media_type == "photo":
            extras[ref.id] = {"persons": []}
            if ref.content_hash:
                by_hash.setdefault(ref.content_hash, []).append(ref.id)
    hashes = list(by_hash)
    if not hashes:
        return extras
    with db.read() as conn:
        values = {"hashes": db.ids_value(hashes, texts=True)}
        rows = conn.execute(db.prepared(_page_persons), values)
        for content_hash, person_id, name, _name_key in rows:
            for file_id in by_hash[content_hash]:
                extras[file_id]["persons"].append({"id": person_id, "name": name})
    return extras


def _page_persons(db: Database) -> Select[Any]:
    """(content hash, person id, name) of the named people in the contents bound to
    ``hashes`` (one parameter, however many), by content then name."""
    return (
        select(fd.c.content_hash, persons.c.id, persons.c.name, persons.c.name_key)
        .join(persons, persons.c.id == fd.c.person_id)
        .where(db.among(fd.c.content_hash, db.ids_param("hashes"), texts=True))
        .distinct()
        .order_by(fd.c.content_hash, persons.c.name_key, persons.c.id)
    )


def person_photos(
    db: Database, index: Any, person_id: int, limit: int, offset: int
) -> tuple[int, list[FileRef]]:
    """(total, page) of the present files showing a person, newest file row first
    (PersonError 404 for an unknown person)."""
    hashes = select(fd.c.content_hash).where(fd.c.person_id == person_id)
    where = (files.c.content_hash.in_(hashes), files.c.status == "present")
    with db.read() as conn:
        persons_store.require(conn, person_id)
        total = conn.execute(select(func.count()).select_from(files).where(*where)).scalar_one()
        rows = conn.execute(
            select(*FILE_COLUMNS)
            .where(*where)
            .order_by(files.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return int(total), index.refs(rows)


def person_means(db: Database) -> tuple[list[int], np.ndarray]:
    """(person ids, matrix of their mean embeddings) over every clustering face."""
    import numpy as np

    with db.read() as conn:
        rows, matrix = store.embeddings(conn, fd.c.person_id.isnot(None))
    if not rows:
        return [], matrix
    ids = np.fromiter((r.person_id for r in rows), dtype=np.int64, count=len(rows))
    order = np.unique(ids)
    sums = np.zeros((len(order), matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, np.searchsorted(order, ids), matrix)
    counts = np.bincount(np.searchsorted(order, ids), minlength=len(order))[:, None]
    return [int(i) for i in order], (sums / counts).astype(np.float32)


def unassigned(db: Database, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of faces bound to nobody, each with the nearest person's mean."""
    import numpy as np

    condition = fd.c.person_id.is_(None)
    with db.read() as conn:
        total = conn.execute(
            select(func.count()).select_from(fd).where(fd.c.status == "detected", condition)
        ).scalar_one()
        rows = conn.execute(
            store.faces_query().where(condition).order_by(fd.c.id).limit(limit).offset(offset)
        ).all()
        vectors = dict(
            conn.execute(
                select(fd.c.id, fd.c.embedding).where(fd.c.id.in_([r.id for r in rows]))
            ).all()
        )
        names = dict(conn.execute(select(persons.c.id, persons.c.name)).all())
    ids, means = person_means(db)
    page = []
    for row in rows:
        face = store.face_json(row)
        face["suggestion"] = None
        vector = np.frombuffer(vectors[row.id], dtype="<f4")
        if ids and vector.any():
            scores = cosine(means, vector)
            best = int(np.argmax(scores))
            person_id = ids[best]
            face["suggestion"] = {
                "person_id": person_id,
                "name": names.get(person_id),
                "cosine": round(float(scores[best]), 4),
            }
        page.append(face)
    return int(total), page
