"""A fake SMS message API on 127.0.0.1 speaking the contract the sms plugin documents:
``GET /api/messages?q=&from=&to=&limit=`` → ``[{timestamp, sender, body}]`` oldest first,
a Bearer token required when ``token`` is set (401 otherwise). ``mode``: ``"error"``
(500), ``"garbage"`` (not JSON), ``"stall"`` (no answer until the server stops)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kernel.testing import LocalServer

TOKEN = "sms-token-0123456789"
MESSAGES = [
    {"timestamp": "2024-07-12T09:00:00", "sender": "Mum", "body": "Call me when you land"},
    {"timestamp": "2024-07-13T20:15:00", "sender": "Alice", "body": "Lake tomorrow? Bring towels"},
    {"timestamp": "2024-07-14T17:55:00", "sender": "Bob", "body": "At the lake, where are you"},
    {"timestamp": 1721000000, "sender": "Alice", "body": "Best swim of the summer"},
    {"timestamp": "2024-07-20T08:00:00", "sender": "Dentist", "body": "Reminder: Monday 9:00"},
]


def _day(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    return str(value)[:10]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake: FakeSms = self.server.fake
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        fake.requests.append((parts.path, query, dict(self.headers)))
        if fake.mode == "stall":
            fake.release.wait(60)
            self.close_connection = True
            return
        if parts.path != "/api/messages":
            return self.send(404, {"detail": "Not Found"})
        if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self.send(401, {"detail": "bad token"})
        if fake.mode == "error":
            return self.send(500, {"detail": "export is being re-indexed"})
        if fake.mode == "garbage":
            return self.send(200, None, b"<html>oops</html>")
        found = fake.messages
        if "q" in query:
            words = query["q"].lower()
            found = [m for m in found if words in (m["body"] + " " + m["sender"]).lower()]
        if "from" in query:
            found = [m for m in found if _day(m["timestamp"]) >= query["from"][:10]]
        if "to" in query:
            found = [m for m in found if _day(m["timestamp"]) <= query["to"][:10]]
        if "limit" in query:
            found = found[: int(query["limit"])]
        self.send(200, found)

    def send(self, status: int, value: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeSms(LocalServer):
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.messages: list[dict[str, Any]] = list(MESSAGES)
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.mode = "ok"
        super().__init__(_Handler)
