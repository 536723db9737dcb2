"""OpenTelemetry: spans for HTTP (Litestar's plugin), SQL (the SQLAlchemy instrumentation),
outgoing httpx calls, every hook call (``hook <name>``, the plugin as an attribute) and
ffmpeg runs, exported over OTLP/HTTP.

Switched on by ``OTLP_OTLS_ENDPOINT`` (the reference server's name) or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``, and only when the optional ``[otel]`` packages are
installed; otherwise nothing here is imported and nothing is instrumented: requests pay
nothing, not even a no-op tracer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from kernel.core import Kernel

log = logging.getLogger(__name__)
ENDPOINT_VARIABLES = ("OTLP_OTLS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL: the variable's base URL plus ``/v1/traces`` (as the
    OpenTelemetry exporters read ``OTEL_EXPORTER_OTLP_ENDPOINT``), or None when unset."""
    for name in ENDPOINT_VARIABLES:
        value = (env.get(name) or "").strip()
        if value:
            value = value.rstrip("/")
            return value if value.endswith("/v1/traces") else value + "/v1/traces"
    return None


def available() -> bool:
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.instrumentation.httpx
        import opentelemetry.instrumentation.sqlalchemy
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


class Tracing:
    """One kernel's tracer provider, exporter and instrumentations."""

    def __init__(self, kernel: Kernel, url: str, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.kernel = kernel
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer("imageapi")
        self.instrumented = False

    def app_plugin(self) -> Any:
        """Litestar's OpenTelemetry plugin: one server span per request, named by route
        (without the ASGI ``receive``/``send`` spans: they cost 0.2 ms a request)."""
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

        config = OpenTelemetryConfig(
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],  # two spans per request that say nothing
        )
        return OpenTelemetryPlugin(config)

    def observe(self, plugin: str, hook: str) -> AbstractContextManager[Any]:
        return self.tracer.start_as_current_span(
            f"hook {hook}", attributes={"imageapi.plugin": plugin, "imageapi.hook": hook}
        )

    def instrument(self) -> None:
        """SQL of this kernel's engine, and every httpx client of the process.

        SQL through the instrumentation's ``EngineTracer`` on this kernel's engine alone:
        ``SQLAlchemyInstrumentor`` also patches ``create_engine`` process-wide, refuses
        SQLAlchemy 2.1 by its version range and imports the asyncio extension (greenlet),
        none of which one engine needs.
        """
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import get_meter

        from media import ffmpeg

        usage = get_meter("imageapi").create_up_down_counter("db.client.connections.usage")
        EngineTracer(self.tracer, self.kernel.db.engine, usage)
        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider)
        ffmpeg.tracer = self.tracer
        self.instrumented = True

    def close(self) -> None:
        """Export what is buffered, then take the instrumentation off (a test process
        builds many kernels; each instruments and uninstruments in turn)."""
        if self.instrumented:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            from media import ffmpeg

            HTTPXClientInstrumentor().uninstrument()  # the engine goes with the kernel
            if ffmpeg.tracer is self.tracer:
                ffmpeg.tracer = None
            self.instrumented = False
        self.provider.shutdown()
