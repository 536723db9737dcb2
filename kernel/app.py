"""The Litestar app factory: kernel routes + every plugin's routes, behind the token guard."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from kernel.auth import PUBLIC_OPT, BearerTokenMiddleware, PasswordTooLong, User
from kernel.core import Kernel
from kernel.deps import KernelDep
from kernel.libraries import PathRefused
from kernel.routes import image, photos, system
from kernel.schemas import FileEntrySchemaPlugin
from kernel.types import InvalidParameter

log = logging.getLogger(__name__)
#: every route's body limit unless its handler or Router sets its own (uploads do): a
#: bigger body is refused with 413 as soon as its Content-Length (or its bytes) pass it
REQUEST_MAX_BODY_SIZE = 64 * 1024
SCHEMA_PATH = "/schema"
BEARER = "BearerToken"
BEARER_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    bearer_format="JWT",
    description="The token POST /login answers, as `Authorization: Bearer <token>`.",
)


def _problem(status: int, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": status, "detail": detail, **extra},
        status_code=status,
        media_type=MediaType.JSON,
    )


def _invalid_parameter(_: Request, exc: InvalidParameter) -> Response[dict[str, Any]]:
    return _problem(400, f"invalid parameter {exc.name!r}: {exc.reason}", parameter=exc.name)


def _path_refused(_: Request, exc: PathRefused) -> Response[dict[str, Any]]:
    return _problem(exc.status_code, exc.detail)


def _password_too_long(_: Request, exc: PasswordTooLong) -> Response[dict[str, Any]]:
    return _problem(400, str(exc), parameter="password")


def _unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, HTTPException):
        return _problem(exc.status_code, exc.detail, **({"extra": exc.extra} if exc.extra else {}))
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return _problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal error (logged on the server)")


def create_app(
    kernel: Kernel, *, background: bool = True, migrate: bool = True, freeze_heap: bool = False
) -> Litestar:
    """Build the app for a kernel; start-up migrates, fires on_startup, starts scanning.

    ``freeze_heap`` (for a server process, not for tests that build many apps): once
    started, move every object alive to the collector's permanent generation. The ~100,000
    objects of the loaded app are never garbage, yet each full collection walked them all:
    a 55 ms pause in one request of every hundred or so.
    """
    if migrate:
        kernel.migrate()
    kernel.roles.append("http")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await kernel.start(background=background)
        if freeze_heap:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await kernel.stop()

    def provide_kernel() -> Kernel:
        return kernel

    def provide_user(request: Request, kernel: KernelDep) -> User | None:
        """The caller (None on a public route, where only ``plugin`` asks for it). It takes
        ``kernel`` and a plugin router's ``plugin`` takes it (``Plugin.router``) only to put
        a handler's dependencies one after another: Litestar resolves dependencies of the
        same depth concurrently, in an anyio task group, which cost 12 % of the CPU of a
        ``/image/metadata`` request (``user`` and ``plugin``) for three sync lookups."""
        return request.scope.get("user")

    handlers: Sequence[Any] = [
        system.login,
        system.health,
        system.libraries,
        system.tools,
        image.route(kernel),
        photos.route(kernel.catalog),
        *kernel.hooks.routes(),
    ]
    origins = kernel.config.cors_allowed_origins
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "kernel": Provide(provide_kernel, sync_to_thread=False),
            "user": Provide(provide_user, sync_to_thread=False),
        },
        middleware=[
            DefineMiddleware(
                BearerTokenMiddleware, exclude=[f"^{SCHEMA_PATH}"], exclude_from_auth_key=PUBLIC_OPT
            )
        ],
        exception_handlers={
            InvalidParameter: _invalid_parameter,
            PathRefused: _path_refused,
            PasswordTooLong: _password_too_long,
            Exception: _unexpected,
        },
        cors_config=CORSConfig(allow_origins=origins, allow_credentials=True) if origins else None,
        openapi_config=OpenAPIConfig(
            title="imageapi",
            version="1",
            path=SCHEMA_PATH,
            # The document only (also at /schema); a page for people comes from a plugin
            # (docs). None given, Litestar would add pages that load from CDNs.
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes={BEARER: BEARER_SCHEME}),
            security=[{BEARER: []}],
        ),
        plugins=[FileEntrySchemaPlugin(), *kernel.hooks.app_plugins()],
        request_max_body_size=REQUEST_MAX_BODY_SIZE,
        lifespan=[lifespan],
        logging_config=None,
    )
    app.state.kernel = kernel
    return app
