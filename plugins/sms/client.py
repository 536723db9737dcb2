"""The SMS message API: ``GET {SMS_API_URL}/api/messages?q=&from=&to=&limit=``.

The contract this plugin expects (a small service over a phone's message export):

* query parameters, each left out when not asked for: ``q`` (words the sender or body
  contains), ``from`` and ``to`` (ISO 8601 dates or date-times, inclusive), ``limit``;
* ``Authorization: Bearer {SMS_API_TOKEN}`` when the token is set;
* a 200 answer with a JSON list of ``{timestamp, sender, body}`` (``timestamp`` an ISO
  8601 string or Unix seconds), oldest first; other fields are ignored.

Anything else — no connection, no whole answer within the timeout, an error status, a
body that is not that list — is ``SmsUnavailable`` with the reason (never the token).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

# httpx where it is used: its import also loads its command-line client (rich, pygments).
if TYPE_CHECKING:
    import httpx

BODY_LIMIT = 8 << 20


class SmsUnavailable(Exception):
    """The SMS API did not answer as the contract says."""


class TextMessage(msgspec.Struct):
    timestamp: str | float
    sender: str = ""
    body: str = ""

    def when(self) -> str:
        """The timestamp as ISO text (Unix seconds are shown in UTC)."""
        if isinstance(self.timestamp, str):
            return self.timestamp
        return datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="seconds")

    def as_dict(self) -> dict[str, str]:
        return {"timestamp": self.when(), "sender": self.sender, "body": self.body}


_MESSAGES = msgspec.json.Decoder(list[TextMessage])


class SmsApi:
    def __init__(self, base_url: str, token: str | None, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never the token
        return f"SmsApi({self.base_url!r})"

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

    async def messages(
        self,
        *,
        query: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        limit: int | None = None,
    ) -> list[TextMessage]:
        import httpx

        params: dict[str, str] = {}
        for name, value in (("q", query), ("from", date_from), ("to", date_to)):
            if value:
                params[name] = value
        if limit is not None:
            params["limit"] = str(limit)
        where = f"the SMS API at {self.base_url}"
        try:
            async with asyncio.timeout(self.timeout):
                request = self.http.build_request(
                    "GET", self.base_url + "/api/messages", params=params, headers=self._headers
                )
                response = await self.http.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > BODY_LIMIT:
                            raise SmsUnavailable(f"{where} answered more than 8 MiB")
                finally:
                    await response.aclose()
        except TimeoutError:
            raise SmsUnavailable(f"{where} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise SmsUnavailable(f"{where} cannot be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SmsUnavailable(f"{where} answered {response.status_code}")
        try:
            return _MESSAGES.decode(bytes(body))
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise SmsUnavailable(f"{where} answered something that is not a message list") from None
