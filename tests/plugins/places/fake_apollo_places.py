"""A fake Apollo places service on 127.0.0.1: ``GET /api/places/contains?lat=&lon=``
answers the places whose circle contains the point, smallest radius first, as Apollo
does. ``mode``: ``"error"`` (500), ``"garbage"`` (not JSON), ``"stall"`` (no answer
until the server stops), ``"drop"`` (connection closed unanswered). ``Geocoder`` is an
in-test plugin standing in for the general geocoder."""

from __future__ import annotations

import json
import math
import socket
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kernel import hookimpl
from kernel.testing import LocalServer

HOME = {
    "id": 1,
    "name": "Home",
    "description": "My house in Cambridge",
    "category": "residence",
    "lat": 42.3741,
    "lon": -71.1169,
    "radius_m": 80,
}
NEIGHBOURHOOD = {
    "id": 2,
    "name": "Neighbourhood",
    "category": None,
    "lat": 42.3745,
    "lon": -71.1175,
    "radius_m": 1500,
}


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dlat, dlon = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = (
        math.sin(dlat / 2) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlon / 2) ** 2
    )
    return 6_371_000 * 2 * math.asin(math.sqrt(a))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake: FakeApolloPlaces = self.server.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        fake.requests.append((parts.path, query))
        if fake.mode == "stall":
            fake.release.wait(60)
            self.close_connection = True
            return
        if fake.mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if parts.path != "/api/places/contains":
            return self.send(404, b'{"detail": "Not Found"}')
        if fake.mode == "error":
            return self.send(500, b'{"detail": "database is locked"}')
        if fake.mode == "garbage":
            return self.send(200, b"<html>oops</html>")
        lat, lon = float(query["lat"][0]), float(query["lon"][0])
        found = [p for p in fake.places if metres(lat, lon, p["lat"], p["lon"]) <= p["radius_m"]]
        found.sort(key=lambda p: p["radius_m"])
        self.send(200, json.dumps(found).encode())

    def send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeApolloPlaces(LocalServer):
    def __init__(self) -> None:
        self.places: list[dict[str, Any]] = [NEIGHBOURHOOD, HOME]
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.mode = "ok"
        super().__init__(_Handler)


class Geocoder:
    """Stands in for the general geocoder (the insights plugin's Nominatim): last."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    @hookimpl(trylast=True)
    async def resolve_location(self, lat, lon):
        self.asked.append((lat, lon))
        return None if abs(lat) < 1 else "Cambridge, MA"
