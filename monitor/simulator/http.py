"""`GET /status` of every simulated HTTP device, on one aiohttp listener (default: loopback, port 18080).

The device is the one whose address the client connected to (the socket's local address), so one
listener stands for the whole fleet. aiohttp's low-level `web.Server` is used rather than a
`web.Application`: no router or middleware is needed, and it was measured faster (see
`monitor.simulator.loadcheck`).

An unreachable device does not answer: new connections to it time out in the kernel (`SynFilter`),
requests on connections opened before are held unanswered, then dropped; in "refused" mode the
connection is reset instead. A slow device answers after its delay; a garbage one sends garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from aiohttp import web

from monitor.simulator import formats
from monitor.simulator.fleet import Clock, Fleet, SimDevice
from monitor.simulator.snmp import is_loopback
from monitor.simulator.synfilter import LOOPBACK, SynFilter, bind_host

log = logging.getLogger(__name__)

HOLD_UNREACHABLE_S = 120.0  # how long a request to an unreachable device is held before the connection drops
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST


class StatusServer:
    """The HTTP status pages of the fleet's HTTP devices."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        host: str = LOOPBACK,
        port: int = 18080,
        clock: Clock | None = None,
        hold_unreachable_s: float = HOLD_UNREACHABLE_S,
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.requested_port = port
        self.clock = clock or fleet.clock
        self.hold_unreachable_s = hold_unreachable_s
        self.requests = 0
        self._sock: socket.socket | None = None
        self._server: web.Server | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._filter: SynFilter | None = None
        self._closing = asyncio.Event()
        self._refresh_pending = False

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._sock is None:
            raise RuntimeError("the HTTP server is not started")
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        """Bind and listen; filter SYNs to devices that are already unreachable."""
        address, loopback_only = bind_host(self.host)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, self.requested_port))
            sock.setblocking(False)
            self._filter = SynFilter(sock, loopback_only=loopback_only)  # before listen(): no SYN slips by
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._closing = asyncio.Event()
        self._server = web.Server(self._handle, access_log=None)
        self._listener = await asyncio.get_running_loop().create_server(self._server, sock=sock, backlog=2048)
        self.refresh_filter()

    async def stop(self) -> None:
        """Stop listening, release held requests, close every connection (idempotent)."""
        self._closing.set()
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            await self._server.shutdown(1.0)
        if self._listener is not None:
            await self._listener.wait_closed()
        if self._sock is not None:
            self._sock.close()
        self._listener = self._server = self._sock = self._filter = None

    def refresh_filter(self) -> None:
        """Make the kernel drop new connections to exactly the devices that are unreachable now."""
        self._refresh_pending = False
        if self._filter is not None:
            self._filter.update(self.fleet.unreachable_hosts(self.fleet.http_by_host, "timeout"))

    def refresh_filter_soon(self) -> None:
        """Coalesce many fault changes (a district power cut) into one filter update on the next loop turn."""
        if not self._refresh_pending and self._filter is not None:
            self._refresh_pending = True
            asyncio.get_running_loop().call_soon(self.refresh_filter)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests += 1
        transport = request.transport
        if transport is None:
            raise web.HTTPServiceUnavailable()
        peer = transport.get_extra_info("peername")
        if not peer or not is_loopback(peer[0]):
            return web.Response(status=403, text="forbidden\n", headers={"Connection": "close"})
        device = self.fleet.http_by_host.get(transport.get_extra_info("sockname")[0])
        if device is None or request.path != device.http_path:
            return web.Response(status=404, text="not found\n")
        if request.method != "GET":
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET"})
        now = self.clock()
        state = device.snapshot(now)
        if not state.reachable:
            if state.unreachable_mode != "refused":
                await self._pause(self.hold_unreachable_s)
            self._reset(transport)
            raise asyncio.CancelledError  # nothing is written: the connection is gone
        if state.slow_delay_s:
            await self._pause(state.slow_delay_s)
        return self._status(device, now)

    def _status(self, device: SimDevice, now: float) -> web.Response:
        state = device.snapshot(now)
        if state.garbage:
            body = formats.garbage_body(device.next_garbage("http"), device, state, now)
        else:
            body = formats.encode(formats.document(device, state, now))
        return web.Response(
            body=body, headers={"Content-Type": "application/json", "Server": formats.server_header(device)}
        )

    @staticmethod
    def _reset(transport: asyncio.Transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
