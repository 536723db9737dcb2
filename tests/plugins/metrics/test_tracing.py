"""Traces: a local OTLP/HTTP receiver (the real wire protocol: protobuf
``ExportTraceServiceRequest`` POSTed to ``/v1/traces``) collects the spans of a
``/photos`` request: the HTTP span, a ``hook file_extras`` span naming the plugin, and
the SQL, all in one trace. Skipped cleanly when the optional ``[otel]`` group is not
installed (CI installs it)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kernel import hookimpl
from kernel.testing import harness, make_jpeg

pytest.importorskip("opentelemetry.sdk.trace", reason="the optional [otel] group is not installed")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

pytestmark = pytest.mark.db


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint on 127.0.0.1 that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        receiver.spans.extend(scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Extras:
    @hookimpl
    def file_extras(self, files):
        return {f.id: {"traced": True} for f in files}


def attributes(span) -> dict:
    return {a.key: a.value.string_value for a in span.attributes}


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP_OTLS_ENDPOINT"])
def test_a_photos_request_is_one_trace_http_hook_sql(tmp_path, library, receiver, variable):
    make_jpeg(library / "a.jpg")
    env = {variable: receiver.url, "METRICS_BIND": "off"}
    with harness(tmp_path, ["metrics"], env=env, extra_plugins={"extras": Extras()}) as h:
        h.scan()
        receiver.spans.clear()
        response = h.get("/photos")
        assert response.status_code == 200 and response.json()["files"][0]["traced"] is True
        h.kernel.plugin("metrics").tracing.provider.force_flush()
    deadline = time.monotonic() + 30
    while not receiver.spans and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(receiver.paths) == {"/v1/traces"}
    (http,) = [
        s for s in receiver.spans if s.name.startswith("GET /photos") and not s.parent_span_id
    ]
    trace = [s for s in receiver.spans if s.trace_id == http.trace_id]
    by_id = {s.span_id: s for s in trace}
    (hook,) = [s for s in trace if s.name == "hook file_extras"]
    assert attributes(hook)["imageapi.plugin"] == "extras"
    sql = [s for s in trace if attributes(s).get("db.system") or "SELECT" in s.name]
    assert sql, ([s.name for s in trace], [(s.name, attributes(s)) for s in receiver.spans][:8])

    def root_of(span):
        while span.parent_span_id:
            span = by_id[span.parent_span_id]
        return span

    assert root_of(hook) is http and all(root_of(s) is http for s in sql)
