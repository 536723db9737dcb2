"""The persons routes. They work whether or not Apollo is configured: persons and the
faces already bound to them are this server's data."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody

from kernel.deps import CurrentUser
from kernel.types import InvalidParameter

from . import (
    Plugin,  # loaded lazily by Plugin.routes(), once the package is complete
    persons,
    search,
    store,
)
from .persons import PersonError
from .schemas import Face, Merge, NewPerson, Person, PersonPatch, PersonPhotos
from .tables import face_detections as fd

PluginDep = NamedDependency[Plugin]


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A persons operation's refusals (``PersonError``) become HTTP errors."""
    try:
        yield
    except PersonError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None


async def _call(function: Any, *args: Any) -> Any:
    """Run a blocking persons operation in a worker thread."""
    with _refusals():
        return await asyncio.to_thread(function, *args)


def _one(plugin: Plugin, person_id: int) -> dict[str, Any]:
    with plugin.kernel.db.read() as conn:
        return persons.get(conn, person_id)


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit", "must be between 1 and 1000")
    if offset < 0:
        raise InvalidParameter("offset", "must not be negative")


@get("/persons", summary="Every person, by name")
async def list_persons(plugin: PluginDep) -> list[Person]:
    rows = await _call(persons.list_persons, plugin.kernel.db)
    return [msgspec.convert(r, Person) for r in rows]


@post("/persons", summary="Create a person (names are unique in any case)", status_code=201)
async def create_person(plugin: PluginDep, data: JSONBody[NewPerson]) -> Person:
    row = await _call(
        lambda: persons.create(
            plugin.kernel.db, data.name, notes=data.notes, entity_id=data.entity_id
        )
    )
    return msgspec.convert(row, Person)


@get("/persons/{person_id:int}", summary="One person")
async def get_person(plugin: PluginDep, person_id: FromPath[int]) -> Person:
    return msgspec.convert(await _call(_one, plugin, person_id), Person)


@patch("/persons/{person_id:int}", summary="Rename a person, change notes or cover")
async def patch_person(
    plugin: PluginDep, person_id: FromPath[int], data: JSONBody[PersonPatch]
) -> Person:
    changes = msgspec.structs.asdict(data)
    changes = {k: v for k, v in changes.items() if v is not msgspec.UNSET}
    row = await _call(persons.update_person, plugin.kernel.db, person_id, changes)
    return msgspec.convert(row, Person)


@delete(
    "/persons/{person_id:int}", summary="Delete a person (faces stay, unassigned)", status_code=204
)
async def delete_person(plugin: PluginDep, person_id: FromPath[int]) -> None:
    await _call(persons.delete_person, plugin.kernel.db, person_id)


@post("/persons/{person_id:int}/merge", summary="Move every face to another person; delete this")
async def merge_person(
    plugin: PluginDep, person_id: FromPath[int], data: JSONBody[Merge]
) -> Person:
    row = await _call(persons.merge, plugin.kernel.db, person_id, data.into)
    return msgspec.convert(row, Person)


@get("/persons/{person_id:int}/faces", summary="A person's faces")
async def person_faces(
    plugin: PluginDep,
    person_id: FromPath[int],
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
) -> list[Face]:
    _page(limit, offset)

    def load() -> list[dict[str, Any]]:
        with plugin.kernel.db.read() as conn:
            persons.get(conn, person_id)
            rows = conn.execute(
                store.faces_query().where(fd.c.person_id == person_id)
                .order_by(fd.c.id).limit(limit).offset(offset)
            )  # fmt: skip
            return [store.face_json(r) for r in rows]

    return [msgspec.convert(f, Face) for f in await _call(load)]


@get("/persons/{person_id:int}/photos", summary="The photos a person is in (file entries)")
async def person_photos(
    plugin: PluginDep,
    user: CurrentUser,
    person_id: FromPath[int],
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
) -> PersonPhotos:
    _page(limit, offset)
    kernel = plugin.kernel
    with _refusals():  # the page and every plugin's extras in one worker-thread hop
        (total, _refs), entries = await kernel.catalog.read_entries(
            lambda: search.person_photos(kernel.db, kernel.index, person_id, limit, offset),
            lambda found: found[1],
            user.id,
        )
    return PersonPhotos(person_id=person_id, total=total, photos=entries)


ROUTES = [
    list_persons, create_person, get_person, patch_person, delete_person, merge_person,
    person_faces, person_photos,
]  # fmt: skip
