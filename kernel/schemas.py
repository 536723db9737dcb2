"""What the OpenAPI document says that handler signatures alone cannot tell Litestar.

Two things are decided per app, by the enabled plugins, so the kernel adds them itself:

* a file entry (``kernel.catalog.entries``) has the kernel's fields plus whatever every
  plugin's ``file_extras`` adds. Response structs type such fields ``list[FileEntry]``:
  the document gets one ``FileEntry`` component with the kernel's fields and
  ``additionalProperties: true``, and names no plugin's field;
* ``GET /photos`` reads its query parameters from the request, because plugins declare
  them (``search_params``); ``listing_operation`` puts every declared one, and the sort
  names, on the operation when the document is built.

Routes of the kernel and of plugins also use ``BAD_REQUEST`` (the kernel's error shape,
``Problem``, for their 400s) and ``PublicOperation`` (for a route that needs no token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from kernel.catalog import KERNEL_PARAMS, MAX_LIMIT

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

    from kernel.catalog import Catalog


class LibraryInfo(msgspec.Struct):
    """A library as clients see it (``GET /libraries``, a listing's ``library``)."""

    id: int
    name: str


class Problem(msgspec.Struct):
    """An error answer (``kernel.app`` shapes every one): ``parameter`` names the query or
    body parameter to blame, ``extra`` carries Litestar's validation messages."""

    status_code: int
    detail: str
    parameter: str | None = None
    extra: list[Any] | dict[str, Any] | None = None


BAD_REQUEST: dict[int, ResponseSpec] = {
    400: ResponseSpec(
        Problem,
        description="A bad parameter or body (named when one is)",
        generate_examples=False,
    )
}
"""``responses=`` for a route that answers 400: the document shows the kernel's error
shape instead of Litestar's generic one."""


class FileEntry(TypedDict):
    """One file of a listing: the kernel's fields. Each enabled plugin adds its own
    (``file_extras``), so clients must accept keys not listed here."""

    id: int
    path: str
    library: int
    name: str
    size: int
    mtime: float
    media_type: str
    content_hash: str | None


class FileEntrySchemaPlugin(OpenAPISchemaPlugin):
    """``FileEntry`` as a component that admits the fields plugins add."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is FileEntry

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        schema = schema_creator.create_component_schema(
            field_definition,
            required=sorted(FileEntry.__required_keys__),
            property_fields={k: FieldDefinition.from_kwarg(v, k) for k, v in hints.items()},
        )
        schema.additional_properties = True
        return schema


@dataclass
class PublicOperation(Operation):
    """``operation_class=`` for a route in the public list (``PUBLIC_OPT``): no token,
    so the document's bearer requirement does not apply to it."""

    def __post_init__(self) -> None:
        self.security = []


# --- GET /photos: the listing's parameters -----------------------------------------------

COMMA_SEPARATED_IDS = "^[0-9]+(,[0-9]+)*$"
KERNEL_BOUNDS: dict[str, dict[str, int]] = {
    "limit": {"minimum": 0, "maximum": MAX_LIMIT},
    "offset": {"minimum": 0},
    "seed": {"minimum": 0},
}


def param_schema(kind: Any) -> Schema:
    """The JSON type of a ``SearchParam.type``; ``list[int]`` travels as ``1,2,3``."""
    simple = {
        str: OpenAPIType.STRING,
        int: OpenAPIType.INTEGER,
        float: OpenAPIType.NUMBER,
        bool: OpenAPIType.BOOLEAN,
    }
    if kind in simple:
        return Schema(type=simple[kind])
    if kind == list[int]:
        return Schema(type=OpenAPIType.STRING, pattern=COMMA_SEPARATED_IDS)
    return Schema(type=OpenAPIType.STRING)  # the value reaches the filter as text anyway


def listing_parameters(catalog: Catalog) -> list[Parameter]:
    """Every parameter a listing accepts: the kernel's, each enabled plugin's, and
    ``sort`` with the names of the sorts on offer."""
    found: list[Parameter] = []
    for name, param in catalog.params.items():
        schema = param_schema(param.type)
        description = param.description
        if name == "sort":
            schema.enum = catalog.sort_names()
            schema.default = "NameAsc"
            offered = [catalog.sorts.get(sort_name) for sort_name in schema.enum]
            described = [f"{s.name}: {s.description}" for s in offered if s and s.description]
            description = " ".join([KERNEL_PARAMS["sort"].description, *described])
        for key, value in KERNEL_BOUNDS.get(name, {}).items():
            setattr(schema, key, value)
        found.append(
            Parameter(name=name, param_in="query", schema=schema, description=description or None)
        )
    return found


def listing_operation(catalog: Catalog) -> type[Operation]:
    """An ``operation_class`` for a listing route whose handler reads the query itself:
    the document lists ``catalog``'s parameters (computed when the document is built)."""

    @dataclass
    class ListingOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *listing_parameters(catalog)]

    return ListingOperation
