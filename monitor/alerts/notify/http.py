"""Every outgoing HTTP request of notifications goes through here, as healthchecks' `hc/lib/curl.py` does:
one place that sets the user agent and the timeout, refuses redirects, caps what it reads of an answer,
judges a status code, and turns httpx's errors into `DeliveryError`.

Messages name the host, never the URL: a Telegram URL carries the bot token in its path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from monitor import __version__
from monitor.alerts.notify.errors import DeliveryError

USER_AGENT = f"lang-son-fleet-monitor/{__version__} (notifications)"
#: What is read of an answer at most: enough for an error description, never a flood.
MAX_ANSWER_BYTES = 64 * 1024
# A client error that may pass if tried again later; every other 4xx will not.
_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a peer answered: status, headers, and the start of the body (`MAX_ANSWER_BYTES` at most)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def retry_after(self, now: datetime | None = None) -> float | None:
        """Seconds the peer asked to wait (`Retry-After`: seconds or an HTTP date), if it did."""
        value = self.headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def open_client(*, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The client notifications send with: no redirects followed (a webhook URL is the final one)."""
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT}, transport=transport)


def _host(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host


async def post(
    client: httpx.AsyncClient, url: str, *, content: bytes, headers: Mapping[str, str], timeout_s: float
) -> HttpAnswer:
    """POST `content` to `url`; any status is an answer, a failure to get one raises `DeliveryError`."""
    host = _host(url)
    try:
        async with client.stream("POST", url, content=content, headers=dict(headers), timeout=timeout_s) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_ANSWER_BYTES:
                    break
            return HttpAnswer(response.status_code, response.headers, bytes(body[:MAX_ANSWER_BYTES]))
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{host}: no answer within {timeout_s:g} s ({type(exc).__name__})") from exc
    except httpx.InvalidURL as exc:
        raise DeliveryError("the channel's URL is not valid", permanent=True) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{host}: {type(exc).__name__}: {exc}") from exc


def refusal(answer: HttpAnswer, what: str, detail: str = "") -> DeliveryError:
    """The error for an answer that is not a success, permanent when trying again cannot help."""
    if 300 <= answer.status < 400:
        return DeliveryError(f"{what} answered HTTP {answer.status} (a redirect: use the final URL)", permanent=True)
    permanent = 400 <= answer.status < 500 and answer.status not in _RETRYABLE_4XX
    suffix = f": {detail}" if detail else ""
    return DeliveryError(
        f"{what} answered HTTP {answer.status}{suffix}", permanent=permanent, retry_after=answer.retry_after()
    )
