"""sms: the household's text messages as context for LLMs (insights and chat).

With ``SMS_API_URL`` set (and ``SMS_API_TOKEN`` when the API wants one) the plugin
offers the LLM tool ``search_messages`` and adds, through the kernel's
``photo_context`` hook, the messages of the day before to the day after a photo was
taken to what a model is told about it. Without the variable it is inert. The API's
expected contract is in ``client`` and the README.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

import kernel
from kernel import hookimpl
from kernel.types import FileRef, Tool, ToolContext

from .client import SmsApi, SmsUnavailable, TextMessage

if TYPE_CHECKING:
    from kernel.core import Kernel

__all__ = ["Plugin", "SmsSettings"]
log = logging.getLogger(__name__)
DEFAULT_RESULT_CHARS = 16_000
DESCRIPTION = (
    "Search the household's text messages (SMS): words to look for and/or a date range"
    " (ISO dates, inclusive). Answers {timestamp, sender, body} oldest first."
)


class SmsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``[plugins.sms]`` (optional); ``SMS_API_URL`` wins over ``api_url``. The token is
    read from ``SMS_API_TOKEN`` only (a secret does not belong in plugins.toml)."""

    api_url: str | None = None
    #: one API call, connect to last byte, in seconds.
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    #: how many messages of ±1 day a photo's context carries at most.
    context_messages: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20
    #: and in how many characters.
    context_max_chars: Annotated[int, msgspec.Meta(ge=200, le=100_000)] = 4_000


class SearchParams(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(description="Words to look for.")] | None = None
    date_from: Annotated[str, msgspec.Meta(description="First day, e.g. 2024-07-13.")] | None = None
    date_to: Annotated[str, msgspec.Meta(description="Last day, e.g. 2024-07-15.")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20


def _iso(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be an ISO date or date-time, got {value!r}") from None
    return value.strip()


def fitted(messages: list[TextMessage], limit: int) -> dict[str, Any]:
    """As many messages as fit in ``limit`` characters of JSON, oldest first, saying how
    many were left out: a whole list the model can read rather than one cut mid-way."""
    kept: list[dict[str, str]] = []
    size = 64  # the envelope
    for message in messages:
        item = message.as_dict()
        cost = len(msgspec.json.encode(item)) + 1
        if size + cost > limit:
            break
        kept.append(item)
        size += cost
    result: dict[str, Any] = {"messages": kept}
    if len(kept) < len(messages):
        result["omitted"] = len(messages) - len(kept)
    return result


class Plugin(kernel.Plugin[SmsSettings]):
    def __init__(self, kernel: Kernel, settings: SmsSettings) -> None:
        env = kernel.config.env
        url = (env.get("SMS_API_URL") or "").strip() or settings.api_url
        super().__init__(kernel, msgspec.structs.replace(settings, api_url=url or None))
        token = (env.get("SMS_API_TOKEN") or "").strip() or None
        base = self.settings.api_url
        self.api = SmsApi(base, token, timeout=settings.timeout_seconds) if base else None

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return SmsSettings

    @hookimpl
    def tools(self) -> list[Tool]:
        if self.api is None:
            return []
        return [Tool("search_messages", DESCRIPTION, SearchParams, self.search_messages)]

    async def search_messages(self, params: SearchParams, ctx: ToolContext) -> dict[str, Any]:
        assert self.api is not None
        try:
            date_from = _iso(params.date_from, "date_from")
            date_to = _iso(params.date_to, "date_to")
        except ValueError as exc:
            return {"error": str(exc)}
        try:
            found = await self.api.messages(
                query=(params.query or "").strip() or None,
                date_from=date_from,
                date_to=date_to,
                limit=params.limit,
            )
        except SmsUnavailable as exc:
            log.warning("sms: %s", exc)
            return {"error": f"the messages could not be searched: {exc}"}
        return fitted(found[: params.limit], ctx.result_limit or DEFAULT_RESULT_CHARS)

    @hookimpl
    async def photo_context(self, file: FileRef, entry: Mapping[str, Any]) -> str | None:
        """The messages of the day before to the day after the photo was taken."""
        if self.api is None:
            return None
        day = taken_day(entry.get("date_taken"))
        if day is None:
            return None
        try:
            found = await self.api.messages(
                date_from=(day - timedelta(days=1)).isoformat(),
                date_to=(day + timedelta(days=1)).isoformat(),
                limit=self.settings.context_messages,
            )
        except SmsUnavailable as exc:
            log.warning("sms: no messages for %s: %s", file.rel_path, exc)
            return None
        lines = ["Text messages from the day before to the day after the photo:"]
        size = len(lines[0])
        for message in found[: self.settings.context_messages]:
            line = f"- {message.when()} {message.sender}: {' '.join(message.body.split())}"
            if size + len(line) + 1 > self.settings.context_max_chars:
                break
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines) if len(lines) > 1 else None

    @hookimpl
    async def on_shutdown(self) -> None:
        if self.api is not None:
            await self.api.close()


def taken_day(value: Any) -> date | None:
    """The calendar day of an entry's ``date_taken`` (ISO text, as the camera's clock
    read it); None when there is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).date()
    except ValueError:
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
