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


class Failing:
    """A plugin route that fails: the server span must say so."""

    @hookimpl
    def routes(self):
        from litestar import get

        @get("/failing", sync_to_thread=False)
        def failing() -> None:
            raise RuntimeError("broken")

        return [failing]


def exported(receiver, name: str) -> list:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [s for s in receiver.spans if s.name == name]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_the_server_span_continues_the_callers_trace_with_the_request_and_status(
    tmp_path, receiver
):
    """The HTTP span joins the trace of an incoming ``traceparent``, is a SERVER span
    with the request's attributes and the response's status, and a failing route makes
    it an error."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "METRICS_BIND": "off"}
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with harness(tmp_path, ["metrics"], env=env, extra_plugins={"failing": Failing()}) as h:
        caller = {"traceparent": f"00-{trace_id}-{parent}-01", "User-Agent": "app/1.0"}
        assert h.get("/photos", params={"limit": 5}, headers=caller).status_code == 200
        assert h.get("/failing").status_code == 500
        h.kernel.plugin("metrics").tracing.provider.force_flush()
    (photos,) = exported(receiver, "GET /photos")
    assert photos.trace_id.hex() == trace_id and photos.parent_span_id.hex() == parent
    assert photos.kind == Span.SPAN_KIND_SERVER
    values = {a.key: a.value for a in photos.attributes}
    assert values["http.method"].string_value == "GET"
    assert values["http.target"].string_value == "/photos"
    assert values["http.user_agent"].string_value == "app/1.0"
    assert values["http.status_code"].int_value == 200
    assert photos.status.code != Status.STATUS_CODE_ERROR
    (failing,) = exported(receiver, "GET /failing")
    assert {a.key: a.value.int_value for a in failing.attributes}["http.status_code"] == 500
    assert failing.status.code == Status.STATUS_CODE_ERROR
    assert not failing.parent_span_id  # no traceparent: a trace of its own


def test_captured_request_headers_are_on_the_server_span(tmp_path, receiver, monkeypatch):
    """What only the instrumentation's full middleware does (here capturing a request
    header, configured by its standard variable) still happens."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "x-client")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "METRICS_BIND": "off"}
    with harness(tmp_path, ["metrics"], env=env) as h:
        assert h.get("/photos", headers={"X-Client": "phone"}).status_code == 200
        h.kernel.plugin("metrics").tracing.provider.force_flush()
    (photos,) = exported(receiver, "GET /photos")
    values = {a.key: a.value for a in photos.attributes}
    (header,) = values["http.request.header.x_client"].array_value.values
    assert header.string_value == "phone"
