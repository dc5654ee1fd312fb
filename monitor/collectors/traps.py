"""SNMP notifications: a receiver (pysnmp: v1 and v2c traps, v2c informs) and the contract's fault traps.

aiosnmp only receives v2c traps (no v1, no informs), so the receiver is pysnmp's. Each
notification becomes one call `on_trap(source_address, trap_oid, varbinds)`: v1 traps arrive in
their v2 form (RFC 3584: `enterprise.0.specific-trap`), informs are acknowledged by pysnmp, and
only the configured communities are accepted (others are dropped, as agents do with requests).

`fault_from_trap` reads the contract's Đại Việt traps (docs/vendor-formats.md): faultRaised
`1.3.6.1.4.1.99999.2.1` and faultCleared `.2.2` with the fault code in `...2.10.0` and the
device code in `...2.11.0`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv

from monitor.collectors.snmp_v3 import pysnmp_value
from monitor.collectors.stats import OutcomeCounters

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
# RFC 3584 adds the v1 trap's community as a varbind: a credential, not for callbacks and their logs.
SNMP_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"
FAULT_RAISED = "1.3.6.1.4.1.99999.2.1"
FAULT_CLEARED = "1.3.6.1.4.1.99999.2.2"
FAULT_CODE_OID = "1.3.6.1.4.1.99999.2.10.0"
DEVICE_CODE_OID = "1.3.6.1.4.1.99999.2.11.0"
# The same notifications sent as SNMPv1 traps (enterprise 1.3.6.1.4.1.99999.2, specific 1 or 2).
_V1_RAISED = "1.3.6.1.4.1.99999.2.0.1"
_V1_CLEARED = "1.3.6.1.4.1.99999.2.0.2"
_FAULT_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DEVICE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

TrapCallback = Callable[[str, str, dict[str, Any]], Awaitable[None] | None]


class TrapFault(NamedTuple):
    """A fault a device raised or cleared by trap."""

    device_code: str
    fault: str
    raised: bool


def fault_from_trap(trap_oid: str, varbinds: Mapping[str, Any]) -> TrapFault | None:
    """The contract's faultRaised / faultCleared trap as (device_code, fault, raised); None for any other
    notification or one whose codes are missing or malformed."""
    oid = trap_oid.lstrip(".")
    if oid in (FAULT_RAISED, _V1_RAISED):
        raised = True
    elif oid in (FAULT_CLEARED, _V1_CLEARED):
        raised = False
    else:
        return None
    values = {key.lstrip("."): value for key, value in varbinds.items()}
    fault, device = _text(values.get(FAULT_CODE_OID)), _text(values.get(DEVICE_CODE_OID))
    if fault is None or device is None or not _FAULT_CODE.match(fault) or not _DEVICE_CODE.match(device):
        return None
    return TrapFault(device, fault, raised)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


class TrapReceiver:
    """Listens for SNMP notifications on `host:port` (UDP) and calls `on_trap` for each.

    `on_trap(source_address, trap_oid, varbinds)` gets OCTET STRINGs as str when they are UTF-8
    (bytes otherwise), numbers as int, OIDs as dotted str; it may be a coroutine function. Port 0
    picks a free port (see `address` after `start()`).
    """

    def __init__(
        self,
        on_trap: TrapCallback,
        *,
        host: str = "127.0.0.1",
        port: int = 162,
        communities: Iterable[str] = ("public",),
        counters: OutcomeCounters | None = None,
    ) -> None:
        self.on_trap = on_trap
        self.host = host
        self.port = port
        self.communities = tuple(communities)
        self.counters = counters if counters is not None else OutcomeCounters()
        self._engine: engine.SnmpEngine | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address actually bound (after `start()`)."""
        if self._address is None:
            raise RuntimeError("TrapReceiver.start() was not called")
        return self._address

    async def start(self) -> None:
        """Bind the socket (errors such as a port in use are raised here) and start receiving."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._address = sock.getsockname()[:2]
        snmp_engine = engine.SnmpEngine()
        if family == socket.AF_INET6:
            config.add_transport(snmp_engine, udp6.DOMAIN_NAME, udp6.Udp6AsyncioTransport().open_server_mode(sock=sock))
        else:
            config.add_transport(snmp_engine, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=sock))
        for position, community in enumerate(self.communities):
            config.add_v1_system(snmp_engine, f"trap-area-{position}", community)
        ntfrcv.NotificationReceiver(snmp_engine, self._received)
        self._engine = snmp_engine
        await asyncio.sleep(0)  # let pysnmp attach its protocol to the socket
        log.info("receiving SNMP traps on %s:%d", *self._address)

    async def stop(self) -> None:
        """Stop receiving and wait for callbacks still running."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _received(
        self,
        snmp_engine: engine.SnmpEngine,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Iterable[tuple[Any, Any]],
        context: Any,
    ) -> None:
        _, address = snmp_engine.message_dispatcher.get_transport_info(state_reference)
        values: dict[str, Any] = {}
        trap_oid = ""
        for name, value in varbinds:
            oid = str(name)
            plain = pysnmp_value(value)
            if oid == SNMP_TRAP_OID:
                trap_oid = str(plain)
            elif oid != SNMP_TRAP_COMMUNITY:
                text = _text(plain) if isinstance(plain, bytes) else None
                values[oid] = text if text is not None else plain
        self.counters.event("trap", "received")
        try:
            result = self.on_trap(str(address[0]), trap_oid, values)
        except Exception:
            self.counters.event("trap", "callback_error")
            log.exception("trap callback failed for %s from %s", trap_oid, address[0])
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counters.event("trap", "callback_error")
            log.error("trap callback failed", exc_info=task.exception())


__all__ = [
    "DEVICE_CODE_OID",
    "FAULT_CLEARED",
    "FAULT_CODE_OID",
    "FAULT_RAISED",
    "TrapCallback",
    "TrapFault",
    "TrapReceiver",
    "fault_from_trap",
]
