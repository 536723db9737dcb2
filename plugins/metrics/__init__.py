"""metrics: Prometheus metrics, OpenTelemetry traces and a request log, through the
framework's own plugins.

* ``/metrics`` on a listener of its own, ``METRICS_BIND`` (default ``127.0.0.1:8088``,
  like the reference's second localhost server; ``off`` disables metrics): Litestar's
  Prometheus middleware for requests by route template, the reference's
  ``imageserver_image_total`` / ``imageserver_video_total``, each queue's pending work
  and job states (``job_counts``), and hook call durations and failures by plugin and
  hook (the kernel dispatcher's observer).
* Traces when ``OTLP_OTLS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the
  ``[otel]`` extra is installed (``tracing``).
* One log line per request (``requests``).

Nothing is added to the app or the dispatcher for a part that is off, so an operator
who wants none of it pays nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from kernel import hookimpl
from kernel.config import ConfigError
from kernel.plugin import Plugin as KernelPlugin

from . import tracing
from .requests import Middleware, request_log
from .settings import MetricsSettings, parse_bind

if TYPE_CHECKING:
    from kernel.core import Kernel

    from .prometheus import Metrics

log = logging.getLogger(__name__)
__all__ = ["MetricsSettings", "Plugin"]


class Plugin(KernelPlugin[MetricsSettings]):
    """The metrics plugin of one kernel: its registry and listener, its tracer."""

    def __init__(self, kernel: Kernel, settings: MetricsSettings) -> None:
        super().__init__(kernel, settings)
        try:
            self.bind = parse_bind(kernel.config.env.get("METRICS_BIND"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.metrics: Metrics | None = None  # made with the app: commands serve no metrics
        self.tracing: tracing.Tracing | None = None
        url = tracing.endpoint(kernel.config.env)
        if url and tracing.available():
            self.tracing = tracing.Tracing(kernel, url, settings.service_name)
        elif url:
            log.warning(
                "%s is set but OpenTelemetry is not installed (pip install 'imageapi[otel]');"
                " not tracing",
                next(v for v in tracing.ENDPOINT_VARIABLES if kernel.config.env.get(v)),
            )
        if self.tracing is not None:
            kernel.dispatcher.observers.insert(0, self.tracing.observe)

    @property
    def address(self) -> tuple[str, int] | None:
        """Where ``/metrics`` is served (host, port) once started; None when off."""
        return self.metrics.address if self.metrics else None

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return MetricsSettings

    @hookimpl
    def app_plugins(self) -> list[Any]:
        """The request log outside the token guard (refusals are logged); Litestar's
        Prometheus middleware inside it, where an exception has already become a response
        with its status (a refusal raised by the guard would be counted as a 200)."""
        outer = [request_log] if self.settings.request_log else []
        inner: list[Any] = []
        if self.bind:
            from .prometheus import request_middleware

            if self.metrics is None:
                self._make_metrics()
            inner = [request_middleware()]
        found: list[Any] = []
        if outer or inner:
            stop = self.metrics.close if self.metrics else None
            found.append(Middleware(outer, inner, self._start, stop))
        if self.tracing is not None:
            found.append(self.tracing.app_plugin())
        return found

    def _make_metrics(self) -> None:
        """The registry and its collectors, and the hook observer, for a serving process
        only: ``prometheus_client`` and Litestar's Prometheus plugin took 0.1 s of every
        command's start-up. The observer goes inside the tracer's, so that a hook's span
        encloses its timing."""
        from .prometheus import Metrics

        self.metrics = Metrics(self.kernel)
        observers = self.kernel.dispatcher.observers
        inside = observers.index(self.tracing.observe) + 1 if self.tracing is not None else 0
        observers.insert(inside, self.metrics.observe)

    def _start(self) -> None:
        """With the server: our request log replaces uvicorn's access log (which shows
        raw paths with their query strings and no duration); start ``/metrics`` (a port
        taken is logged, not fatal)."""
        if self.settings.request_log:
            logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        if self.metrics is None or self.bind is None:
            return
        try:
            host, port = self.metrics.listen(*self.bind)
        except OSError as exc:
            log.error("metrics listener on %s:%d not started: %s", *self.bind, exc)
            return
        log.info("metrics on http://%s:%d/metrics", host, port)

    @hookimpl
    def on_startup(self) -> None:
        if self.tracing is not None:
            self.tracing.instrument()
            log.info("tracing to %s", tracing.endpoint(self.kernel.config.env))

    @hookimpl
    def on_shutdown(self) -> None:
        if self.tracing is not None:
            self.tracing.close()
