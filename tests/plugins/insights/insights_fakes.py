"""Fake Ollama, OpenRouter and Nominatim servers: real HTTP on 127.0.0.1, each in a
thread, speaking the real wire formats — and failing the ways real servers fail.

A model's answers are scripted: ``server.script`` is a list of ``Say`` consumed in
order (then ``server.default``); ``server.responder`` (a function of the request body)
overrides both. ``server.mode`` makes the next requests misbehave:

* ``"stall"``: read the request, then answer nothing until the server stops;
* ``"garbage"``: 200 with a body that is not JSON;
* ``"huge"``: 200 with a 1 GiB body, written 1 MiB at a time until the client hangs up
  (``bytes_sent`` says how far it got);
* ``"drop"``: close the connection without answering;
* ``"drop_mid"``: start a streamed answer, then close the connection;
* ``"error"``: the service's own error answer (status ``error_status``).

``server.delay`` (seconds) makes every answer slow. Every request is recorded (method,
path, query, headers, JSON body).

A model's streamed answer can be held before its last chunk (``server.hold = True``)
until the test sets ``release_last``; a client that hangs up, while the answer is held
or while its first pieces are still being written, sets ``hung_up``:
how a test sees text reach its client while the backend has not finished, and that a
client going away cancels the backend call. ``finished`` counts streamed answers sent
to their end; ``sent_at`` holds the ``perf_counter`` of every content chunk written
(``piece_delay`` seconds apart).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kernel.testing import LocalServer

GIB = 1 << 30
MIB = 1 << 20
INSIGHT = json.dumps({"title": "A day at the lake", "summary": "Two friends swim at dusk."})


@dataclass
class Say:
    """One scripted model answer: text and/or tool calls ``(name, arguments)``;
    ``arguments`` may be a dict, or a str sent as is (broken JSON, for OpenRouter)."""

    content: str = ""
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any  # its .fake is the FakeServer (kernel.testing.LocalServer)

    def setup(self) -> None:
        super().setup()
        # Streamed lines go out as written (as a Go server's do), not held back by Nagle.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        fake.requests.append(
            Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
        )
        if fake.delay:
            time.sleep(fake.delay)  # a slow model: each answer takes this long
        mode = fake.mode
        if mode == "stall":
            fake.release.wait(60)
            self.close_connection = True
            return
        if mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "garbage":
            self.send_json(200, None, raw_body=b"<html>this is not JSON</html>")
            return
        if mode == "huge":
            self.send_huge()
            return
        fake.route(self, parts.path, body)

    do_GET = _handle
    do_POST = _handle

    def send_json(self, status: int, value: Any, raw_body: bytes | None = None) -> None:
        data = raw_body if raw_body is not None else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        """A streamed answer in chunked transfer encoding, as Ollama and OpenRouter send
        them: a connection closed before the last chunk is visibly cut short."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_huge(self) -> None:
        fake = self.server.fake
        self.start_stream("application/json")
        chunk = b"a" * MIB
        try:
            self.write(b'{"message": {"role": "assistant", "content": "')
            for _ in range(GIB // MIB):
                self.write(chunk)
                fake.bytes_sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class FakeServer(LocalServer):
    """A server on 127.0.0.1:<free port>; a context manager."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.mode = "ok"
        self.delay = 0.0
        self.error_status = 500
        self.bytes_sent = 0
        super().__init__(_Handler)

    def route(self, handler: _Handler, path: str, body: Any) -> None:
        handler.send_json(404, {"error": f"no route {path}"})

    def posted(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


class ScriptedModel(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.script: list[Say] = []
        self.default = Say(INSIGHT)
        self.responder: Callable[[dict[str, Any]], Say] | None = None
        self.hold = False
        self.piece_delay = 0.0  # seconds between a streamed answer's content chunks
        self.release_last = threading.Event()
        self.hung_up = threading.Event()
        self.finished = 0
        self.sent_at: list[float] = []
        self._lock = threading.Lock()

    def chunk_sent(self) -> None:
        self.sent_at.append(time.perf_counter())
        if self.piece_delay:
            time.sleep(self.piece_delay)

    def hold_last(self, handler: _Handler) -> bool:
        """Before a streamed answer's last chunk: with ``hold``, wait for
        ``release_last`` (True) or for the client to hang up (False, ``hung_up`` set)."""
        if not self.hold:
            return True
        sock = handler.connection
        while not self.release_last.wait(0.01):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    self.hung_up.set()
                    handler.close_connection = True
                    return False
        return True

    def next_answer(self, body: dict[str, Any]) -> Say:
        if self.responder is not None:
            return self.responder(body)
        with self._lock:
            return self.script.pop(0) if self.script else self.default


def pieces(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeOllama(ScriptedModel):
    """``/api/tags``, ``/api/show`` (capabilities), ``/api/chat`` (JSON or NDJSON)."""

    def __init__(self, models: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self.models = models or {"llava:7b": ["completion", "vision", "tools"]}

    def route(self, handler: _Handler, path: str, body: Any) -> None:
        if self.mode == "error":
            handler.send_json(self.error_status, {"error": "model runner has crashed"})
        elif path == "/api/tags":
            handler.send_json(200, {"models": [
                {"name": m, "model": m, "size": 4_000_000_000,
                 "details": {"family": "llama", "parameter_size": "7B"}}
                for m in self.models
            ]})  # fmt: skip
        elif path == "/api/show":
            name = body.get("model") if isinstance(body, dict) else None
            if name not in self.models:
                handler.send_json(404, {"error": f"model '{name}' not found"})
            else:
                handler.send_json(200, {"capabilities": self.models[name], "details": {}})
        elif path == "/api/chat":
            self.chat(handler, body)
        else:
            super().route(handler, path, body)

    def chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model not in self.models:
            handler.send_json(404, {"error": f"model '{model}' not found, try pulling it first"})
            return
        say = self.next_answer(body)
        calls = [
            {"function": {"name": name, "arguments": arguments}}
            for name, arguments in say.tool_calls
        ]
        if not body.get("stream", True):
            message: dict[str, Any] = {"role": "assistant", "content": say.content}
            if calls:
                message["tool_calls"] = calls
            handler.send_json(200, {
                "model": model, "created_at": "2026-01-01T00:00:00Z", "message": message,
                "done": True, "done_reason": "stop", "eval_count": 10,
            })  # fmt: skip
            return
        handler.start_stream("application/x-ndjson")
        try:
            for n, piece in enumerate(pieces(say.content)):
                if self.mode == "drop_mid" and n == 1:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    handler.close_connection = True
                    return
                line = {
                    "model": model,
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
                handler.write(json.dumps(line).encode() + b"\n")
                self.chunk_sent()
            if calls:
                line = {
                    "model": model,
                    "message": {"role": "assistant", "content": "", "tool_calls": calls},
                    "done": False,
                }
                handler.write(json.dumps(line).encode() + b"\n")
            done = {
                "model": model,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "eval_count": 10,
            }
            if not self.hold_last(handler):
                return
            handler.write(json.dumps(done).encode() + b"\n")
            handler.end_stream()
            self.finished += 1
        except (BrokenPipeError, ConnectionResetError):
            self.hung_up.set()  # the client went away before the answer's end


class FakeOpenRouter(ScriptedModel):
    """``POST /chat/completions`` (JSON or SSE), answering as OpenRouter does."""

    def route(self, handler: _Handler, path: str, body: Any) -> None:
        if path != "/api/v1/chat/completions":
            super().route(handler, path, body)
            return
        auth = handler.headers.get("Authorization", "")
        if self.mode == "error" or not auth.startswith("Bearer "):
            # Like a careless upstream: the error echoes what it was sent.
            handler.send_json(self.error_status, {
                "error": {"message": f"No auth credentials found for {auth!r}", "code": 401}
            })  # fmt: skip
            return
        say = self.next_answer(body)
        model = body.get("model")
        calls = [
            {"id": f"call_{n}", "type": "function", "function": {
                "name": name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            }}
            for n, (name, arguments) in enumerate(say.tool_calls)
        ]  # fmt: skip
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": say.content or None}
            if calls:
                message["tool_calls"] = calls
            handler.send_json(200, {
                "id": "gen-1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if calls else "stop"}],
            })  # fmt: skip
            return
        handler.start_stream("text/event-stream")

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                "id": "gen-1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        try:
            handler.write(b": OPENROUTER PROCESSING\n\n")
            for n, piece in enumerate(pieces(say.content) if say.content else []):
                if self.mode == "drop_mid" and n == 1:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    handler.close_connection = True
                    return
                handler.write(event({"role": "assistant", "content": piece}))
                self.chunk_sent()
            for index, call in enumerate(calls):
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                handler.write(event({"tool_calls": [{
                    "index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": arguments[:half]},
                }]}))  # fmt: skip
                handler.write(event({"tool_calls": [{
                    "index": index, "function": {"arguments": arguments[half:]},
                }]}))  # fmt: skip
            if not self.hold_last(handler):
                return
            handler.write(event({}, "tool_calls" if calls else "stop"))
            handler.write(b"data: [DONE]\n\n")
            handler.end_stream()
            self.finished += 1
        except (BrokenPipeError, ConnectionResetError):
            self.hung_up.set()  # the client went away before the answer's end


class FakeNominatim(FakeServer):
    """``GET /reverse?format=jsonv2&lat=&lon=``; ``places`` maps rounded (lat, lon) to an
    address; anywhere else is the ocean ("Unable to geocode")."""

    def __init__(self) -> None:
        super().__init__()
        self.places: dict[tuple[float, float], dict[str, str]] = {
            (42.374, -71.117): {"city": "Cambridge", "state": "Massachusetts",
                                "country": "United States"},
        }  # fmt: skip

    def route(self, handler: _Handler, path: str, body: Any) -> None:
        if path != "/reverse":
            super().route(handler, path, body)
            return
        query = self.requests[-1].query
        if query.get("format") != ["jsonv2"]:
            handler.send_json(400, {"error": "format must be jsonv2 here"})
            return
        if self.mode == "error":
            handler.send_json(self.error_status, {"error": "overloaded"})
            return
        lat, lon = float(query["lat"][0]), float(query["lon"][0])
        address = self.places.get((round(lat, 3), round(lon, 3)))
        if address is None:
            handler.send_json(200, {"error": "Unable to geocode"})
            return
        handler.send_json(200, {
            "place_id": 1, "lat": str(lat), "lon": str(lon), "category": "place",
            "type": "city", "name": address.get("city", ""),
            "display_name": ", ".join(address.values()), "address": address,
        })  # fmt: skip
