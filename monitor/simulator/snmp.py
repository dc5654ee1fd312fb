"""The SNMP v2c agent of every simulated SNMP device, on one UDP socket, and the traps they send.

Each request is answered by the device whose address it was sent to, from that address (see
`udp.PktinfoSocket`). Like a real agent it stays silent on a wrong community, a wrong version or a
malformed packet; an unknown OID is `noSuchObject`, the end of a walk `endOfMibView`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from bisect import bisect_right
from collections import Counter

from monitor.simulator import ber, formats
from monitor.simulator.faults import FaultKind, GarbageVariant
from monitor.simulator.fleet import Clock, DeviceState, Fleet, SimDevice
from monitor.simulator.synfilter import LOOPBACK
from monitor.simulator.udp import PktinfoSocket

log = logging.getLogger(__name__)

MAX_BULK_VARBINDS = 100
ERROR_NO_ACCESS = 6
#: Faults a DV-RX8 announces with a trap (the contract's fault codes it can see in itself).
TRAPPED_FAULTS = frozenset(
    {
        FaultKind.POWER_LOSS,
        FaultKind.AMPLIFIER_FAULT,
        FaultKind.SPEAKER_LINE_FAULT,
        FaultKind.OVERHEAT,
        FaultKind.DOOR_OPEN,
        FaultKind.LOW_SIGNAL,
        FaultKind.LINK_DOWN,
    }
)


def is_loopback(host: str) -> bool:
    """Whether `host` is on 127.0.0.0/8: the only peers the simulator talks to."""
    return host.startswith("127.")


class _Mib:
    """A device's objects at one moment, for GET, GETNEXT and GETBULK."""

    __slots__ = ("keys", "objects", "values")
    _keys_by_oids: dict[tuple[str, ...], list[tuple[int, ...]]] = {}  # noqa: RUF012 - a cache shared on purpose

    def __init__(self, objects: list[formats.SnmpObject]) -> None:
        self.objects = objects
        self.values = {oid: (tag, value) for oid, tag, value in objects}
        names = tuple(oid for oid, _, _ in objects)
        keys = self._keys_by_oids.get(names)
        if keys is None:
            keys = self._keys_by_oids[names] = [ber.oid_key(oid) for oid in names]
        self.keys = keys

    def get(self, oid: str) -> bytes:
        found = self.values.get(oid)
        if found is None:
            return ber.varbind(oid, ber.NO_SUCH_OBJECT, None)
        return ber.varbind(oid, *found)

    def next_index(self, oid: str) -> int:
        return bisect_right(self.keys, ber.oid_key(oid))

    def at(self, index: int, asked: str) -> bytes:
        if index >= len(self.objects):
            return ber.varbind(asked, ber.END_OF_MIB_VIEW, None)
        oid, tag, value = self.objects[index]
        return ber.varbind(oid, tag, value)


def answer(request: ber.Request, device: SimDevice, state: DeviceState, *, wrong_types: bool = False) -> bytes:
    """The response PDU a device in `state` gives to `request` (GET, GETNEXT, GETBULK; others: noAccess)."""
    mib = _Mib(formats.snmp_objects(device, state, wrong_types=wrong_types))
    community = request.community
    if request.pdu_type == ber.GET_REQUEST:
        varbinds = [mib.get(oid) for oid in request.oids]
    elif request.pdu_type == ber.GET_NEXT_REQUEST:
        varbinds = [mib.at(mib.next_index(oid), oid) for oid in request.oids]
    elif request.pdu_type == ber.GET_BULK_REQUEST:
        non_repeaters = max(0, min(request.non_repeaters, len(request.oids)))
        repetitions = max(0, request.max_repetitions)
        varbinds = [mib.at(mib.next_index(oid), oid) for oid in request.oids[:non_repeaters]]
        cursors = [(mib.next_index(oid), oid) for oid in request.oids[non_repeaters:]]
        for _ in range(repetitions):
            if not cursors or len(varbinds) >= MAX_BULK_VARBINDS:
                break
            varbinds.extend(mib.at(index, oid) for index, oid in cursors)
            cursors = [(index + 1, oid) for index, oid in cursors]
            if all(index >= len(mib.objects) for index, _ in cursors):
                break
    else:  # SET and anything else: a read-only community
        varbinds = [ber.varbind(oid, 0x05, b"") for oid in request.oids]
        return ber.encode_message(community, ber.GET_RESPONSE, request.request_id, varbinds, ERROR_NO_ACCESS, 1)
    return ber.encode_message(community, ber.GET_RESPONSE, request.request_id, varbinds)


class SnmpAgent:
    """The v2c agent of every v2c device of the fleet, on one socket (default: loopback, port 16161)."""

    def __init__(self, fleet: Fleet, *, host: str = LOOPBACK, port: int = 16161, clock: Clock | None = None) -> None:
        self.fleet = fleet
        self.clock = clock or fleet.clock
        self.socket = PktinfoSocket(host, port, self._on_datagram)
        self.stats: Counter[str] = Counter()
        self._delayed: set[asyncio.TimerHandle] = set()
        self._trap_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The bound UDP port."""
        return self.socket.port

    async def start(self) -> None:
        """Bind the socket and answer."""
        self._loop = asyncio.get_running_loop()
        self.socket.open()

    async def stop(self) -> None:
        """Close the socket and drop the replies still waiting for a slow device (idempotent)."""
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        self.socket.close()

    def _on_datagram(self, data: bytes, source: tuple[str, int], destination: str) -> None:
        if not is_loopback(source[0]):
            self.stats["refused_peer"] += 1
            return
        device = self.fleet.snmp_by_host.get(destination)
        if device is None:
            self.stats["unknown_address"] += 1
            return
        try:
            request = ber.decode_request(data)
        except ber.MalformedRequest:
            self.stats["malformed"] += 1
            return
        if request.version != ber.VERSION_V2C or request.community != device.community.encode():
            self.stats["wrong_community_or_version"] += 1
            return
        state = device.snapshot(self.clock())
        if not state.reachable:
            self.stats["unreachable"] += 1
            return
        reply = self._garbage(request, device, state) if state.garbage else answer(request, device, state)
        self.stats["answered"] += 1
        if state.slow_delay_s:
            self._send_later(state.slow_delay_s, reply, source, destination)
        else:
            self.socket.send(reply, source, destination)

    def _garbage(self, request: ber.Request, device: SimDevice, state: DeviceState) -> bytes:
        variant = device.next_garbage("snmp")
        if variant is GarbageVariant.WRONG_TYPES:
            return answer(request, device, state, wrong_types=True)
        if variant is GarbageVariant.RANDOM_BYTES:
            return formats.random_bytes(device.garbage_rng(self.fleet.seed))
        good = answer(request, device, state)
        return good[: len(good) // 2]

    def _send_later(self, delay: float, reply: bytes, to: tuple[str, int], source: str) -> None:
        assert self._loop is not None

        def send() -> None:
            self._delayed.discard(handle)
            self.socket.send(reply, to, source)

        handle = self._loop.call_later(delay, send)
        self._delayed.add(handle)

    def send_trap(self, device: SimDevice, fault_code: str, raised: bool, target: tuple[str, int]) -> bytes:
        """Send a v2c faultRaised / faultCleared trap from the device's address to `target`; return it."""
        state = device.snapshot(self.clock())
        varbinds = [
            ber.varbind(formats.SYS_UPTIME, formats.TIMETICKS, (state.uptime_s * 100) % 2**32),
            ber.varbind(
                formats.SNMP_TRAP_OID,
                formats.OBJECT_IDENTIFIER,
                formats.TRAP_FAULT_RAISED if raised else formats.TRAP_FAULT_CLEARED,
            ),
            ber.varbind(formats.TRAP_FAULT_CODE, formats.OCTET_STRING, fault_code),
            ber.varbind(formats.TRAP_DEVICE_CODE, formats.OCTET_STRING, device.code),
        ]
        trap = ber.encode_message(device.community.encode(), ber.SNMPV2_TRAP, next(self._trap_ids) % 2**31, varbinds)
        self.socket.send(trap, target, device.host or "127.0.0.1")
        self.stats["traps"] += 1
        return trap
