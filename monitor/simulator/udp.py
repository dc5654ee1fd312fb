"""One UDP socket that answers for many addresses: it learns which address each datagram was sent to
(IP_PKTINFO on receive) and replies from that same address (IP_PKTINFO on send).

A process bound to 0.0.0.0 receives for every 127.x.y.z, but a plain `sendto` would reply from
whatever address the kernel picks (127.0.0.1), and clients with connected sockets (aiosnmp,
net-snmp) would never see the reply. Python 3.11's `socket` module lacks the constant, hence the number.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

from monitor.simulator.synfilter import bind_host, keep_to_loopback

IP_PKTINFO = 8  # <linux/in.h>
BUFFER_BYTES = 4 * 1024 * 1024  # the default 208 KiB dropped 3-8 % of datagrams at 500+ in flight
_PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst, ipi_addr; }
_BATCH = 256  # datagrams read per wake-up, so that one busy socket cannot starve the loop

#: Called with (datagram, source address, the local address it was sent to).
DatagramHandler = Callable[[bytes, tuple[str, int], str], None]

log = logging.getLogger(__name__)


class PktinfoSocket:
    """A non-blocking UDP socket on the event loop that tells each datagram's destination address."""

    def __init__(self, host: str, port: int, on_datagram: DatagramHandler) -> None:
        self.host = host
        self.requested_port = port
        self.on_datagram = on_datagram
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pktinfo: dict[str, list[tuple[int, int, bytes]]] = {}
        self.send_errors = 0

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one chosen by the kernel when asked for 0)."""
        if self.sock is None:
            raise RuntimeError("the socket is not open")
        return int(self.sock.getsockname()[1])

    def open(self) -> None:
        """Bind, set the buffers and IP_PKTINFO, and start reading on the running loop."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.setblocking(False)
            address, loopback_only = bind_host(self.host)
            if loopback_only:
                keep_to_loopback(sock)  # before bind(): no datagram from outside is ever queued
            sock.bind((address, self.requested_port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        """Stop reading and close the socket (idempotent)."""
        if self.sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(_BATCH):
            try:
                data, ancillary, _flags, source = sock.recvmsg(65535, socket.CMSG_SPACE(_PKTINFO.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued for the socket: nothing to answer
                log.debug("udp receive error: %s", exc)
                continue
            destination = self.host
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= _PKTINFO.size:
                    destination = socket.inet_ntoa(_PKTINFO.unpack_from(payload)[2])
            self.on_datagram(data, source, destination)

    def send(self, data: bytes, to: tuple[str, int], source: str) -> None:
        """Send `data` to `to` from the local address `source` (dropped, and counted, if the buffer is full)."""
        sock = self.sock
        if sock is None:
            return
        ancillary = self._pktinfo.get(source)
        if ancillary is None:
            info = _PKTINFO.pack(0, socket.inet_aton(source), b"\0\0\0\0")
            ancillary = self._pktinfo[source] = [(socket.IPPROTO_IP, IP_PKTINFO, info)]
        try:
            sock.sendmsg([data], ancillary, 0, to)
        except OSError as exc:  # BlockingIOError when the send buffer is full: UDP may drop, so do we
            self.send_errors += 1
            log.debug("udp send to %s from %s failed: %s", to, source, exc)
