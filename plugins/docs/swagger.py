"""The documentation page and its files, served by this server.

Litestar's Swagger page loads Swagger UI from a public CDN, so on a LAN server without
internet it stays blank. Here the page points at ``/schema/assets/...``, served from the
files the ``swagger-ui-bundle-v2`` package ships (Swagger UI 5: the document is OpenAPI
3.1, which Swagger UI 4 refuses to render).
"""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Router, get
from litestar.config.app import AppConfig
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.plugins import InitPluginProtocol
from litestar.response import File
from swagger_ui_bundle import swagger_ui_path

from kernel.auth import PUBLIC_OPT

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
ASSETS_PATH = "/assets"


@get(
    f"{ASSETS_PATH}/{{name:str}}",
    opt={PUBLIC_OPT: True},
    include_in_schema=False,
    sync_to_thread=False,
)
def swagger_asset(name: FromPath[str]) -> File:
    """One of Swagger UI's files; nothing else in the package folder is reachable."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(f"no documentation asset called {name!r}")
    return File(
        swagger_ui_path / name,
        media_type=media_type,
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Litestar's Swagger page with its scripts, style and icon from this server."""

    def __init__(self, schema_path: str, path: str | Sequence[str] = "/swagger") -> None:
        assets = f"{schema_path}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path=path,
        )

    def receive_router(self, router: Router) -> None:
        router.register(swagger_asset)


class DocsPage(InitPluginProtocol):
    """Puts the page first among the OpenAPI render plugins, so it is also what the
    document's root (``/schema``) serves; the kernel's JSON document stays beside it.

    Litestar's own OpenAPI plugin reads the render plugins after every plugin given to
    the app has changed the app's configuration, so the page is registered like one the
    kernel had configured itself (its assets route included, public like the rest of
    ``/schema``)."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        openapi = app_config.openapi_config
        if openapi is not None:
            page = LocalSwaggerUI(openapi.path or "/schema")
            openapi.render_plugins = [page, *openapi.render_plugins]
            openapi.default_plugin = page
        return app_config
