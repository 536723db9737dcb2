"""What the OpenTelemetry SDK alone costs for the spans of one traced request.

    .venv/bin/python tests/benchmarks/span_floor.py EXPORT.pb OTLP_URL [--traces 3000]

``EXPORT.pb`` is one OTLP/HTTP export body (an ``ExportTraceServiceRequest``) as a
traced imageapi server sent it; ``observability.py --live`` saves one and runs this
script on it. One trace of a ``GET /photos`` request is taken from it, and its spans (the
same names, kinds, attributes and resource, under one parent) are made again and again
with the SDK's ``TracerProvider``, ``BatchSpanProcessor`` and the OTLP/HTTP exporter
sending to ``OTLP_URL``: the work tracing adds to a request even if the instrumentation
itself cost nothing. It runs in a process of its own so that its CPU time (the export
thread's included) is the SDK's alone; it prints the spans per trace and the CPU
milliseconds per trace.
"""

from __future__ import annotations

import argparse
import resource
from collections import defaultdict
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

WARM_UP = 200


def value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


def attributes(items: Any) -> dict[str, Any]:
    return {item.key: value(item.value) for item in items}


def one_request_trace(body: bytes) -> tuple[dict[str, Any], list[tuple[str, SpanKind, dict]]]:
    """(the resource's attributes, the trace's spans as (name, kind, attributes), the
    server span first) of a ``GET /photos`` trace in the export."""
    request = ExportTraceServiceRequest.FromString(body)
    traces: dict[bytes, list[Any]] = defaultdict(list)
    for resource_spans in request.resource_spans:
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                traces[span.trace_id].append((resource_spans.resource, span))
    whole = [  # a batch can end between a trace's first spans and its last
        spans
        for spans in traces.values()
        if any(not span.parent_span_id and span.name.startswith("GET /photos") for _, span in spans)
    ]
    if not whole:
        raise SystemExit("no GET /photos trace in the export")
    spans = max(whole, key=len)
    ordered = sorted((span for _, span in spans), key=lambda span: bool(span.parent_span_id))
    shapes = [
        (span.name, SpanKind(max(span.kind - 1, 0)), attributes(span.attributes))
        for span in ordered
    ]  # the protocol's kinds count from UNSPECIFIED, the SDK's from INTERNAL
    return attributes(spans[0][0].attributes), shapes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export", type=Path)
    parser.add_argument("url")
    parser.add_argument("--traces", type=int, default=3000)
    args = parser.parse_args()
    resource_attributes, shapes = one_request_trace(args.export.read_bytes())
    provider = TracerProvider(resource=Resource.create(resource_attributes))
    exporter = OTLPSpanExporter(endpoint=args.url.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 21))
    tracer = provider.get_tracer("span_floor")
    (root_name, root_kind, root_attributes), children = shapes[0], shapes[1:]

    def one_trace() -> None:
        root = tracer.start_span(root_name, kind=root_kind, attributes=root_attributes)
        parent = set_span_in_context(root)
        for name, kind, attrs in children:
            tracer.start_span(name, context=parent, kind=kind, attributes=attrs).end()
        root.end()

    for _ in range(WARM_UP):
        one_trace()
    provider.force_flush()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(args.traces):
        one_trace()
    provider.force_flush()  # every span exported: the export thread's work is counted
    after = resource.getrusage(resource.RUSAGE_SELF)
    provider.shutdown()
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(len(shapes), f"{cpu * 1000 / args.traces:.4f}")


if __name__ == "__main__":
    main()
