"""SNMP v1/v2c GET for a whole fleet over one shared UDP socket.

MEASUREMENTS.md: aiosnmp's public API with a session per request costs 0.25-0.29 ms of CPU per
GET, its codec on one shared socket 0.11-0.13 ms, and the target is 0.10 ms. So: one (or a few)
datagram sockets with 4 MiB buffers (208 KiB dropped 3-8 % of replies at 500 in flight), requests
built from cached templates (`snmp_codec`), replies matched to requests by request-id (random,
31 bits, unique among those in flight) AND by source address and port, so a reply from anywhere
else is ignored. One timer serves every request: timeouts are all equal, so deadlines come in
order and a deque holds them (no timer handle per request).

What agents do, and what it becomes:
- noSuchObject / noSuchInstance / endOfMibView: the value is None (absent).
- a wrong community: agents stay silent, so `timeout`.
- ICMP port unreachable: not reported on an unconnected socket, so `timeout` too.
- an error-status: `snmp_no_such` for noSuchName (v1), `snmp_error` otherwise.
- malformed, truncated or random packets: counted (event `garbage_packet`) and dropped; a request
  that got only garbage from its agent ends `snmp_decode` instead of `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import random
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any

from monitor.collectors.errors import CollectError, FailureKind
from monitor.collectors.snmp_codec import ERROR_STATUS, SnmpDecodeError, decode_response, encode_get
from monitor.collectors.stats import OutcomeCounters

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 1
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
_DNS_TTL_S = 300.0
_GARBAGE_MEMORY = 10_000
# Linux socket options (asm-generic/socket.h) that ignore the sysctl caps, for root.
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

Address = tuple[str, int]
Result = dict[str, Any] | CollectError


def udp_socket(family: int, buffer_bytes: int = SOCKET_BUFFER_BYTES) -> socket.socket:
    """A non-blocking UDP socket bound to an ephemeral port, with `buffer_bytes` receive and send buffers.

    The default 208 KiB holds only about 256 small datagrams (each costs ~800 bytes of kernel memory):
    with more replies in flight than the loop drains, the rest are dropped. Root may exceed the sysctl caps.
    """
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    for option, forced in ((socket.SO_RCVBUF, _SO_RCVBUFFORCE), (socket.SO_SNDBUF, _SO_SNDBUFFORCE)):
        sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
        # Linux grants twice what is asked; less means net.core.[rw]mem_max capped it.
        if sock.getsockopt(socket.SOL_SOCKET, option) < buffer_bytes:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, forced, buffer_bytes)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if granted < buffer_bytes:
        log.warning(
            "SNMP socket receive buffer is %d bytes, not %d: raise net.core.rmem_max, or replies "
            "will be dropped with hundreds in flight",
            granted // 2,
            buffer_bytes,
        )
    sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    return sock


class _Request:
    __slots__ = ("address", "attempt", "community", "future", "packet", "sent_at", "transport")

    def __init__(
        self,
        future: asyncio.Future[Result],
        address: Address,
        community: bytes,
        packet: bytes,
        transport: asyncio.DatagramTransport,
        sent_at: float,
    ) -> None:
        self.future = future
        self.address = address
        self.community = community
        self.packet = packet
        self.transport = transport
        self.attempt = 0
        self.sent_at = sent_at


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: SnmpV2cClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._client._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # A send error cannot be tied to a request here (no address): its request will time out.
        self._client.counters.event("snmp", "socket_error")


class SnmpV2cClient:
    """GET for SNMP v1/v2c agents over shared sockets; `start()` inside the loop, `close()` after."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        sockets: int = 1,
        buffer_bytes: int = SOCKET_BUFFER_BYTES,
        counters: OutcomeCounters | None = None,
    ) -> None:
        if timeout_s <= 0 or retries < 0 or sockets < 1:
            raise ValueError("timeout_s must be positive, retries not negative, sockets at least 1")
        self.timeout_s = timeout_s
        self.retries = retries
        self.counters = counters if counters is not None else OutcomeCounters()
        self._socket_count = sockets
        self._buffer_bytes = buffer_bytes
        self._transports: dict[int, list[asyncio.DatagramTransport]] = {}
        self._rotation: dict[int, itertools.cycle[asyncio.DatagramTransport]] = {}
        self._pending: dict[int, _Request] = {}
        self._deadlines: deque[tuple[float, int, int]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._garbage_from: dict[Address, float] = {}
        self._resolved: dict[str, tuple[str, int, float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._random = random.Random()

    @property
    def in_flight(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    async def start(self) -> None:
        """Open the IPv4 sockets (IPv6 ones open on first use)."""
        self._loop = asyncio.get_running_loop()
        await self._open(socket.AF_INET)

    def close(self) -> None:
        """Close the sockets; requests still waiting end as `timeout`."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for request in self._pending.values():
            if not request.future.done():
                request.future.set_result(CollectError(FailureKind.TIMEOUT, "the SNMP client closed"))
        self._pending.clear()
        self._deadlines.clear()
        for transports in self._transports.values():
            for transport in transports:
                transport.close()
        self._transports.clear()
        self._rotation.clear()

    async def get(
        self, host: str, port: int, community: str, oids: Sequence[str], *, version: int = 1
    ) -> dict[str, Any]:
        """Values by OID (no leading dot; None for noSuchObject...); `CollectError` on failure."""
        result = await self.request(host, port, community.encode(), tuple(oid.lstrip(".") for oid in oids), version)
        if isinstance(result, CollectError):
            raise result
        return result

    async def request(self, host: str, port: int, community: bytes, oids: tuple[str, ...], version: int = 1) -> Result:
        """Like `get`, but the failure is returned, not raised (cheaper on the hot path)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("SnmpV2cClient.start() was not called")
        resolved = self._resolved.get(host)
        if resolved is None or resolved[2] < loop.time():
            try:
                resolved = await self._resolve(host, loop)
            except CollectError as exc:
                return exc
        ip, family, _ = resolved
        transports = self._rotation.get(family)
        if transports is None:
            await self._open(family)
            transports = self._rotation[family]
        transport = next(transports)
        pending = self._pending
        request_id = self._random.getrandbits(31)
        while request_id == 0 or request_id in pending:
            request_id = self._random.getrandbits(31)
        packet = encode_get(version, community, request_id, oids)
        now = loop.time()
        future: asyncio.Future[Result] = loop.create_future()
        pending[request_id] = _Request(future, (ip, port), community, packet, transport, now)
        transport.sendto(packet, (ip, port))
        self._deadlines.append((now + self.timeout_s, request_id, 0))
        if self._timer is None:
            self._timer = loop.call_at(now + self.timeout_s, self._expire)
        try:
            return await future
        finally:
            # Cancelled while waiting (the future is cancelled with the task): forget the request now.
            if future.cancelled():
                pending.pop(request_id, None)

    async def _resolve(self, host: str, loop: asyncio.AbstractEventLoop) -> tuple[str, int, float]:
        try:
            address = ipaddress.ip_address(host)
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            resolved = (str(address), int(family), float("inf"))
        except ValueError:
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except (OSError, UnicodeError) as exc:
                raise CollectError(FailureKind.DNS, f"cannot resolve {host!r}: {exc}") from exc
            if not infos:
                raise CollectError(FailureKind.DNS, f"cannot resolve {host!r}") from None
            family_, _, _, _, sockaddr = infos[0]
            resolved = (str(sockaddr[0]), int(family_), loop.time() + _DNS_TTL_S)
        if len(self._resolved) >= 200_000:
            self._resolved.clear()
        self._resolved[host] = resolved
        return resolved

    async def _open(self, family: int) -> None:
        if family in self._transports:
            return
        loop = self._loop
        assert loop is not None
        transports = []
        for _ in range(self._socket_count):
            sock = udp_socket(family, self._buffer_bytes)
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
            transports.append(transport)
        self._transports[family] = transports
        self._rotation[family] = itertools.cycle(transports)

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        source: Address = (addr[0], addr[1])
        try:
            response = decode_response(data)
        except SnmpDecodeError:
            self.counters.event("snmp", "garbage_packet")
            if len(self._garbage_from) >= _GARBAGE_MEMORY:
                self._garbage_from.clear()
            assert self._loop is not None
            self._garbage_from[source] = self._loop.time()
            return
        request = self._pending.get(response.request_id)
        if request is None:
            self.counters.event("snmp", "unmatched_reply")  # late (after its timeout), duplicate or stray
            return
        if request.address != source or request.community != response.community:
            self.counters.event("snmp", "wrong_source")
            return
        del self._pending[response.request_id]
        if request.future.done():
            return
        if response.error_status:
            request.future.set_result(_error_status(response.error_status, response.error_index, response.varbinds))
        else:
            request.future.set_result(dict(response.varbinds))

    def _expire(self) -> None:
        """Fire every deadline that has passed: resend (retries left) or end the request as a timeout."""
        loop = self._loop
        assert loop is not None
        self._timer = None
        now = loop.time()
        deadlines = self._deadlines
        pending = self._pending
        while deadlines and deadlines[0][0] <= now:
            _, request_id, attempt = deadlines.popleft()
            request = pending.get(request_id)
            if request is None or request.attempt != attempt:
                continue  # answered, cancelled, or an older attempt's deadline
            if request.future.done():
                del pending[request_id]
                continue
            if attempt < self.retries:
                request.attempt = attempt + 1
                request.transport.sendto(request.packet, request.address)
                deadlines.append((now + self.timeout_s, request_id, attempt + 1))
                continue
            del pending[request_id]
            request.future.set_result(self._timeout_error(request))
        if deadlines:
            self._timer = loop.call_at(deadlines[0][0], self._expire)

    def _timeout_error(self, request: _Request) -> CollectError:
        host, port = request.address
        tries = self.retries + 1
        garbage_at = self._garbage_from.get(request.address)
        if garbage_at is not None and garbage_at >= request.sent_at:
            return CollectError(
                FailureKind.SNMP_DECODE, f"only undecodable replies from {host}:{port} in {tries} tries"
            )
        return CollectError(
            FailureKind.TIMEOUT, f"no reply from {host}:{port} in {tries} tries of {self.timeout_s:g} s"
        )


def _error_status(status: int, index: int, varbinds: list[tuple[str, Any]]) -> CollectError:
    name = ERROR_STATUS.get(status, f"error-status {status}")
    oid = varbinds[index - 1][0] if 0 < index <= len(varbinds) else None
    detail = f"agent answered {name}" + (f" for {oid}" if oid else "")
    kind = FailureKind.SNMP_NO_SUCH if status == 2 else FailureKind.SNMP_ERROR
    return CollectError(kind, detail)


__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT_S", "SOCKET_BUFFER_BYTES", "SnmpV2cClient", "udp_socket"]
