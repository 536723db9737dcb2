"""The request log and the Litestar plugin that puts this plugin's middleware on the app.

One line per request, at INFO on the ``imageapi.requests`` logger::

    GET /photos 200 12.4 ms

The route is the template (``/image/tags/{tag_id:int}``), never the raw path or query
string: no user-chosen text and no URL token reaches the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from litestar.plugins import InitPluginProtocol

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("imageapi.requests")


def request_log(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: time the request, log it once its response has started."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        except Exception as exc:  # raised by a middleware inside (the token guard's 401)
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            route = scope.get("path_template") or scope.get("path", "")
            took = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1f ms", scope.get("method", "-"), route, status, took)

    return middleware


class Middleware(InitPluginProtocol):
    """Puts middleware on the app, ``outer`` before the token guard (requests it refuses
    are seen too) and ``inner`` after it, and runs ``start``/``stop`` with the app: a
    listener lives with the server, never with a command that only builds a kernel."""

    def __init__(
        self,
        outer: Sequence[Any],
        inner: Sequence[Any],
        start: Callable[[], None] | None = None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        self.outer, self.inner = list(outer), list(inner)
        self.start, self.stop = start, stop

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware[:0] = self.outer
        app_config.middleware.extend(self.inner)
        if self.start is not None:
            app_config.on_startup.append(self.start)
        if self.stop is not None:
            app_config.on_shutdown.append(self.stop)
        return app_config
