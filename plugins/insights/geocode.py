"""Reverse geocoding against Nominatim (``/reverse?format=jsonv2``) at ``NOMINATIM_URL``.

Nominatim's public usage policy allows one request a second from an application that
names itself in its User-Agent; so do we, whatever server is configured: requests take
turns behind one lock, spaced a second apart, and answers are kept (least recently used
first out) by coordinates rounded to ``geocode_precision`` decimals, so the photos of
one afternoon cost one request. "No place here" is kept too; a failure (timeout, 5xx)
is not, and answers None so the next ``resolve_location`` source, or none, decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import msgspec

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
MIN_INTERVAL_SECONDS = 1.0
BODY_LIMIT = 1 << 20
_LOCALITY = ("city", "town", "village", "hamlet", "municipality", "suburb", "county")
_MISSING = object()


def describe(answer: Any) -> str | None:
    """ "Cambridge, Massachusetts, United States" from a jsonv2 answer (or its
    ``display_name`` when the address has none of those parts)."""
    if not isinstance(answer, dict) or "error" in answer:
        return None
    address = answer.get("address") if isinstance(answer.get("address"), dict) else {}
    parts: list[str] = []
    name = answer.get("name")
    locality = next((address[k] for k in _LOCALITY if isinstance(address.get(k), str)), None)
    if isinstance(name, str) and name and name != locality:
        parts.append(name)
    for value in (locality, address.get("state"), address.get("country")):
        if isinstance(value, str) and value and value not in parts:
            parts.append(value)
    if parts:
        return ", ".join(parts)
    display = answer.get("display_name")
    return display if isinstance(display, str) and display else None


class Nominatim:
    """One Nominatim endpoint, rate limited and cached."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        user_agent: str,
        precision: int = 3,
        cache_size: int = 10_000,
    ) -> None:
        self.base_url = base_url
        self.http = http
        self.user_agent = user_agent
        self.precision = precision
        self.cache_size = cache_size
        self.cache: OrderedDict[tuple[float, float], str | None] = OrderedDict()
        self.requests = 0  # sent to the server (for tests and the operator's curiosity)
        self._lock = asyncio.Lock()
        self._last = float("-inf")

    def key(self, lat: float, lon: float) -> tuple[float, float]:
        return round(lat, self.precision), round(lon, self.precision)

    async def lookup(self, lat: float, lon: float) -> str | None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        key = self.key(lat, lon)
        found = self._cached(key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        async with self._lock:
            found = self._cached(key)  # another request may have looked it up meanwhile
            if found is not _MISSING:
                return found  # type: ignore[return-value]
            wait = self._last + MIN_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                place, keep = await self._request(*key)
            finally:
                self._last = time.monotonic()
            if keep:
                self._store(key, place)
            return place

    def _cached(self, key: tuple[float, float]) -> object:
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        return _MISSING

    def _store(self, key: tuple[float, float], place: str | None) -> None:
        if self.cache_size <= 0:
            return
        self.cache[key] = place
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    async def _request(self, lat: float, lon: float) -> tuple[str | None, bool]:
        """(place, whether to cache it)."""
        import httpx

        self.requests += 1
        params = {"format": "jsonv2", "lat": f"{lat}", "lon": f"{lon}", "addressdetails": "1"}
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                request = self.http.build_request(
                    "GET", self.base_url + "/reverse", params=params, headers=headers
                )
                response = await self.http.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > BODY_LIMIT:
                            raise ValueError("answer larger than 1 MiB")
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.HTTPError, ValueError) as exc:
            log.warning("insights: Nominatim at %s failed: %s", self.base_url, _reason(exc))
            return None, False
        if response.status_code != 200:
            log.warning(
                "insights: Nominatim at %s answered %d", self.base_url, response.status_code
            )
            return None, False
        try:
            answer = msgspec.json.decode(bytes(body))
        except msgspec.DecodeError:
            log.warning("insights: Nominatim at %s answered with invalid JSON", self.base_url)
            return None, False
        return describe(answer), True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    return str(exc) or type(exc).__name__
