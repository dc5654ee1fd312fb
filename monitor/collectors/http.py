"""HTTP polling on aiohttp: one session for the whole fleet, bounded in time, size and redirects.

Design, from the measurements in shared/notes/MEASUREMENTS.md:

- ONE `aiohttp.ClientSession` per poller, created in `start()` and closed in `close()`.
- `force_close=True`: each device is polled once a minute, so a kept-alive connection would sit
  idle for 60 s holding a file descriptor; opening a fresh one was measured cheapest for 10k hosts.
- A connection limit (512 by default) bounds sockets in flight; the scheduler's semaphore bounds polls.
- One deadline per poll (5 s by default) covers connecting, redirects and reading the body.
- The body is read up to a cap (256 KiB by default) and never beyond: at cap + 1 bytes the
  connection is dropped and the poll fails `too_large` (a 10 MB answer costs 256 KiB, not 10 MB).
- Redirects are followed by hand: at most 3, and only to the same host and port (else
  `redirect_refused`), so a device cannot send the collector to another machine.
- TLS certificates are verified unless the operator gives a context that says otherwise.
- Plain http to an IPv4 address (every simulated and, in practice, every real device) skips aiohttp's
  connection machinery: `http_fast.FastHttp` sends the request over a bare asyncio protocol and parses the
  answer with httptools (llhttp), with the same deadline, cap and failure kinds; a 3xx it gets continues on aiohttp's
  redirect path below, and https, host names and compressed bodies stay on aiohttp.

`poll()` never raises for anything a device does: every failure is an `Observation` with its
`FailureKind`, counted in `OutcomeCounters`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from monitor.collectors.errors import CollectError, FailureKind
from monitor.collectors.http_fast import FastHttp, NonSuccess, Route
from monitor.collectors.mapping import failed_observation, observation_from_json
from monitor.collectors.profile_types import Profile
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 512
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_URL_CACHE_MAX = 200_000


class HttpPoller:
    """Polls devices over HTTP(S) and maps their JSON through their profile (see the module docstring)."""

    def __init__(
        self,
        *,
        counters: OutcomeCounters | None = None,
        limit: int = DEFAULT_LIMIT,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        ttl_dns_cache_s: int = 300,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "lang-son-fleet-monitor",
    ) -> None:
        if timeout_s <= 0 or max_body_bytes < 1 or max_redirects < 0 or limit < 1:
            raise ValueError(
                "timeout_s and max_body_bytes must be positive, limit at least 1, max_redirects not negative"
            )
        self.counters = counters if counters is not None else OutcomeCounters()
        self.limit = limit
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.max_redirects = max_redirects
        self._ttl_dns_cache_s = ttl_dns_cache_s
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        self._fast: FastHttp | None = None  # plain http to an IPv4 address: see http_fast.py
        self._user_agent = user_agent
        # By (address, port, path): the fast path's route (address, port, request bytes: ~300 bytes), or for
        # aiohttp the encoded URL text. A yarl URL that aiohttp has used keeps ~750 bytes of cached parts
        # (37 MB for 50,000 devices); the text is ~80 and parses back in ~4 us, against ~26 us to build and
        # check the URL from the inventory's address every time; a kept route saves the parse too.
        self._urls: dict[tuple[str, int | None, str], str | Route] = {}

    async def start(self) -> None:
        """Open the session (inside the running event loop)."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self.limit, force_close=True, ttl_dns_cache=self._ttl_dns_cache_s, ssl=self._ssl
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),  # devices get no cookies from each other
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            trust_env=False,
        )
        self._fast = FastHttp(
            user_agent=self._user_agent, timeout_s=self.timeout_s, max_body_bytes=self.max_body_bytes, limit=self.limit
        )

    async def close(self) -> None:
        """Close the session and every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._fast = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def poll(self, target: PollTarget, profile: Profile) -> Observation:
        """GET the device's status and map it; never raises for what the device does."""
        observed_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            address = self._address_for(target, profile)
            if isinstance(address, str):
                body = await self._fetch(URL(address, encoded=True))
            else:
                body = await self._fetch_route(address, target, profile)
        except CollectError as exc:
            observation = failed_observation(
                target.device_id, observed_at, "http", exc.kind, exc.detail, latency_s=time.perf_counter() - started
            )
        else:
            observation = observation_from_json(
                profile,
                body,
                device_id=target.device_id,
                observed_at=observed_at,
                source="http",
                latency_s=time.perf_counter() - started,
            )
        self.counters.record_observation(observation)
        return observation

    def url_for(self, target: PollTarget, profile: Profile) -> URL:
        """The URL to poll: the address as a URL or a host; the port column when the URL has none;
        the profile's path when the URL has none. `CollectError(unreachable)` for an unusable address.
        (Also works out and keeps the device's route, as a poll would.)"""
        address = self._address_for(target, profile)
        if isinstance(address, str):
            return URL(address, encoded=True)
        return build_url(target.address, target.port, profile.http_path)

    def _address_for(self, target: PollTarget, profile: Profile) -> str | Route:
        key = (target.address, target.port, profile.http_path)
        address = self._urls.get(key)
        if address is None:
            url = build_url(target.address, target.port, profile.http_path)
            route = self._fast.route(url) if self._fast is not None else None
            address = route if route is not None else str(url)
            if len(self._urls) >= _URL_CACHE_MAX:
                self._urls.clear()
            self._urls[key] = address
        return address

    async def _fetch_route(self, route: Route, target: PollTarget, profile: Profile) -> bytes:
        """A poll on the fast path; a redirect it meets continues on aiohttp's path."""
        fast = self._fast
        if fast is None:  # closed meanwhile
            raise RuntimeError("HttpPoller.start() was not called")
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            answer = await fast.fetch_route(route, deadline)
        except CollectError:
            raise
        except Exception as exc:
            raise _translate(exc, build_url(target.address, target.port, profile.http_path), self.timeout_s) from exc
        if isinstance(answer, bytes):
            return answer
        url = build_url(target.address, target.port, profile.http_path)
        if answer is None:  # a body aiohttp must decode
            return await self._fetch_aiohttp(url, deadline, 0)
        url, first_hop = self._after(url, answer)
        return await self._fetch_aiohttp(url, deadline, first_hop)

    def _after(self, url: URL, answer: NonSuccess) -> tuple[URL, int]:
        """Where a status outside 2xx from the fast path leads: the next hop of a redirect, or a CollectError."""
        if answer.status not in REDIRECT_STATUSES:
            raise CollectError(FailureKind.HTTP_STATUS, f"HTTP {answer.status} {answer.reason}".strip())
        return self._next_hop(url, answer.status, answer.location, 0), 1

    async def _fetch(self, url: URL) -> bytes:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        first_hop = 0
        if self._fast is not None and url.scheme == "http":
            try:
                answer = await self._fast.fetch(url, deadline)
            except CollectError:
                raise
            except Exception as exc:
                raise _translate(exc, url, self.timeout_s) from exc
            if isinstance(answer, bytes):
                return answer
            if answer is not None:  # a status outside 2xx, judged as below
                url, first_hop = self._after(url, answer)
        return await self._fetch_aiohttp(url, deadline, first_hop)

    async def _fetch_aiohttp(self, url: URL, deadline: float, first_hop: int) -> bytes:
        session = self._session
        if session is None:
            raise RuntimeError("HttpPoller.start() was not called")
        loop = asyncio.get_running_loop()
        for hop in range(first_hop, self.max_redirects + 1):
            # One deadline for the whole poll: redirects do not buy more time.
            timeout = aiohttp.ClientTimeout(total=max(deadline - loop.time(), 0.001))
            try:
                async with session.get(url, allow_redirects=False, timeout=timeout) as response:
                    if response.status in REDIRECT_STATUSES:
                        url = self._next_hop(url, response.status, response.headers.get("Location"), hop)
                        continue
                    if not 200 <= response.status < 300:
                        raise CollectError(
                            FailureKind.HTTP_STATUS, f"HTTP {response.status} {response.reason or ''}".strip()
                        )
                    return await self._read_capped(response)
            except CollectError:
                raise
            except Exception as exc:
                raise _translate(exc, url, self.timeout_s) from exc
        raise AssertionError("unreachable: the last hop either returns or raises")  # pragma: no cover

    def _next_hop(self, url: URL, status: int, location: str | None, hop: int) -> URL:
        if not location:
            raise CollectError(FailureKind.HTTP_STATUS, f"HTTP {status} redirect without a Location")
        try:
            target = url.join(URL(location))
        except ValueError as exc:
            raise CollectError(FailureKind.REDIRECT_REFUSED, f"redirect to an invalid URL {location[:200]!r}") from exc
        if target.scheme not in ("http", "https") or target.host != url.host or target.port != url.port:
            raise CollectError(
                FailureKind.REDIRECT_REFUSED, f"redirect to another host refused: {str(target)[:200]} (from {url.host})"
            )
        if hop >= self.max_redirects:
            raise CollectError(FailureKind.REDIRECT_REFUSED, f"more than {self.max_redirects} redirects")
        return target

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self.max_body_bytes
        declared = response.content_length
        if declared is not None and declared > cap:
            response.close()  # drop the connection: the rest is never read
            raise CollectError(FailureKind.TOO_LARGE, f"Content-Length {declared} is over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await response.content.read(cap + 1 - size)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                response.close()
                raise CollectError(FailureKind.TOO_LARGE, f"body over the {cap}-byte cap (stopped reading)")
            chunks.append(chunk)


def build_url(address: str, port: int | None, default_path: str) -> URL:
    """The URL of a device from the inventory's address (a URL or a host) and port column."""
    text = address.strip()
    if not text:
        raise CollectError(FailureKind.UNREACHABLE, "the device has no address to poll")
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        url = URL(text)
        explicit_port = parts.port
    except ValueError as exc:
        raise CollectError(FailureKind.UNREACHABLE, f"unusable address {address[:200]!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise CollectError(
            FailureKind.UNREACHABLE, f"unusable address {address[:200]!r}: need an http(s) URL or a host"
        )
    if explicit_port is None and port is not None:
        url = url.with_port(port)
    if not parts.path:
        url = url.with_path(default_path)
    return url


def _translate(exc: Exception, url: URL, timeout_s: float) -> CollectError:
    """An aiohttp / OS error as the failure kind it means."""
    if isinstance(exc, TimeoutError):
        return CollectError(FailureKind.TIMEOUT, f"no complete answer within {timeout_s:g} s")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return CollectError(FailureKind.DNS, f"cannot resolve {url.host}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return CollectError(FailureKind.TLS, f"certificate of {url.host} refused: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return CollectError(FailureKind.TLS, f"TLS with {url.host} failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return CollectError(FailureKind.REFUSED, f"{url.host}:{url.port} refused the connection")
        if code == errno.ETIMEDOUT:
            return CollectError(FailureKind.TIMEOUT, f"connecting to {url.host}:{url.port} timed out")
        return CollectError(
            FailureKind.UNREACHABLE, f"cannot connect to {url.host}:{url.port}: {exc.os_error.strerror or exc.os_error}"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return CollectError(FailureKind.UNREACHABLE, "the device closed the connection before a complete answer")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return CollectError(FailureKind.BAD_PAYLOAD, f"malformed HTTP answer: {str(exc)[:200]}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return CollectError(FailureKind.UNREACHABLE, f"{type(exc).__name__}: {str(exc)[:200]}")
    if isinstance(exc, ValueError | UnicodeError):  # e.g. a header aiohttp cannot decode
        return CollectError(FailureKind.BAD_PAYLOAD, f"malformed HTTP answer: {str(exc)[:200]}")
    # Not one we know: still a failed poll (the loop must go on), but logged whole so it gets a name here.
    log.error("unexpected error polling %s", url, exc_info=exc)
    return CollectError(FailureKind.UNREACHABLE, f"unexpected {type(exc).__name__}: {str(exc)[:200]}")


__all__ = ["DEFAULT_LIMIT", "DEFAULT_MAX_BODY", "DEFAULT_TIMEOUT_S", "HttpPoller", "build_url"]
