"""The fast path of `HttpPoller` for plain-http devices addressed by IPv4: one `asyncio.Protocol` per poll.

aiohttp's connection setup (connector, request and response objects, stream reader) was measured to dominate
the cost of a poll; a device is polled once a minute on a fresh connection, so none of it is needed. Here a
poll is: `loop.create_connection` to the IPv4 literal (no resolver), one pre-built request with
`Connection: close`, the answer fed as it arrives to httptools (llhttp, Node.js' HTTP/1.1 parser, in C:
Content-Length and chunked bodies; a close-delimited one ends with the connection), and the transport dropped
as soon as the answer is complete, or the body goes over the cap, or the deadline passes. httptools replaced
h11 here: 4 us per answer instead of 35, a tenth of a poll's CPU.

Only a 2xx body is read. Any other status comes back as a `NonSuccess` for `HttpPoller` to judge exactly as
on its aiohttp path (same-host redirects, `http_status`). `fetch` returns None when aiohttp must do the
request: https, a host name, credentials in the URL, a body in a `Content-Encoding` we do not decode.
Everything else a device does is a `CollectError` with the same kind and detail as on the aiohttp path.
"""

from __future__ import annotations

import asyncio
import errno
import re
from typing import NamedTuple, cast

import httptools
from yarl import URL

from monitor.collectors.errors import CollectError, FailureKind

_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_CLOSED_EARLY = "the device closed the connection before a complete answer"


#: Where and what to send: the IPv4 address, the port and the whole request, built once per device.
Route = tuple[str, int, bytes]


class NonSuccess(NamedTuple):
    """A status outside 2xx, its reason phrase and its Location header (None when absent)."""

    status: int
    reason: str
    location: str | None


class _Exchange(asyncio.Protocol):
    """One request and its answer; `done` gets the body, a `NonSuccess`, None (aiohttp's job) or a CollectError.

    The answer is fed to httptools' parser (llhttp, Node.js' HTTP parser), whose callbacks below are this
    object's `on_*` methods. llhttp cannot be told that the connection ended, so a body framed by the end of
    the connection (neither Content-Length nor chunked) is completed in `connection_lost`.
    """

    __slots__ = (
        "answered",
        "cap",
        "chunks",
        "closed",
        "done",
        "framed",
        "head",
        "headers",
        "informational",
        "parser",
        "reason",
        "request",
        "size",
        "transport",
    )

    def __init__(self, request: bytes, cap: int, done: asyncio.Future[bytes | NonSuccess | None]) -> None:
        self.request = request
        self.cap = cap
        self.done = done
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.head = b""  # the first bytes, to tell an HTTP answer cut short from something else
        self.headers: dict[bytes, bytes] = {}
        self.reason = b""
        self.answered = False  # a final (non-1xx) status line and headers have been read
        self.informational = False  # the message being read is a 1xx, to be skipped
        self.framed = False  # Content-Length or chunked: the body's end is known without the connection's
        self.closed = False
        self.chunks: list[bytes] = []
        self.size = 0

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if len(self.head) < 5:
            self.head += data[:5]
            if not b"HTTP/".startswith(self.head[:5]):  # not HTTP: no use waiting for the end of its "headers"
                self._fail(FailureKind.BAD_PAYLOAD, f"malformed HTTP answer: starts with {self.head[:5]!r}")
                return
        assert self.parser is not None  # dropped only once done
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.done.done():  # after the answer, whatever follows it is not our business
                self._fail(FailureKind.BAD_PAYLOAD, f"malformed HTTP answer: {str(exc)[:200]}")

    def eof_received(self) -> bool:
        return False  # close our side too: the answer is whatever came before

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None:
            self._fail(FailureKind.UNREACHABLE, f"{type(exc).__name__}: {str(exc)[:200]}")
        elif not self.answered:
            self._fail(FailureKind.UNREACHABLE, _CLOSED_EARLY)  # before the end of the headers: as aiohttp says
        elif not self.framed:
            self._finish(b"".join(self.chunks))  # the body was everything until the connection closed
        else:
            self._fail(
                FailureKind.BAD_PAYLOAD,
                f"malformed HTTP answer: the connection closed {self.size} bytes into an unfinished body",
            )

    # --- httptools' callbacks -----------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self.done.done():
            return
        assert self.parser is not None
        status = self.parser.get_status_code()
        if status < 200:
            self.informational = True  # 100 Continue, 102 Processing...: the real answer follows
            self.headers = {}
            return
        self.answered = True
        headers = self.headers
        if not 200 <= status < 300:
            location = headers.get(b"location")
            text = None if location is None else location.decode("latin-1")
            self._finish(NonSuccess(status, self.reason.decode("latin-1"), text))
            return
        if headers.get(b"content-encoding", b"identity").lower() != b"identity":
            self._finish(None)  # aiohttp decodes gzip and deflate
            return
        length = headers.get(b"content-length")  # llhttp has checked that it is one number
        self.framed = length is not None or b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is not None and int(length) > self.cap:
            self._fail(FailureKind.TOO_LARGE, f"Content-Length {int(length)} is over the {self.cap}-byte cap")

    def on_body(self, body: bytes) -> None:
        if self.done.done():
            return
        self.size += len(body)
        if self.size > self.cap:
            self._fail(FailureKind.TOO_LARGE, f"body over the {self.cap}-byte cap (stopped reading)")
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if not self.done.done():
            self._finish(b"".join(self.chunks))

    # --- the outcome ------------------------------------------------------------------------------

    def _finish(self, result: bytes | NonSuccess | None) -> None:
        self.done.set_result(result)
        self.parser = None  # it calls back into this object: no cycle left for the garbage collector
        if self.transport is not None:
            self.transport.abort() if result is None or type(result) is NonSuccess else self.transport.close()

    def _fail(self, kind: FailureKind, detail: str) -> None:
        self.done.set_exception(CollectError(kind, detail))
        self.parser = None
        if self.transport is not None:
            self.transport.abort()  # stop reading now: the kernel drops the rest


class FastHttp:
    """Plain-http GETs over a bare asyncio protocol (see the module docstring); at most `limit` in flight."""

    def __init__(self, *, user_agent: str, timeout_s: float, max_body_bytes: int, limit: int) -> None:
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._tail = f"User-Agent: {user_agent}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        self._slots = asyncio.Semaphore(limit)

    def route(self, url: URL) -> Route | None:
        """(IPv4 address, port, request bytes) when this URL can take the fast path, else None."""
        host = url.raw_host
        if url.scheme != "http" or host is None or not _IPV4.fullmatch(host) or url.raw_user or url.raw_password:
            return None
        port = url.port or 80
        authority = host if port == 80 else f"{host}:{port}"
        return host, port, f"GET {url.raw_path_qs} HTTP/1.1\r\nHost: {authority}\r\n{self._tail}".encode("ascii")

    async def fetch(self, url: URL, deadline: float) -> bytes | NonSuccess | None:
        """The 2xx body, a `NonSuccess`, or None when aiohttp must do it; `CollectError` for any failure."""
        route = self.route(url)
        return None if route is None else await self.fetch_route(route, deadline)

    async def fetch_route(self, route: Route, deadline: float) -> bytes | NonSuccess | None:
        """`fetch` for a route worked out before (`HttpPoller` keeps each device's)."""
        host, port, request = route
        loop = asyncio.get_running_loop()
        exchange = _Exchange(request, self.max_body_bytes, loop.create_future())
        transport: asyncio.Transport | None = None
        try:
            async with self._slots, asyncio.timeout_at(deadline):
                transport, _ = await loop.create_connection(lambda: exchange, host, port)
                return await exchange.done
        except TimeoutError:
            raise CollectError(FailureKind.TIMEOUT, f"no complete answer within {self.timeout_s:g} s") from None
        except OSError as exc:  # from connecting: once connected, failures arrive through `done`
            if exc.errno == errno.ECONNREFUSED:
                raise CollectError(FailureKind.REFUSED, f"{host}:{port} refused the connection") from exc
            if exc.errno == errno.ETIMEDOUT:
                raise CollectError(FailureKind.TIMEOUT, f"connecting to {host}:{port} timed out") from exc
            raise CollectError(
                FailureKind.UNREACHABLE, f"cannot connect to {host}:{port}: {exc.strerror or exc}"
            ) from exc
        finally:
            if transport is not None and not transport.is_closing():
                transport.abort()  # timed out or cancelled


__all__ = ["FastHttp", "NonSuccess", "Route"]
