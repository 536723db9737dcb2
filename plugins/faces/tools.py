"""The LLM tools: who is in a photo, and the photos of a person by name."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from kernel.libraries import PathRefused
from kernel.types import Tool, ToolContext

from . import persons, search, store


class PhotoParams(msgspec.Struct, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(description="The photo's path in its library.")]
    library: str | int | None = None


class PersonParams(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="The person's name (any case).")]
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0


async def who_is_in_photo(params: PhotoParams, ctx: ToolContext) -> dict[str, Any]:
    kernel = ctx.kernel
    try:
        resolved = kernel.libraries.resolve(params.library, params.path)
    except PathRefused as exc:
        return {"error": exc.detail}
    ref = await asyncio.to_thread(kernel.index.get, resolved.library.id, resolved.rel_path)
    if ref is None or ref.media_type != "photo":
        return {"error": f"{resolved.rel_path} is not an indexed photo"}
    if ref.content_hash is None:
        return {"path": ref.rel_path, "status": "pending", "persons": [], "unnamed_faces": 0}
    found = await asyncio.to_thread(store.faces_of_hash, kernel.db, ref.content_hash)
    status, faces, _error = found
    names = sorted({f["person_name"] for f in faces if f["person_name"]}, key=str.casefold)
    return {
        "path": ref.rel_path,
        "status": status,
        "persons": names,
        "unnamed_faces": sum(1 for f in faces if f["person_id"] is None),
    }


async def find_photos_of_person(params: PersonParams, ctx: ToolContext) -> dict[str, Any]:
    kernel = ctx.kernel
    person = await asyncio.to_thread(persons.find_by_name, kernel.db, params.name)
    if person is None:
        known = [p["name"] for p in await asyncio.to_thread(persons.list_persons, kernel.db)]
        return {"error": f"no person named {params.name!r}", "known_persons": known[:100]}
    total, refs = await asyncio.to_thread(
        search.person_photos, kernel.db, kernel.index, person["id"], params.limit, params.offset
    )
    return {
        "person": person["name"],
        "total": total,
        "offset": params.offset,
        "photos": await kernel.catalog.entries(refs, ctx.user_id),
    }


TOOLS = [
    Tool(
        name="who_is_in_photo",
        description=(
            "Name the people recognised in one photo (by its library path), and how many"
            " faces in it nobody has named yet."
        ),
        params=PhotoParams,
        call=who_is_in_photo,
    ),
    Tool(
        name="find_photos_of_person",
        description=(
            "Find the photos a named person is in (any case). Returns the total and a page"
            " of photos with their metadata."
        ),
        params=PersonParams,
        call=find_photos_of_person,
    ),
]
