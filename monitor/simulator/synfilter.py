"""Make chosen addresses of a wildcard TCP listener look switched off: their SYNs are dropped in the kernel.

A device behind a dead uplink does not refuse connections, it does not answer them: the client's
connect times out. One listener on 0.0.0.0 cannot stop listening on a single address, but a
classic BPF socket filter on it can drop the SYNs sent to that address before the handshake
(SO_ATTACH_FILTER: unprivileged, replaced atomically on each change). The filter reads the IPv4
destination relative to the network header (SKF_NET_OFF), since a TCP socket's filter sees the
packet from its TCP header on.

The same filter keeps the simulator to loopback (`LOOPBACK`, the default host): the sockets are bound to
the wildcard address so that one socket answers for every 127.x.y.z of the fleet, and the filter drops,
before any handshake or reply, every packet whose destination is outside 127.0.0.0/8. Seen from another
machine, the simulator's ports do not answer at all.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
from collections.abc import Iterable

from monitor.simulator.errors import SimulatorError

log = logging.getLogger(__name__)

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
SO_DETACH_FILTER = 27
_SKF_NET_OFF = -0x100000
_BPF_LD_W_ABS = 0x20
_BPF_AND_K = 0x54
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06
_INSTRUCTION = struct.Struct("HBBI")  # struct sock_filter { u16 code; u8 jt, jf; u32 k; }
_PROGRAM = struct.Struct("HL")  # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
#: cBPF allows 4096 instructions, two per address here. Past this, the HTTP handler stays silent instead.
MAX_FILTERED_ADDRESSES = 2000


#: The default host of the simulator's listeners: every 127.x.y.z, and nothing else.
LOOPBACK = "loopback"
WILDCARD = "0.0.0.0"


def bind_host(host: str) -> tuple[str, bool]:
    """The address to bind for `host`, and whether packets outside 127.0.0.0/8 must be dropped."""
    return (WILDCARD, True) if host == LOOPBACK else (host, False)


def build_program(addresses: Iterable[str], *, loopback_only: bool = False) -> bytes:
    """The filter's instructions: drop packets to any of `addresses` (and, if `loopback_only`, to any
    address outside 127.0.0.0/8), accept the rest."""
    hosts = sorted(set(addresses), key=socket.inet_aton)[:MAX_FILTERED_ADDRESSES]
    load_destination = (_BPF_LD_W_ABS, 0, 0, (_SKF_NET_OFF + 16) & 0xFFFFFFFF)  # the IPv4 destination address
    code = []
    if loopback_only:
        code += [
            load_destination,
            (_BPF_AND_K, 0, 0, 0xFF000000),
            (_BPF_JEQ_K, 1, 0, 0x7F000000),  # 127/8: skip the drop
            (_BPF_RET_K, 0, 0, 0),
        ]
    code.append(load_destination)
    for host in hosts:
        # Jump offsets are 8-bit: each comparison gets its own "drop" right after it instead of one shared.
        code.append((_BPF_JEQ_K, 0, 1, struct.unpack("!I", socket.inet_aton(host))[0]))
        code.append((_BPF_RET_K, 0, 0, 0))  # equal: drop
    code.append((_BPF_RET_K, 0, 0, 0xFFFFFFFF))  # none matched: accept
    return b"".join(_INSTRUCTION.pack(*instruction) for instruction in code)


def attach(sock: socket.socket, code: bytes) -> None:
    """Replace the socket's filter with `code` (atomically); OSError if the kernel refuses it."""
    buffer = ctypes.create_string_buffer(code)
    program = _PROGRAM.pack(len(code) // _INSTRUCTION.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def keep_to_loopback(sock: socket.socket) -> None:
    """Drop every packet to the socket that is not addressed to 127.0.0.0/8.

    SimulatorError when the kernel refuses: binding the wildcard address without the filter would open
    the simulated fleet to the whole network, so the simulator does not start.
    """
    try:
        attach(sock, build_program((), loopback_only=True))
    except OSError as exc:
        raise SimulatorError(
            f"cannot keep the simulator to loopback on this system ({exc}); "
            f"pass --host 0.0.0.0 to listen on every interface, or --host 127.0.0.1 for that address alone"
        ) from exc


class SynFilter:
    """The set of addresses whose new connections a listening socket silently drops.

    With `loopback_only`, the socket also never sees a packet from outside 127.0.0.0/8, whatever the set
    (`keep_to_loopback` has already been applied when the filter is built).
    """

    def __init__(self, sock: socket.socket, *, loopback_only: bool = False) -> None:
        self.sock = sock
        self.loopback_only = loopback_only
        self.addresses: frozenset[str] = frozenset()
        self.available = True
        if loopback_only:
            keep_to_loopback(sock)

    def update(self, addresses: Iterable[str]) -> bool:
        """Drop SYNs to exactly `addresses` from now on; False if the kernel refused the filter."""
        wanted = frozenset(addresses)
        if wanted == self.addresses or not self.available:
            return self.available
        try:
            if wanted or self.loopback_only:
                attach(self.sock, build_program(wanted, loopback_only=self.loopback_only))
            elif self.addresses:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        except OSError as exc:
            log.warning("cannot filter SYNs on the HTTP listener (%s): unreachable devices will hold connections", exc)
            self.available = False
            return False
        self.addresses = wanted
        return True
