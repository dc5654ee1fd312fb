"""Make chosen addresses of a wildcard TCP listener look switched off: their SYNs are dropped in the kernel.

A device behind a dead uplink does not refuse connections, it does not answer them: the client's
connect times out. One listener on 0.0.0.0 cannot stop listening on a single address, but a
classic BPF socket filter on it can drop the SYNs sent to that address before the handshake
(SO_ATTACH_FILTER: unprivileged, replaced atomically on each change). The filter reads the IPv4
destination relative to the network header (SKF_NET_OFF), since a TCP socket's filter sees the
packet from its TCP header on.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
from collections.abc import Iterable

log = logging.getLogger(__name__)

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
SO_DETACH_FILTER = 27
_SKF_NET_OFF = -0x100000
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06
_INSTRUCTION = struct.Struct("HBBI")  # struct sock_filter { u16 code; u8 jt, jf; u32 k; }
_PROGRAM = struct.Struct("HL")  # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
#: cBPF allows 4096 instructions, two per address here. Past this, the HTTP handler stays silent instead.
MAX_FILTERED_ADDRESSES = 2000


def build_program(addresses: Iterable[str]) -> bytes:
    """The filter's instructions: drop packets to any of `addresses`, accept the rest."""
    hosts = sorted(set(addresses), key=socket.inet_aton)[:MAX_FILTERED_ADDRESSES]
    code = [(_BPF_LD_W_ABS, 0, 0, (_SKF_NET_OFF + 16) & 0xFFFFFFFF)]  # the IPv4 destination address
    for host in hosts:
        # Jump offsets are 8-bit: each comparison gets its own "drop" right after it instead of one shared.
        code.append((_BPF_JEQ_K, 0, 1, struct.unpack("!I", socket.inet_aton(host))[0]))
        code.append((_BPF_RET_K, 0, 0, 0))  # equal: drop
    code.append((_BPF_RET_K, 0, 0, 0xFFFFFFFF))  # none matched: accept
    return b"".join(_INSTRUCTION.pack(*instruction) for instruction in code)


class SynFilter:
    """The set of addresses whose new connections a listening socket silently drops."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.addresses: frozenset[str] = frozenset()
        self.available = True

    def update(self, addresses: Iterable[str]) -> bool:
        """Drop SYNs to exactly `addresses` from now on; False if the kernel refused the filter."""
        wanted = frozenset(addresses)
        if wanted == self.addresses or not self.available:
            return self.available
        try:
            if wanted:
                code = build_program(wanted)
                buffer = ctypes.create_string_buffer(code)
                program = _PROGRAM.pack(len(code) // _INSTRUCTION.size, ctypes.addressof(buffer))
                self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
            elif self.addresses:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        except OSError as exc:
            log.warning("cannot filter SYNs on the HTTP listener (%s): unreachable devices will hold connections", exc)
            self.available = False
            return False
        self.addresses = wanted
        return True
