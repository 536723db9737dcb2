"""Persons: named identities that faces are bound to. Blocking SQLAlchemy Core.

Names are unique case-insensitively in the Unicode sense (``name_key``: NFC,
case-folded), so "Åsa" and "ÅSA" are one person. A person's cover is one of their faces:
the first face bound to a person without one becomes it, and when the cover face is
deleted, unassigned or merged away another of their faces takes its place.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from kernel.db import Database

from .tables import face_detections as fd
from .tables import name_key
from .tables import persons as persons_table

MAX_NAME = 255


class PersonError(Exception):
    """A request about persons that cannot be honoured; ``status`` is the HTTP code."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def clean_name(name: str | None) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise PersonError(400, "name: must not be empty")
    if len(cleaned) > MAX_NAME:
        raise PersonError(400, f"name: at most {MAX_NAME} characters")
    return cleaned


def require(conn: Connection, person_id: int) -> None:
    found = conn.execute(select(persons_table.c.id).where(persons_table.c.id == person_id)).first()
    if found is None:
        raise PersonError(404, f"person {person_id} not found")


def adopt_cover(conn: Connection, person_id: int, face_id: int) -> None:
    """A person without a cover takes this face as theirs."""
    conn.execute(
        update(persons_table)
        .where(persons_table.c.id == person_id, persons_table.c.cover_face_id.is_(None))
        .values(cover_face_id=face_id)
    )


def reset_cover(conn: Connection, person_id: int) -> None:
    """The cover becomes the person's oldest remaining face (or none)."""
    first = conn.execute(
        select(func.min(fd.c.id)).where(fd.c.person_id == person_id, fd.c.status == "detected")
    ).scalar()
    conn.execute(
        update(persons_table).where(persons_table.c.id == person_id).values(cover_face_id=first)
    )


def reset_cover_if(conn: Connection, person_id: int, face_id: int) -> None:
    cover = conn.execute(
        select(persons_table.c.cover_face_id).where(persons_table.c.id == person_id)
    ).scalar()
    if cover == face_id:
        reset_cover(conn, person_id)


def _listing() -> Any:
    """Persons with their face count: a count per person on ``ix_face_person`` (a
    GROUP BY over every face would cost the same for one person as for all)."""
    face_count = (
        select(func.count())
        .where(fd.c.person_id == persons_table.c.id)
        .correlate(persons_table)
        .scalar_subquery()
        .label("face_count")
    )
    return select(persons_table, face_count)


def person_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "cover_face_id": row.cover_face_id,
        "entity_id": row.entity_id,
        "created_from_tag": bool(row.created_from_tag),
        "notes": row.notes,
        "face_count": int(row.face_count),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_persons(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(_listing().order_by(persons_table.c.name_key, persons_table.c.id))
        return [person_json(r) for r in rows]


def get(conn: Connection, person_id: int) -> dict[str, Any]:
    row = conn.execute(_listing().where(persons_table.c.id == person_id)).first()
    if row is None:
        raise PersonError(404, f"person {person_id} not found")
    return person_json(row)


def _conflict(conn: Connection, key: str, other_than: int | None = None) -> None:
    found = conn.execute(
        select(persons_table.c.id, persons_table.c.name).where(persons_table.c.name_key == key)
    ).first()
    if found is not None and found.id != other_than:
        raise PersonError(409, f"a person named {found.name!r} already exists (id {found.id})")


def create(
    db: Database,
    name: str,
    *,
    notes: str | None = None,
    entity_id: int | None = None,
    created_from_tag: bool = False,
) -> dict[str, Any]:
    name = clean_name(name)
    now = time.time()
    try:
        with db.write() as conn:
            _conflict(conn, name_key(name))
            person_id = conn.execute(
                persons_table.insert().values(
                    name=name, name_key=name_key(name), notes=notes, entity_id=entity_id,
                    created_from_tag=int(created_from_tag), created_at=now, updated_at=now,
                )
            ).inserted_primary_key[0]  # fmt: skip
            return get(conn, int(person_id))
    except IntegrityError:  # another request created the same name meanwhile
        raise PersonError(409, f"a person named {name!r} already exists") from None


def update_person(db: Database, person_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``name``, ``notes``, ``entity_id``, ``cover_face_id`` (one of their faces)."""
    values: dict[str, Any] = {}
    try:
        with db.write() as conn:
            get(conn, person_id)
            if "name" in changes:
                values["name"] = clean_name(changes["name"])
                values["name_key"] = name_key(values["name"])
                _conflict(conn, values["name_key"], other_than=person_id)
            for key in ("notes", "entity_id"):
                if key in changes:
                    values[key] = changes[key]
            if "cover_face_id" in changes:
                cover = changes["cover_face_id"]
                if (
                    cover is not None
                    and conn.execute(
                        select(fd.c.id).where(fd.c.id == cover, fd.c.person_id == person_id)
                    ).first()
                    is None
                ):
                    raise PersonError(400, f"cover_face_id: face {cover} is not one of theirs")
                values["cover_face_id"] = cover
            values["updated_at"] = time.time()
            conn.execute(
                update(persons_table).where(persons_table.c.id == person_id).values(**values)
            )
            return get(conn, person_id)
    except IntegrityError:
        raise PersonError(409, f"a person named {changes.get('name')!r} already exists") from None


def delete_person(db: Database, person_id: int) -> None:
    """Delete a person; their faces stay, unassigned."""
    with db.write() as conn:
        get(conn, person_id)
        conn.execute(update(fd).where(fd.c.person_id == person_id).values(person_id=None))
        conn.execute(delete(persons_table).where(persons_table.c.id == person_id))


def merge(db: Database, person_id: int, into: int) -> dict[str, Any]:
    """Every face of ``person_id`` goes to ``into``; ``person_id`` is deleted. ``into``
    keeps its cover, or takes the merged person's when it had none."""
    if person_id == into:
        raise PersonError(400, "into: a person cannot be merged into themselves")
    with db.write() as conn:
        source = get(conn, person_id)
        get(conn, into)
        conn.execute(update(fd).where(fd.c.person_id == person_id).values(person_id=into))
        if source["cover_face_id"] is not None:
            adopt_cover(conn, into, source["cover_face_id"])
        conn.execute(delete(persons_table).where(persons_table.c.id == person_id))
        conn.execute(
            update(persons_table).where(persons_table.c.id == into).values(updated_at=time.time())
        )
        return get(conn, into)


def by_name_keys(conn: Connection, keys: list[str]) -> list[Any]:
    if not keys:
        return []
    return conn.execute(select(persons_table).where(persons_table.c.name_key.in_(keys))).all()


def find_by_name(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(_listing().where(persons_table.c.name_key == name_key(name))).first()
        return person_json(row) if row else None
