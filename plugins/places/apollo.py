"""Apollo's places: ``GET {APOLLO_API_BASE_URL}/api/places/contains?lat=&lon=``.

Apollo (the household's location-history service) keeps named places — a centre, a
radius and a name, with an optional description and category — and answers the ones
containing a point as a JSON list, smallest radius first. Apollo is on the LAN and
optional: every failure (no connection, 5 s without a whole answer, an error status,
something that is not that list) is logged at warning and answered None, so a caller
falls back to what it knew without Apollo.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

BODY_LIMIT = 1 << 20


class Place(msgspec.Struct):
    """One place of Apollo's answer (other fields it sends are ignored)."""

    name: str
    lat: float
    lon: float
    radius_m: float
    description: str | None = None
    category: str | None = None

    def label(self) -> str:
        """ "Home" or "Home (My house in Cambridge)"."""
        described = (self.description or "").strip()
        return f"{self.name} ({described})" if described else self.name

    def line(self) -> str:
        """ "- Home [residence]: My house in Cambridge (radius 50 m)"."""
        text = f"- {self.name}"
        if self.category:
            text += f" [{self.category}]"
        if (self.description or "").strip():
            text += f": {self.description.strip()}"  # type: ignore[union-attr]
        return text + f" (radius {self.radius_m:g} m)"


_PLACES = msgspec.json.Decoder(list[Place])


class Apollo:
    """One Apollo base URL over one HTTP client (made in the loop that uses it)."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.requests = 0
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._http

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def places_at(self, lat: float, lon: float) -> list[Place] | None:
        """The places containing the point, smallest first; None when Apollo failed."""
        import httpx

        self.requests += 1
        url = self.base_url + "/api/places/contains"
        try:
            async with asyncio.timeout(self.timeout):
                request = self.http.build_request(
                    "GET", url, params={"lat": f"{lat}", "lon": f"{lon}"}
                )
                response = await self.http.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > BODY_LIMIT:
                            raise ValueError("an answer larger than 1 MiB")
                finally:
                    await response.aclose()
        except TimeoutError:
            log.warning("places: Apollo at %s: no answer within %g s", self.base_url, self.timeout)
            return None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("places: Apollo at %s failed: %s", self.base_url, exc or type(exc))
            return None
        if response.status_code != 200:
            log.warning("places: Apollo at %s answered %d", self.base_url, response.status_code)
            return None
        try:
            places = _PLACES.decode(bytes(body))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("places: Apollo at %s answered something else: %s", self.base_url, exc)
            return None
        return sorted(places, key=lambda p: p.radius_m)  # Apollo sorts; a stable re-sort is free
