"""The fast path of `HttpPoller` for plain-http devices addressed by IPv4: one `asyncio.Protocol` per poll.

aiohttp's connection setup (connector, request and response objects, stream reader) was measured to dominate
the cost of a poll; a device is polled once a minute on a fresh connection, so none of it is needed. Here a
poll is: `loop.create_connection` to the IPv4 literal (no resolver), one pre-built request with
`Connection: close`, the answer fed to h11 (a complete HTTP/1.1 parser: Content-Length, chunked and
close-delimited bodies) as it arrives, and the transport dropped as soon as the answer is complete, or the
body goes over the cap, or the deadline passes.

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

import h11
from yarl import URL

from monitor.collectors.errors import CollectError, FailureKind

_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
# h11 frames an answer by the request it answers; the bytes on the wire are ours, this only tells h11 "a GET".
_GET = h11.Request(method="GET", target="/", headers=[("Host", "device")])
_END = h11.EndOfMessage()
_CLOSED_EARLY = "the device closed the connection before a complete answer"


class NonSuccess(NamedTuple):
    """A status outside 2xx, its reason phrase and its Location header (None when absent)."""

    status: int
    reason: str
    location: str | None


class _Exchange(asyncio.Protocol):
    """One request and its answer; `done` gets the body, a `NonSuccess`, None (aiohttp's job) or a CollectError."""

    def __init__(self, request: bytes, cap: int, done: asyncio.Future[bytes | NonSuccess | None]) -> None:
        self.request = request
        self.cap = cap
        self.done = done
        self.parser = h11.Connection(h11.CLIENT)
        self.parser.send(_GET)
        self.parser.send(_END)
        self.transport: asyncio.Transport | None = None
        self.head = b""  # the first bytes, to tell an HTTP answer cut short from something else
        self.answered = False
        self.closed = False
        self.chunks: list[bytes] = []
        self.size = 0

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
        self.parser.receive_data(data)
        self._events()

    def eof_received(self) -> bool:
        return False  # close our side too: the answer is whatever came before

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None:
            self._fail(FailureKind.UNREACHABLE, f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        self.closed = True
        self.parser.receive_data(b"")
        self._events()
        if not self.done.done():  # pragma: no cover - h11 ends a closed exchange with an event or an error
            self._fail(FailureKind.UNREACHABLE, _CLOSED_EARLY)

    def _events(self) -> None:
        parser = self.parser
        try:
            while True:
                event = parser.next_event()
                if type(event) is h11.Data:
                    self.size += len(event.data)
                    if self.size > self.cap:
                        self._fail(FailureKind.TOO_LARGE, f"body over the {self.cap}-byte cap (stopped reading)")
                        return
                    self.chunks.append(event.data)
                elif type(event) is h11.Response:
                    self.answered = True
                    if not self._head(event):
                        return
                elif type(event) is h11.EndOfMessage:
                    self._finish(b"".join(self.chunks))
                    return
                elif event is h11.NEED_DATA:
                    return
                elif type(event) is not h11.InformationalResponse:  # pragma: no cover - PAUSED, ConnectionClosed
                    self._fail(FailureKind.UNREACHABLE, _CLOSED_EARLY)
                    return
        except h11.RemoteProtocolError as exc:
            if self.closed and not self.answered:
                # Closed before the end of the headers of what looked like HTTP: aiohttp says the same.
                self._fail(FailureKind.UNREACHABLE, _CLOSED_EARLY)
            else:
                self._fail(FailureKind.BAD_PAYLOAD, f"malformed HTTP answer: {str(exc)[:200]}")

    def _head(self, response: h11.Response) -> bool:
        """Judge the status line and headers; True when the body is to be read."""
        headers = dict(response.headers)  # names lowercased by h11; Content-Length is checked by it
        if not 200 <= response.status_code < 300:
            location = headers.get(b"location")
            reason = response.reason.decode("latin-1")
            text = None if location is None else location.decode("latin-1")
            self._finish(NonSuccess(response.status_code, reason, text))
            return False
        if headers.get(b"content-encoding", b"identity").lower() != b"identity":
            self._finish(None)  # aiohttp decodes gzip and deflate
            return False
        length = headers.get(b"content-length")
        if length is not None and int(length) > self.cap:
            self._fail(FailureKind.TOO_LARGE, f"Content-Length {int(length)} is over the {self.cap}-byte cap")
            return False
        return True

    def _finish(self, result: bytes | NonSuccess | None) -> None:
        self.done.set_result(result)
        if self.transport is not None:
            self.transport.abort() if result is None or type(result) is NonSuccess else self.transport.close()

    def _fail(self, kind: FailureKind, detail: str) -> None:
        self.done.set_exception(CollectError(kind, detail))
        if self.transport is not None:
            self.transport.abort()  # stop reading now: the kernel drops the rest


class FastHttp:
    """Plain-http GETs over a bare asyncio protocol (see the module docstring); at most `limit` in flight."""

    def __init__(self, *, user_agent: str, timeout_s: float, max_body_bytes: int, limit: int) -> None:
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._tail = f"User-Agent: {user_agent}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        self._slots = asyncio.Semaphore(limit)

    def route(self, url: URL) -> tuple[str, int, bytes] | None:
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
        if route is None:
            return None
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


__all__ = ["FastHttp", "NonSuccess"]
