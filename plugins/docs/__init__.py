"""docs: the API documentation page (Swagger UI) at ``/schema`` and ``/schema/swagger``,
whole on this server: its scripts, style and icon come from ``/schema/assets/``, not a
CDN, so the page renders on a LAN server without internet.

A plugin rather than kernel code: the kernel serves the OpenAPI document itself
(``/schema/openapi.json``, what clients and generators read); a page for people to read
it is a feature an operator may switch off. It contributes one Litestar plugin through
``app_plugins``, which puts the page among the document's render plugins.
"""

from __future__ import annotations

from typing import Any

from kernel import hookimpl

from .swagger import DocsPage


@hookimpl
def app_plugins() -> list[Any]:
    return [DocsPage()]
