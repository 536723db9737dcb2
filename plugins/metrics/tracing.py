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


class _HookSpan:
    """The ``hook <name>`` span around one hook call, made current while the call runs.

    ``start_as_current_span`` does the same through a generator-based context manager
    and a decorator wrapper, four layers per call; a hook span is opened for every hook
    implementation a request runs, so it is done here directly: the same span, attributes
    and parent, and the SDK span's own exit records an exception and the error status."""

    __slots__ = ("attributes", "name", "span", "token", "tracer")

    def __init__(self, tracer: Any, plugin: str, hook: str) -> None:
        self.tracer = tracer
        self.name = f"hook {hook}"
        self.attributes = {"imageapi.plugin": plugin, "imageapi.hook": hook}

    def __enter__(self) -> Any:
        self.span = self.tracer.start_span(self.name, attributes=self.attributes)
        self.token = _otel.attach(_otel.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        _otel.detach(self.token)
        self.span.__exit__(kind, error, tb)  # the SDK span: records an error, ends


class _NoCounter:
    """The instrumentation's connection-usage counter, which we do not keep: imageapi's
    metrics are Prometheus's (``prometheus``) and no OpenTelemetry meter provider is set,
    so the global no-op meter dropped it anyway, after building two attribute sets per
    pool checkout and checkin."""

    def add(self, amount: float, attributes: Any = None) -> None:
        pass


class _Otel:
    """The OpenTelemetry functions ``_HookSpan`` calls, imported once tracing is on."""

    def load(self) -> None:
        from opentelemetry.context import attach, detach
        from opentelemetry.trace import set_span_in_context

        self.attach, self.detach = attach, detach
        self.set_span_in_context = set_span_in_context


_otel: Any = _Otel()


STATEMENTS_KEPT = 512
#: The kernel opens SQLite transactions with an explicit ``BEGIN`` (``kernel.db``); on
#: PostgreSQL the driver does it unseen. Three of a ``/photos`` request's spans said only
#: that, so they are left out on SQLite too: SQL spans are the statements that do work.
UNTRACED = frozenset({"BEGIN", "BEGIN IMMEDIATE"})


def sql_tracer(base: type) -> type:
    """The SQLAlchemy instrumentation's ``EngineTracer`` with the span of a statement
    named and attributed once per statement text.

    A ``/photos`` request runs six or seven statements; for each, the instrumentation
    parses the engine URL, asks the cursor for the database name, strips comments with a
    regular expression to find the operation, builds the attributes and makes the span
    current to set them one by one. All of that depends only on the engine and the
    statement's text, which SQLAlchemy's compiled cache keeps identical from one request
    to the next, so it is kept per text here: the spans and attributes are the same
    (``UNTRACED`` statements excepted). Falls back to the instrumentation's own code
    when it has changed shape."""
    try:
        from opentelemetry.instrumentation.sqlalchemy import engine as instrumented
        from opentelemetry.instrumentation.utils import is_instrumentation_enabled
        from opentelemetry.trace import SpanKind
    except ImportError:  # pragma: no cover - another instrumentation version
        return base
    needed = ("_get_attributes_from_url", "_get_attributes_from_cursor_or_conn",
              "_get_db_name_from_cursor_or_conn", "_set_db_statement", "_set_db_system",
              "_set_db_operation")  # fmt: skip
    if not all(hasattr(instrumented, name) for name in needed):
        return base

    class SqlTracer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.kept: dict[str, tuple[str, dict[str, Any]]] = {}

        def describe(self, conn: Any, cursor: Any, statement: str) -> tuple[str, dict[str, Any]]:
            db, web = self._sem_conv_opt_in_mode_db, self._sem_conv_opt_in_mode_http
            attrs, found = instrumented._get_attributes_from_url(conn.engine.url, db, web)
            if not found:
                attrs = instrumented._get_attributes_from_cursor_or_conn(
                    self.vendor, conn, cursor, attrs, db, web
                )
            db_name = instrumented._get_db_name_from_cursor_or_conn(self.vendor, conn, cursor)
            name = self._operation_name(db_name, statement)
            span_attrs = dict(attrs)
            instrumented._set_db_statement(span_attrs, statement, db)
            instrumented._set_db_system(span_attrs, self.vendor, db)
            instrumented._set_db_operation(span_attrs, name, db)
            return name, span_attrs

        def _before_cur_exec(
            self, conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
        ) -> tuple[Any, Any]:
            if self.enable_commenter or not isinstance(statement, str):
                return super()._before_cur_exec(conn, cursor, statement, params, context, many)
            if statement in UNTRACED or not is_instrumentation_enabled():
                return statement, params
            described = self.kept.get(statement)
            if described is None:
                if len(self.kept) >= STATEMENTS_KEPT:
                    self.kept.clear()
                described = self.kept[statement] = self.describe(conn, cursor, statement)
            name, attributes = described
            context._otel_span = self.tracer.start_span(
                name, kind=SpanKind.CLIENT, attributes=attributes
            )
            return statement, params

    return SqlTracer


class Tracing:
    """One kernel's tracer provider, exporter and instrumentations."""

    def __init__(self, kernel: Kernel, url: str, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        _otel.load()
        self.kernel = kernel
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer("imageapi")
        self.instrumented = False

    def app_plugin(self) -> Any:
        """Litestar's OpenTelemetry plugin: one server span per request (without the ASGI
        ``receive``/``send`` spans: they cost 0.2 ms a request), made by
        ``ServerSpanMiddleware`` (``server_span``)."""
        from litestar.plugins.opentelemetry import OpenTelemetryConfig

        from .server_span import OpenTelemetryPlugin, ServerSpanMiddleware

        config = OpenTelemetryConfig(
            tracer_provider=self.provider,
            exclude_spans=["receive", "send"],  # two spans per request that say nothing
            middleware_class=ServerSpanMiddleware,
        )
        return OpenTelemetryPlugin(config)

    def observe(self, plugin: str, hook: str) -> AbstractContextManager[Any]:
        return _HookSpan(self.tracer, plugin, hook)

    def instrument(self) -> None:
        """SQL of this kernel's engine, and every httpx client of the process.

        SQL through the instrumentation's ``EngineTracer`` on this kernel's engine alone:
        ``SQLAlchemyInstrumentor`` also patches ``create_engine`` process-wide, refuses
        SQLAlchemy 2.1 by its version range and imports the asyncio extension (greenlet),
        none of which one engine needs.
        """
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        from kernel.media import ffmpeg

        sql_tracer(EngineTracer)(self.tracer, self.kernel.db.engine, _NoCounter())
        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider)
        ffmpeg.tracer = self.tracer
        self.instrumented = True

    def close(self) -> None:
        """Export what is buffered, then take the instrumentation off (a test process
        builds many kernels; each instruments and uninstruments in turn)."""
        if self.instrumented:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            from kernel.media import ffmpeg

            HTTPXClientInstrumentor().uninstrument()  # the engine goes with the kernel
            if ffmpeg.tracer is self.tracer:
                ffmpeg.tracer = None
            self.instrumented = False
        self.provider.shutdown()
