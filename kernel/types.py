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

    ``rel_path`` uses forward slashes and is relative to the library ``root`` (absolute,
    symlinks resolved); ``abs_path`` is the location on disk, made when asked for (a
    listing builds thousands of these and most never touch the disk). ``content_hash``
    is the blake3 hex digest, or None until the scanner has hashed the file.
    """

    id: int
    library_id: int
    rel_path: str
    root: Path
    size: int
    mtime_ns: int
    media_type: str  # "photo" | "video"
    content_hash: str | None = None

    @property
    def abs_path(self) -> Path:
        return self.root / self.rel_path

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
    """What a client asked a listing for, handed to ``search_filters`` hooks.

    ``params`` holds every query parameter as sent (last value wins); a plugin reads the
    ones it declared in ``search_params``. ``library_id``, ``path`` and ``recursive`` are
    the folder, resolved and checked by the kernel.
    """

    params: Mapping[str, str]
    user_id: int | None
    library_id: int
    path: str
    recursive: bool
    media_type: str | None = None  # "photo" | "video" | None for both

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
class SearchParam:
    """A listing query parameter a plugin's ``search_filters`` reads (``search_params``).

    ``type`` is what the value means: ``str``, ``int``, ``float``, ``bool`` or
    ``list[int]`` (sent comma-separated). It types the parameter in the OpenAPI document
    and the argument of the ``search_photos`` tool; the value still reaches
    ``search_filters`` as the client's text (``SearchQuery.get_float`` & co. parse it).
    """

    name: str
    type: Any = str
    description: str = ""


@dataclass(frozen=True)
class SearchFilter:
    """One condition of a listing, in the two forms the kernel's planner needs.

    Build it with ``SearchFilter.on(table, *conditions)`` — "the file has a row in my
    table where all of these hold" — or ``SearchFilter.of(*conditions)`` for conditions
    on ``files`` itself (``kernel.tables.files``). ``negate=True`` keeps the files that
    have no such row. The kernel derives ``where`` (a set: ``files.id IN (SELECT key
    ...)``, which the COUNT and a sort of few matches start from) and ``probe`` (a
    correlated EXISTS, which a page that walks another index tests row by row); when a
    sort walks ``table`` itself, ``conditions`` are applied to the walked row directly.
    """

    where: ColumnElement[bool]
    probe: ColumnElement[bool]
    table: Any = None
    conditions: tuple[ColumnElement[bool], ...] = ()

    @classmethod
    def on(
        cls, table: Any, *conditions: ColumnElement[bool], key: Any = None, negate: bool = False
    ) -> SearchFilter:
        """Files with a row in ``table`` (joined on ``key``, default ``table.c.file_id``)
        meeting every condition; with ``negate``, files without one."""
        from kernel.listing import filter_forms

        return filter_forms(cls, table, conditions, key, negate)

    @classmethod
    def of(cls, *conditions: ColumnElement[bool]) -> SearchFilter:
        """Conditions on ``files`` (or already correlated to it): one form serves both."""
        from sqlalchemy import and_

        both = and_(*conditions)
        return cls(where=both, probe=both)


@dataclass(frozen=True, slots=True)
class SortPlan:
    """What the kernel knows when a sort part builds its statement.

    ``matches`` is the listing's total (every filter applied). ``walk_index``: with this
    many matches, walking an index in sort order and stopping once the page is full
    beats joining and sorting every match. ``filters`` are the listing's filters, for a
    part that walks a table some of them are on. Parts built by ``SearchSort.keyed``
    use all of this themselves.
    """

    matches: int
    walk_index: bool
    filters: tuple[SearchFilter, ...] = ()


SortPart = Callable[["Select[Any]", SearchQuery, SortPlan], "Select[Any]"]


@dataclass(frozen=True)
class SearchSort:
    """A named sort (``sort=NAME``) a plugin offers to listings.

    Declare one with ``SearchSort.keyed(...)``: the kernel builds the statements. The
    general form is one or more parts listed one after another (``apply``, then each of
    ``then``): every part receives the kernel's select of ``files.id`` (all filters in its
    WHERE) and returns it narrowed to its stretch of the listing, joined and ordered.
    Parts must not overlap, must together cover every match, and must each end their
    ORDER BY with a unique column (``files.id``) so pages are stable.
    """

    name: str
    apply: SortPart
    then: Sequence[SortPart] = ()
    description: str = ""

    @property
    def parts(self) -> tuple[SortPart, ...]:
        return (self.apply, *self.then)

    @classmethod
    def keyed(
        cls,
        name: str,
        table: Any,
        key: Any,
        index: str,
        *,
        descending: bool,
        missing: str = "last",
        ties_descending: bool | None = None,
        file_key: Any = None,
        description: str = "",
    ) -> SearchSort:
        """Files by ``key``, a column of ``table`` (one row per file, joined on
        ``file_key``, default ``table.c.file_id``), ties by the file key in the sort's
        direction (or ``ties_descending``). ``index`` is an index on ``(key, file_key)``
        in that order, which the kernel walks when many files match. Files without a row,
        or with a NULL key, come ``missing="last"`` (or ``"first"``), in id order."""
        from kernel.listing import keyed_sort

        return keyed_sort(
            cls, name, table, key, index, descending=descending, missing=missing,
            ties_descending=descending if ties_descending is None else ties_descending,
            file_key=file_key, description=description,
        )  # fmt: skip


@dataclass(frozen=True)
class ToolContext:
    """What an LLM tool sees when it runs: the kernel, who asked, and ``result_limit``:
    the most characters of a result the caller keeps (None: no bound). A caller cuts a
    longer result mid-way; a tool that returns a list does better to return fewer items."""

    kernel: Kernel
    user_id: int | None
    result_limit: int | None = None


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
