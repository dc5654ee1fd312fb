"""SNMP against Debian's snmpd on a loopback port (v2c and v3), garbage agents, and traps sent with net-snmp's tools."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from monitor.collectors import snmp_v3
from monitor.collectors.profiles import load_profiles, parse_profile
from monitor.collectors.snmp import SnmpPoller, TrapFault, TrapReceiver, fault_from_trap
from monitor.collectors.snmp_codec import SnmpDecodeError, decode_response, encode_get
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation
from monitor.simulator import ber
from tests.peers import NET_SNMP_ENV, SNMP_V3_CREDENTIALS, SYS_DESCR, Peer, snmpget, start_snmpd

REGISTRY = load_profiles()
MIB2 = REGISTRY.get("generic-mib2")
SYS_DESCR_OID, SYS_UPTIME_OID, IF_OPER_OID = MIB2.snmp_oids()
ENTERPRISE_ONLY = parse_profile(
    "name: enterprise-only\nprotocols: [snmp]\nreadings:\n"
    "  amplifier: {oid: 1.3.6.1.4.1.99999.1.1.0, map: {1: ok, 2: fault}}\n",
    "enterprise-only.yaml",
)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    with start_snmpd(tmp_path_factory.mktemp("snmpd")) as peer:
        yield peer


def device(port: int, credentials: str | None = "public", address: str = "127.0.0.1", device_id: int = 1) -> PollTarget:
    return PollTarget(device_id, f"DEV{device_id}", "snmp", address, port, MIB2.name, credentials, 60)


def test_values_match_what_snmpget_says(agent: Peer) -> None:
    async def scenario() -> tuple[dict[str, Any], Observation]:
        async with SnmpPoller(timeout_s=1) as poller:
            values = await poller.get(device(agent.port), [SYS_DESCR_OID, SYS_UPTIME_OID, IF_OPER_OID])
            observation = await poller.poll(device(agent.port), MIB2)
        return values, observation

    expected = snmpget(agent.port, SYS_DESCR_OID, SYS_UPTIME_OID, IF_OPER_OID)
    values, observation = asyncio.run(scenario())
    assert values[SYS_DESCR_OID] == expected[SYS_DESCR_OID].encode() == SYS_DESCR.encode()
    assert values[IF_OPER_OID] == int(expected[IF_OPER_OID]) == 1
    assert abs(values[SYS_UPTIME_OID] - int(expected[SYS_UPTIME_OID])) <= 300  # the clock moved between the two
    assert observation.reachable and observation.source == "snmp" and observation.faults == frozenset()
    assert observation.readings["description"] == SYS_DESCR and observation.readings["if_oper_status"] == "up"
    assert abs(observation.readings["uptime_s"] - int(expected[SYS_UPTIME_OID]) // 100) <= 3


def test_five_hundred_concurrent_gets_share_one_socket_and_all_come_back_right(agent: Peer) -> None:
    async def scenario() -> tuple[list[Observation], SnmpPoller]:
        async with SnmpPoller(timeout_s=2, retries=1) as poller:
            targets = [device(agent.port, device_id=n) for n in range(500)]
            results = await asyncio.gather(*(poller.poll(t, MIB2) for t in targets))
            assert sum(len(t) for t in poller._v2c._transports.values()) == 1
            return results, poller

    results, poller = asyncio.run(scenario())
    assert [o.device_id for o in results] == list(range(500))
    assert all(o.reachable and o.readings["description"] == SYS_DESCR for o in results)
    assert all(o.readings["if_oper_status"] == "up" for o in results)
    assert poller.counters.outcome("snmp", "ok") == 500
    assert poller.counters.event_count("snmp", "unmatched_reply") == 0


def test_a_wrong_community_is_a_timeout_because_agents_stay_silent(agent: Peer) -> None:
    async def scenario() -> Observation:
        async with SnmpPoller(timeout_s=0.3, retries=1) as poller:
            return await poller.poll(device(agent.port, "not-the-community"), MIB2)

    observation = asyncio.run(scenario())
    assert observation.error == f"timeout: no reply from 127.0.0.1:{agent.port} in 2 tries of 0.3 s"
    assert observation.latency_s is not None and 0.55 < observation.latency_s < 1.5


def test_objects_the_agent_lacks_are_absent_and_an_agent_with_none_of_them_is_snmp_no_such(agent: Peer) -> None:
    async def scenario() -> tuple[Observation, Observation]:
        async with SnmpPoller(timeout_s=1) as poller:
            daiviet = await poller.poll(device(agent.port), REGISTRY.get("daiviet-rx-snmp"))
            nothing = await poller.poll(device(agent.port), ENTERPRISE_ONLY)
        return daiviet, nothing

    daiviet, nothing = asyncio.run(scenario())
    assert daiviet.reachable and set(daiviet.readings) == {"description", "uptime_s", "if_oper_status"}
    assert nothing.error == "snmp_no_such: the agent has none of the 1 objects of profile 'enterprise-only'"


def test_snmp_v3_auth_priv_reads_the_same_values_and_wrong_keys_are_auth_failures(agent: Peer) -> None:
    async def scenario() -> tuple[Observation, Observation, Observation]:
        async with SnmpPoller(timeout_s=1, retries=0) as poller:
            good = await poller.poll(device(agent.port, SNMP_V3_CREDENTIALS), MIB2)
            wrong = await poller.poll(device(agent.port, "v3:monitor:authpass999:privpass123"), MIB2)
            again = await poller.poll(device(agent.port, SNMP_V3_CREDENTIALS), MIB2)
        return good, wrong, again

    good, wrong, again = asyncio.run(scenario())
    assert good.reachable and good.readings["description"] == SYS_DESCR and good.readings["if_oper_status"] == "up"
    assert wrong.error is not None and wrong.error.startswith("auth: ")
    assert again.reachable, "the right keys work again after a device with wrong ones"


def test_snmp_v3_only_a_name_that_does_not_resolve_is_dns_and_a_bug_is_logged_once(
    agent: Peer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_create = snmp_v3.UdpTransportTarget.create

    async def create(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        if address[0] == "127.0.0.2":
            raise RuntimeError("a bug while setting up the target")
        return await real_create(address, *args, **kwargs)

    monkeypatch.setattr(snmp_v3.UdpTransportTarget, "create", create)

    async def scenario() -> list[Observation]:
        async with SnmpPoller(timeout_s=1, retries=0) as poller:
            return [
                await poller.poll(device(agent.port, SNMP_V3_CREDENTIALS, address=address, device_id=n), MIB2)
                for n, address in enumerate(["no-such-host.invalid", "127.0.0.2", "127.0.0.2", "127.0.0.1"])
            ]

    with caplog.at_level(logging.WARNING, logger="monitor.collectors.snmp_v3"):
        unresolved, bug, again, good = asyncio.run(scenario())
    assert unresolved.error is not None and unresolved.error.startswith("dns: cannot resolve 'no-such-host.invalid'")
    assert bug.error is not None and bug.error.startswith("snmp_error: ") and "a bug" in bug.error
    assert again.error == bug.error, "the same bug, the same failure"
    assert good.reachable, "the other devices are still polled"
    logged = [r for r in caplog.records if r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError)]
    assert len(logged) == 1, "logged once with its traceback, not at every poll"
    assert not any("no-such-host" in r.getMessage() for r in caplog.records), "a name that does not resolve is no bug"


class GarbageAgent(asyncio.DatagramProtocol):
    """Answers every request with bytes chosen by `mode`."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.transport: asyncio.DatagramTransport | None = None
        self.other: asyncio.DatagramTransport | None = None
        self.rng = random.Random(7)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # Python 3.11's class does not inherit it

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        request_id = int.from_bytes(data[17:21], "big") if len(data) > 21 else 1
        good = bytearray(encode_get(1, b"public", request_id, (SYS_DESCR_OID,)))
        good[good.index(0xA0)] = 0xA2  # the same message as a GetResponse
        if self.mode == "random":
            for _ in range(3):
                self.transport.sendto(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 90))), addr)
        elif self.mode == "truncated":
            for cut in (5, 20, len(good) - 1):
                self.transport.sendto(bytes(good[:cut]), addr)
        elif self.mode == "other-port" and self.other is not None:
            self.other.sendto(bytes(good), addr)  # a well-formed reply, but not from the address asked


@pytest.mark.parametrize(
    ("mode", "kind", "event"),
    [
        ("random", "snmp_decode", "garbage_packet"),
        ("truncated", "snmp_decode", "garbage_packet"),
        ("other-port", "timeout", "wrong_source"),
    ],
)
def test_garbage_replies_are_counted_and_dropped_and_the_client_keeps_working(
    agent: Peer, mode: str, kind: str, event: str
) -> None:
    async def scenario() -> tuple[list[Observation], Observation, SnmpPoller]:
        loop = asyncio.get_running_loop()
        garbage = GarbageAgent(mode)
        server, _ = await loop.create_datagram_endpoint(lambda: garbage, local_addr=("127.0.0.1", 0))
        other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        garbage.other = other
        port = server.get_extra_info("sockname")[1]
        try:
            async with SnmpPoller(timeout_s=0.3, retries=1) as poller:
                bad = await asyncio.gather(*(poller.poll(device(port, device_id=n), MIB2) for n in range(20)))
                fine = await poller.poll(device(agent.port), MIB2)
                return bad, fine, poller
        finally:
            server.close()
            other.close()

    bad, fine, poller = asyncio.run(scenario())
    assert all(not o.reachable and (o.error or "").startswith(f"{kind}: ") for o in bad)
    assert poller.counters.event_count("snmp", event) >= 20
    assert fine.reachable and fine.readings["description"] == SYS_DESCR


REQUEST_IDS = (1, 127, 128, 255, 256, 65535, 2**23, 2**31 - 1)


def test_our_requests_are_byte_for_byte_what_an_independent_encoder_writes() -> None:
    # The simulator's hand-written BER encoder shares no code with the collector's templates.
    oids = (*MIB2.snmp_oids(), "1.3.6.1.4.1.99999.1.2.300000")
    for request_id in REQUEST_IDS:
        varbinds = [ber.varbind(oid, 0x05, None) for oid in oids]
        expected = ber.encode_message(b"public", ber.GET_REQUEST, request_id, varbinds)
        assert encode_get(1, b"public", request_id, oids) == expected
    # and what aiosnmp (the encoder the templates were first built with) wrote, pinned
    assert encode_get(1, b"public", 1234, ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0")).hex() == (
        "303502010104067075626c6963a028020204d2020100020100301c300c06082b060102010103000500300c06082b060102010101000500"
    )


def test_our_requests_are_byte_for_byte_what_aiosnmp_encodes_where_it_installs() -> None:
    message = pytest.importorskip("aiosnmp.message", reason="aiosnmp ships wheels only up to CPython 3.11")
    oids = MIB2.snmp_oids()
    for request_id in REQUEST_IDS:
        request = message.GetRequest([message.SnmpVarbind(oid) for oid in oids])
        request.request_id = request_id
        expected = message.SnmpMessage(message.SnmpVersion.v2c, "public", request).encode()
        assert encode_get(1, b"public", request_id, oids) == expected


def test_the_decoder_refuses_any_mangled_packet_with_its_own_error_only() -> None:
    good = bytearray(encode_get(1, b"public", 4242, MIB2.snmp_oids()))
    good[good.index(0xA0)] = 0xA2
    rng = random.Random(11)
    refused = 0
    for _ in range(20_000):
        packet = bytearray(good)
        if rng.random() < 0.5:
            packet = packet[: rng.randrange(len(packet))]
        else:
            for _ in range(rng.randrange(1, 4)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
        try:
            decode_response(bytes(packet))
        except SnmpDecodeError:
            refused += 1
    assert refused > 10_000
    response = decode_response(bytes(good))
    assert response.request_id == 4242 and [oid for oid, _ in response.varbinds] == list(MIB2.snmp_oids())


async def _receive(
    command: list[str], communities: tuple[str, ...] = ("public",)
) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
    received: list[tuple[str, str, dict[str, Any]]] = []
    arrived = asyncio.Event()

    async def on_trap(source: str, trap_oid: str, varbinds: dict[str, Any]) -> None:
        received.append((source, trap_oid, varbinds))
        arrived.set()

    receiver = TrapReceiver(on_trap, host="127.0.0.1", port=0, communities=communities)
    await receiver.start()
    try:
        port = receiver.address[1]
        process = await asyncio.create_subprocess_exec(
            *[part.replace("PORT", str(port)) for part in command],
            env=NET_SNMP_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        code = await asyncio.wait_for(process.wait(), 10)
        with contextlib.suppress(TimeoutError):  # a dropped trap never arrives
            await asyncio.wait_for(arrived.wait(), 1)
    finally:
        await receiver.stop()
    return received, code


FAULT_TRAP = [
    "snmptrap", "-v", "2c", "-c", "public", "127.0.0.1:PORT", "", "1.3.6.1.4.1.99999.2.1",
    "1.3.6.1.4.1.99999.2.10.0", "s", "amplifier_fault", "1.3.6.1.4.1.99999.2.11.0", "s", "DEV1",
]  # fmt: skip


def test_a_v2c_fault_trap_reaches_the_callback_and_maps_to_a_raised_fault() -> None:
    received, code = asyncio.run(_receive(FAULT_TRAP))
    assert code == 0 and len(received) == 1
    source, trap_oid, varbinds = received[0]
    assert (source, trap_oid) == ("127.0.0.1", "1.3.6.1.4.1.99999.2.1")
    assert varbinds["1.3.6.1.4.1.99999.2.10.0"] == "amplifier_fault" and varbinds["1.3.6.1.4.1.99999.2.11.0"] == "DEV1"
    assert isinstance(varbinds["1.3.6.1.2.1.1.3.0"], int)  # sysUpTime.0
    assert fault_from_trap(trap_oid, varbinds) == TrapFault("DEV1", "amplifier_fault", raised=True)


def test_a_v1_trap_arrives_in_its_v2_form_and_an_inform_is_acknowledged() -> None:
    v1 = ["snmptrap", "-v", "1", "-c", "public", "127.0.0.1:PORT", "1.3.6.1.4.1.99999.2", "127.0.0.1", "6", "2", "55",
          "1.3.6.1.4.1.99999.2.10.0", "s", "door_open", "1.3.6.1.4.1.99999.2.11.0", "s", "DEV2"]  # fmt: skip
    received, _ = asyncio.run(_receive(v1))
    assert len(received) == 1 and received[0][1] == "1.3.6.1.4.1.99999.2.0.2"
    assert "public" not in received[0][2].values(), "the v1 community is not handed to callbacks"
    assert fault_from_trap(received[0][1], received[0][2]) == TrapFault("DEV2", "door_open", raised=False)

    inform = ["snmpinform", "-v", "2c", "-c", "public", "-t", "2", "-r", "0", *FAULT_TRAP[5:]]
    received, code = asyncio.run(_receive(inform))
    assert code == 0, "snmpinform exits 0 only when the inform was acknowledged"
    assert len(received) == 1 and received[0][1] == "1.3.6.1.4.1.99999.2.1"


def test_a_trap_with_another_community_is_dropped() -> None:
    received, _ = asyncio.run(_receive(FAULT_TRAP, communities=("private",)))
    assert received == []


@pytest.mark.parametrize(
    ("trap_oid", "varbinds", "expected"),
    [
        (".1.3.6.1.4.1.99999.2.2",
         {".1.3.6.1.4.1.99999.2.10.0": b"overheat", ".1.3.6.1.4.1.99999.2.11.0": b"06613-CL01"},
         TrapFault("06613-CL01", "overheat", raised=False)),
        ("1.3.6.1.6.3.1.1.5.3", {"1.3.6.1.4.1.99999.2.10.0": "overheat", "1.3.6.1.4.1.99999.2.11.0": "D"}, None),
        ("1.3.6.1.4.1.99999.2.1", {"1.3.6.1.4.1.99999.2.11.0": "D"}, None),
        ("1.3.6.1.4.1.99999.2.1", {"1.3.6.1.4.1.99999.2.10.0": "Bad Code", "1.3.6.1.4.1.99999.2.11.0": "D"}, None),
        ("1.3.6.1.4.1.99999.2.1", {"1.3.6.1.4.1.99999.2.10.0": "overheat", "1.3.6.1.4.1.99999.2.11.0": b"\xff"}, None),
    ],
)  # fmt: skip
def test_only_well_formed_contract_traps_map_to_faults(
    trap_oid: str, varbinds: dict[str, Any], expected: TrapFault | None
) -> None:
    assert fault_from_trap(trap_oid, varbinds) == expected


def test_a_trap_receiver_on_a_port_in_use_fails_at_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = TrapReceiver(lambda *_: None, port=0)
        await first.start()
        try:
            second = TrapReceiver(lambda *_: None, port=first.address[1])
            with pytest.raises(OSError):
                await second.start()
        finally:
            await first.stop()

    asyncio.run(scenario())


def test_a_cancelled_get_is_forgotten_at_once(agent: Peer) -> None:
    async def scenario() -> tuple[int, Observation]:
        async with SnmpPoller(timeout_s=1) as poller:
            task = asyncio.create_task(poller.get(device(agent.port), [SYS_DESCR_OID]))
            await asyncio.sleep(0)  # sent, not yet answered
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            left = poller._v2c.in_flight
            await asyncio.sleep(0.05)  # its late reply arrives and is dropped quietly
            return left, await poller.poll(device(agent.port), MIB2)

    left, after = asyncio.run(scenario())
    assert left == 0 and after.reachable


def test_three_hundred_concurrent_v3_gets_all_come_back(agent: Peer) -> None:
    # pysnmp's own socket (208 KiB) dropped every reply beyond about 256 in flight; ours has 4 MiB.
    async def scenario() -> list[Observation]:
        async with SnmpPoller(timeout_s=2, retries=0) as poller:
            targets = [device(agent.port, SNMP_V3_CREDENTIALS, device_id=n) for n in range(300)]
            return await asyncio.gather(*(poller.poll(t, MIB2) for t in targets))

    results = asyncio.run(scenario())
    assert all(o.reachable and o.readings["description"] == SYS_DESCR for o in results)
