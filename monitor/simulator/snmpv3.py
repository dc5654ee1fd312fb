"""The SNMPv3 agent (authPriv SHA / AES-128) of the fleet's v3 devices, on pysnmp, on one UDP socket.

pysnmp's own asyncio transport cannot tell which local address a datagram was sent to, so a reply
to 127.1.0.9 would leave from 127.0.0.1 and the client would never see it. Instead of binding one
transport per device address, the engine is fed by our `PktinfoSocket` through a small pysnmp
transport (`_FleetTransport`) that records the destination as the address's local address and
replies from it.

USM keys belong to (engine, user): one engine serves one password pair for `monitor`. Devices are
grouped by their credentials and each group gets its own `SnmpEngine` behind the same socket; the
demo fleet shares one pair, hence one engine. Faults act before pysnmp sees a packet: an offline
device's datagrams are dropped (discovery included), a slow one's are handed over late, a garbage
one gets random bytes.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from typing import Any

from pysnmp.carrier.asyncio.base import AbstractAsyncioTransport
from pysnmp.carrier.asyncio.dgram.udp import DOMAIN_NAME, UdpTransportAddress
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c

from monitor.simulator import ber, formats
from monitor.simulator.fleet import Clock, Fleet, SimDevice
from monitor.simulator.snmp import is_loopback
from monitor.simulator.synfilter import LOOPBACK
from monitor.simulator.udp import PktinfoSocket

log = logging.getLogger(__name__)

AUTH_PRIV = 3  # USM security level
MAX_BULK_VARBINDS = 100


def parse_v3_credentials(credentials: str) -> tuple[str, str, str]:
    """(user, auth pass, priv pass) from `v3:USER:AUTHPASS:PRIVPASS`; ValueError otherwise."""
    parts = credentials.split(":", 3)
    if len(parts) != 4 or parts[0] != "v3" or not all(parts[1:]):
        raise ValueError("SNMPv3 credentials must read v3:USER:AUTHPASS:PRIVPASS")
    if len(parts[2]) < 8 or len(parts[3]) < 8:
        raise ValueError("SNMPv3 passwords must have at least 8 characters")
    return parts[1], parts[2], parts[3]


def _pysnmp_value(tag: int, value: int | str) -> Any:
    if tag == formats.TIMETICKS:
        return rfc1902.TimeTicks(int(value))
    if tag == formats.OBJECT_IDENTIFIER:
        return rfc1902.ObjectIdentifier(str(value))
    if tag == formats.OCTET_STRING:
        return rfc1902.OctetString(str(value))
    return rfc1902.Integer32(int(value))


class _FleetTransport(AbstractAsyncioTransport):  # type: ignore[misc]
    """A pysnmp transport that receives from, and replies through, the shared PktinfoSocket."""

    ADDRESS_TYPE = UdpTransportAddress

    def __init__(self, sock: PktinfoSocket) -> None:
        self._sock = sock

    def deliver(self, data: bytes, source: tuple[str, int], destination: str) -> None:
        if self._callback_function is None:
            return
        address = UdpTransportAddress(source).set_local_address((destination, self._sock.port))
        try:
            self._callback_function(self, address, data)
        except Exception as exc:  # pysnmp raises on packets it cannot parse; a real agent drops them
            log.debug("SNMPv3 request from %s dropped: %s", source, exc)

    def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:
        local = transportAddress.get_local_address()
        self._sock.send(bytes(outgoingMessage), (transportAddress[0], transportAddress[1]), local[0])

    def open_server_mode(self, iface: Any = None) -> _FleetTransport:
        return self

    def close_transport(self) -> None:
        AbstractAsyncioTransport.close_transport(self)


class _FleetResponder(cmdrsp.CommandResponderBase):  # type: ignore[misc]
    """Answers GET, GETNEXT and GETBULK from the fleet's state instead of a MIB tree."""

    SUPPORTED_PDU_TYPES = (
        rfc1905.GetRequestPDU.tagSet,
        rfc1905.GetNextRequestPDU.tagSet,
        rfc1905.GetBulkRequestPDU.tagSet,
    )

    def __init__(self, snmp_engine: engine.SnmpEngine, fleet: Fleet, clock: Clock) -> None:
        super().__init__(snmp_engine, context.SnmpContext(snmp_engine))
        self.fleet = fleet
        self.clock = clock

    def handle_management_operation(
        self, snmpEngine: engine.SnmpEngine, stateReference: Any, contextName: Any, PDU: Any, *args: Any
    ) -> None:
        request = snmpEngine.observer.get_execution_context("rfc3412.receiveMessage:request")
        asked = [(str(name), value) for name, value in v2c.apiPDU.get_varbinds(PDU)]
        if request["securityModel"] != 3 or request["securityLevel"] != AUTH_PRIV:
            # The user is `rouser monitor priv`: anything less is refused, as net-snmp does.
            self.send_varbinds(snmpEngine, stateReference, 16, 1, v2c.apiPDU.get_varbinds(PDU))
            return
        _, address = snmpEngine.message_dispatcher.get_transport_info(stateReference)
        device = self.fleet.snmpv3_by_host.get(address.get_local_address()[0])
        if device is None:
            return
        objects = formats.snmp_objects(device, device.snapshot(self.clock()))
        keys = [ber.oid_key(oid) for oid, _, _ in objects]
        values = {oid: (tag, value) for oid, tag, value in objects}

        def at(index: int, oid: str) -> tuple[Any, Any]:
            if index >= len(objects):
                return rfc1902.ObjectName(oid), rfc1905.endOfMibView
            name, tag, value = objects[index]
            return rfc1902.ObjectName(name), _pysnmp_value(tag, value)

        out: list[tuple[Any, Any]] = []
        if PDU.tagSet == rfc1905.GetRequestPDU.tagSet:
            for oid, _ in asked:
                found = values.get(oid)
                value = rfc1905.noSuchObject if found is None else _pysnmp_value(*found)
                out.append((rfc1902.ObjectName(oid), value))
        elif PDU.tagSet == rfc1905.GetNextRequestPDU.tagSet:
            out = [at(bisect_right(keys, ber.oid_key(oid)), oid) for oid, _ in asked]
        else:
            non_repeaters = max(0, min(int(v2c.apiBulkPDU.get_non_repeaters(PDU)), len(asked)))
            repetitions = max(0, int(v2c.apiBulkPDU.get_max_repetitions(PDU)))
            out = [at(bisect_right(keys, ber.oid_key(oid)), oid) for oid, _ in asked[:non_repeaters]]
            cursors = [(bisect_right(keys, ber.oid_key(oid)), oid) for oid, _ in asked[non_repeaters:]]
            for _ in range(repetitions):
                if not cursors or len(out) >= MAX_BULK_VARBINDS or all(i >= len(objects) for i, _ in cursors):
                    break
                out.extend(at(index, oid) for index, oid in cursors)
                cursors = [(index + 1, oid) for index, oid in cursors]
        self.send_varbinds(snmpEngine, stateReference, 0, 0, out)


class SnmpV3Agent:
    """Every SNMPv3 device of the fleet, on one socket (default: loopback, port 16162)."""

    def __init__(self, fleet: Fleet, *, host: str = LOOPBACK, port: int = 16162, clock: Clock | None = None) -> None:
        self.fleet = fleet
        self.clock = clock or fleet.clock
        self.socket = PktinfoSocket(host, port, self._on_datagram)
        self._engines: list[engine.SnmpEngine] = []
        self._transport_by_host: dict[str, _FleetTransport] = {}
        self._delayed: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The bound UDP port."""
        return self.socket.port

    async def start(self) -> None:
        """Bind the socket and build one engine per distinct credentials of the fleet's v3 devices."""
        self._loop = asyncio.get_running_loop()
        groups: dict[tuple[str, str, str], list[SimDevice]] = {}
        for device in self.fleet.snmpv3_by_host.values():
            try:
                groups.setdefault(parse_v3_credentials(device.credentials or ""), []).append(device)
            except ValueError as exc:
                log.warning("SNMPv3 device %s not simulated: %s", device.code, exc)
        self.socket.open()
        for (user, auth, priv), devices in sorted(groups.items()):
            snmp_engine = engine.SnmpEngine()
            transport = _FleetTransport(self.socket)
            config.add_transport(snmp_engine, DOMAIN_NAME, transport)
            config.add_v3_user(snmp_engine, user, config.USM_AUTH_HMAC96_SHA, auth, config.USM_PRIV_CFB128_AES, priv)
            _FleetResponder(snmp_engine, self.fleet, self.clock)
            self._engines.append(snmp_engine)
            for device in devices:
                self._transport_by_host[device.host] = transport

    async def stop(self) -> None:
        """Close the socket and the engines (idempotent)."""
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        self.socket.close()
        for snmp_engine in self._engines:
            config.delete_transport(snmp_engine, DOMAIN_NAME)
            if snmp_engine.transport_dispatcher is not None:
                snmp_engine.close_dispatcher()
        self._engines.clear()
        self._transport_by_host.clear()

    def _on_datagram(self, data: bytes, source: tuple[str, int], destination: str) -> None:
        transport = self._transport_by_host.get(destination)
        if transport is None or not is_loopback(source[0]):
            return
        device = self.fleet.snmpv3_by_host[destination]
        state = device.snapshot(self.clock())
        if not state.reachable:
            return
        if state.garbage:
            self.socket.send(formats.random_bytes(device.garbage_rng(self.fleet.seed)), source, destination)
            device.next_garbage("snmp")  # moves the counter: the next garbage differs
            return
        if state.slow_delay_s and self._loop is not None:

            def deliver() -> None:
                self._delayed.discard(handle)
                transport.deliver(data, source, destination)

            handle = self._loop.call_later(state.slow_delay_s, deliver)
            self._delayed.add(handle)
            return
        transport.deliver(data, source, destination)
