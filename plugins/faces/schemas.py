"""The JSON shapes of the faces routes (typed, so the OpenAPI document describes them)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class Suggestion(msgspec.Struct):
    """The person whose mean embedding is nearest to an unassigned face."""

    person_id: int
    name: str | None
    cosine: float


class Face(msgspec.Struct):
    """One face; ``bbox`` is ``[x, y, w, h]`` as fractions (0..1) of the upright photo."""

    id: int
    library: int
    path: str
    content_hash: str
    bbox: list[float]
    confidence: float | None
    source: str  # auto | manual
    person_id: int | None
    person_name: str | None
    model_version: str | None
    created_at: float
    suggestion: Suggestion | None = None


class PhotoFaces(msgspec.Struct):
    """A photo's faces and its scan state: ``pending`` (not sent yet), ``detected``,
    ``no_faces`` or ``failed`` (``error`` says why)."""

    path: str
    library: int
    content_hash: str | None
    status: str
    error: str | None
    faces: list[Face]


class FacePage(msgspec.Struct):
    total: int
    faces: list[Face]


class Person(msgspec.Struct):
    id: int
    name: str
    cover_face_id: int | None
    entity_id: int | None
    created_from_tag: bool
    notes: str | None
    face_count: int
    created_at: float
    updated_at: float


class PersonPhotos(msgspec.Struct):
    """A page of the files showing a person (the kernel's file entries)."""

    person_id: int
    total: int
    photos: list[dict]


class ManualFace(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /image/faces``: a box drawn by hand, normalised to the upright photo."""

    path: str
    bbox: list[float]
    library: str | int | None = None
    person_id: int | None = None
    force: bool = False


class Rerun(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    library: str | int | None = None


class FacePatch(msgspec.Struct, forbid_unknown_fields=True):
    """``person_id``: the person to bind the face to, or null to unassign it."""

    person_id: int | None


class NewPerson(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    notes: str | None = None
    entity_id: int | None = None


class PersonPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only the keys sent change; ``cover_face_id`` must be one of the person's faces."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    notes: str | msgspec.UnsetType | None = msgspec.UNSET
    entity_id: int | msgspec.UnsetType | None = msgspec.UNSET
    cover_face_id: int | msgspec.UnsetType | None = msgspec.UNSET


class Merge(msgspec.Struct, forbid_unknown_fields=True):
    into: int


Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
