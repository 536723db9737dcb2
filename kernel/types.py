"""Types that cross the plugin boundary: what hooks receive and what they return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select

    from kernel.core import Kernel


class InvalidParameter(Exception):
    """A client sent a bad value; the app answers 400 naming the parameter."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def parse_count(name: str, raw: str | None, *, maximum: int | None = None) -> int | None:
    """A non-negative integer query parameter (``limit``, ``offset``, ...), or None."""
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(name, f"not an integer: {raw!r}") from None
    if value < 0:
        raise InvalidParameter(name, "must not be negative")
    if maximum is not None and value > maximum:
        raise InvalidParameter(name, f"at most {maximum}")
    return value


@dataclass(frozen=True, slots=True)
class FileRef:
    """One row of the kernel's file index, as plugins see it.

    ``rel_path`` uses forward slashes and is relative to the library root; ``abs_path``
    is the resolved location on disk. ``content_hash`` is the blake3 hex digest, or None
    until the scanner has hashed the file.
    """

    id: int
    library_id: int
    rel_path: str
    abs_path: Path
    size: int
    mtime_ns: int
    media_type: str  # "photo" | "video"
    content_hash: str | None = None

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        """Lower-case extension without the dot ("" when there is none)."""
        name = self.name
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True, slots=True)
class RenderResult:
    """A derived file on disk (thumbnail, GIF, ...) for the kernel to serve."""

    path: Path
    media_type: str
    cache_seconds: int = 86400


@dataclass(frozen=True)
class SearchQuery:
    """What a client asked ``GET /photos`` for, handed to ``search_filters`` hooks.

    ``params`` holds every query parameter as sent (last value wins). A plugin reads the
    ones it understands and names them in the ``SearchFilter`` it returns, so the kernel
    can refuse parameters nobody understood.
    """

    params: Mapping[str, str]
    user_id: int | None
    library_id: int
    path: str
    recursive: bool

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def get_float(self, name: str) -> float | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise InvalidParameter(name, f"not a number: {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidParameter(name, f"not a finite number: {raw!r}")
        return value

    def get_int_list(self, name: str) -> list[int] | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise InvalidParameter(name, f"not a comma-separated list of ids: {raw!r}") from None

    def get_bool(self, name: str) -> bool | None:
        raw = self.get(name)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise InvalidParameter(name, f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class SearchFilter:
    """A plugin's contribution to the ``/photos`` WHERE clause.

    ``where`` clauses are ANDed with every other filter; they may reference the kernel's
    ``files`` table (``kernel.tables.files``) and correlate to it (EXISTS subqueries).
    Write them as sets (``files.id IN (SELECT file_id ... WHERE <indexed condition>)``):
    the COUNT, and a page with few matches, start from them.

    ``probe``, when given, is the same condition written as a test of one row (a
    correlated EXISTS on the plugin's key). A page with many matches walks an index in
    sort order and tests row after row until it is full; there the kernel uses ``probe``
    instead of ``where``, which saves building the whole matching set (20,000 ids) to
    read the first hundred.
    """

    params: frozenset[str]
    where: Sequence[ColumnElement[bool]] = ()
    probe: Sequence[ColumnElement[bool]] | None = None


@dataclass(frozen=True, slots=True)
class SortPlan:
    """What the kernel knows when a sort part builds its statement.

    ``matches`` is the listing's total (every filter applied). ``walk_index`` is the
    kernel's advice: with this many matches, walking an index in sort order and stopping
    once the page is full beats joining and sorting every match, so a part that can should
    drive its query from its own table (``kernel.listing.drive_from``). With few matches
    (a folder, a selective filter) the part should join onto ``files`` and let the
    database sort them.
    """

    matches: int
    walk_index: bool


SortPart = Callable[["Select[Any]", SearchQuery, SortPlan], "Select[Any]"]


@dataclass(frozen=True)
class SearchSort:
    """A named sort (``sort=NAME``) a plugin offers to ``/photos``.

    A sort is one or more parts listed one after another: ``apply`` first, then each of
    ``then``. Every part receives the kernel's select of ``files.id`` (all filters in its
    WHERE) and returns it narrowed to its stretch of the listing, joined and ordered.
    Splitting lets a part walk a plugin index in order — dated files by ``date_taken`` —
    and leave the rest (undated files) to the next part, instead of sorting every file by
    a nullable outer-joined column.

    Parts must not overlap, must together cover every match, and must each end their
    ORDER BY with a unique column (``files.id``) so pages are stable. The kernel pages
    across them: it runs the part a page starts in with LIMIT/OFFSET and counts a part
    only when a page starts beyond its end.
    """

    name: str
    apply: SortPart
    then: Sequence[SortPart] = ()

    @property
    def parts(self) -> tuple[SortPart, ...]:
        return (self.apply, *self.then)


@dataclass(frozen=True)
class ToolContext:
    """What an LLM tool sees when it runs: the kernel and who asked."""

    kernel: Kernel
    user_id: int | None


@dataclass(frozen=True)
class Tool:
    """A function an LLM may call: a name, what it does, its parameters and the callable.

    ``params`` is a ``msgspec.Struct`` type; the JSON Schema sent to the model is derived
    from it, and the arguments the model sends are decoded into it before ``call`` runs.
    """

    name: str
    description: str
    params: type[msgspec.Struct]
    call: Callable[[Any, ToolContext], Awaitable[Any]]
    plugin: str = field(default="", compare=False)

    def json_schema(self) -> dict[str, Any]:
        """The parameter schema, inlined (no ``$ref``), as LLM tool APIs expect."""
        (schema,), components = msgspec.json.schema_components([self.params])
        ref = schema.get("$ref", "")
        if ref:
            schema = components[ref.rsplit("/", 1)[-1]]
        return dict(schema)

    def to_openai(self) -> dict[str, Any]:
        """The tool in the OpenAI / Ollama ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.json_schema(),
            },
        }

    async def invoke(self, arguments: bytes | str | Mapping[str, Any], ctx: ToolContext) -> Any:
        """Decode the model's arguments into ``params`` (a clear error if they do not fit)."""
        if isinstance(arguments, Mapping):
            value = msgspec.convert(dict(arguments), self.params)
        else:
            value = msgspec.json.decode(arguments, type=self.params)
        return await self.call(value, ctx)
