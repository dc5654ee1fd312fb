"""The simulated fleet's SNMP agents over real loopback sockets, checked with aiosnmp and Net-SNMP's tools."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import time
from typing import Any

import pytest

# aiosnmp, the independent client these tests check the agents with, ships wheels only up to CPython 3.11
# (it is a test dependency there only); the collector's own SNMP tests run on every Python.
pytest.importorskip("aiosnmp", reason="aiosnmp installs only on CPython <= 3.11")
from aiosnmp import Snmp
from aiosnmp.exceptions import SnmpTimeoutError
from aiosnmp.message import GetRequest, SnmpMessage, SnmpV2TrapMessage, SnmpVarbind, SnmpVersion

from monitor.simulator import FaultKind, ManualClock, Simulator
from monitor.simulator.samples import sample_devices
from tests.test_simulator import START, run

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None, reason="Net-SNMP tools (Debian: snmp) missing")

UPTIME, DESCR, IF_OPER = "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.2.2.1.8.1"
ENTERPRISE = "1.3.6.1.4.1.99999.1"
V3 = [
    "-v3",
    "-l",
    "authPriv",
    "-u",
    "monitor",
    "-a",
    "SHA",
    "-A",
    "demo-auth-pass",
    "-x",
    "AES",
    "-X",
    "demo-priv-pass",
]


def simulator(**options: Any) -> Simulator:
    options.setdefault("clock", ManualClock(START))
    return Simulator(sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, **options)


async def snmp_tool(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 15)
    return output.decode()


async def aiosnmp_get(host: str, port: int, oids: list[str], community: str = "public") -> dict[str, Any]:
    # validate_source_addr: a reply from any other address than the one asked is ignored.
    async with Snmp(host=host, port=port, community=community, timeout=1, retries=1, validate_source_addr=True) as snmp:
        return {varbind.oid.lstrip("."): varbind.value for varbind in await snmp.get(oids)}


def raw_exchange(host: str, port: int, packet: bytes, wait: float = 0.5) -> tuple[bytes, tuple[str, int]] | None:
    """Send one datagram from an unconnected socket; the reply and where it came from, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(packet, (host, port))
        try:
            return sock.recvfrom(65535)
        except TimeoutError:
            return None


def get_packet(community: str = "public", oids: tuple[str, ...] = (UPTIME, DESCR, IF_OPER)) -> bytes:
    return SnmpMessage(SnmpVersion.v2c, community, GetRequest([SnmpVarbind(oid) for oid in oids])).encode()


def test_v2c_get_agrees_between_aiosnmp_and_snmpget_and_comes_from_the_asked_address() -> None:
    async def scenario() -> tuple[dict[str, Any], str, Any]:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            values = await aiosnmp_get("127.1.0.5", sim.snmp_port, [UPTIME, DESCR, IF_OPER])
            tool = await snmp_tool(
                "snmpget", "-v2c", "-c", "public", "-On", f"127.1.0.5:{sim.snmp_port}", UPTIME, DESCR, IF_OPER
            )
            raw = await asyncio.to_thread(raw_exchange, "127.1.0.5", sim.snmp_port, get_packet())
            return values, tool, raw

    values, tool, raw = run(scenario())
    ticks = int(re.search(r"Timeticks: \((\d+)\)", tool).group(1))  # type: ignore[union-attr]
    assert values[UPTIME] == ticks  # the same clock: the same uptime, to the tick
    assert values[DESCR].decode() in tool and "Linux station" in tool
    assert values[IF_OPER] == 1 and f".{IF_OPER} = INTEGER: 1" in tool
    assert raw is not None and raw[1][0] == "127.1.0.5"


def test_a_wrong_community_gets_no_reply() -> None:
    async def scenario() -> tuple[Any, ...]:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            raw = await asyncio.to_thread(raw_exchange, "127.1.0.6", sim.snmp_port, get_packet("private"))
            with pytest.raises(SnmpTimeoutError):
                await aiosnmp_get("127.1.0.6", sim.snmp_port, [UPTIME], community="private")
            right = await asyncio.to_thread(raw_exchange, "127.1.0.6", sim.snmp_port, get_packet())
            return raw, right

    wrong, right = run(scenario())
    assert wrong is None and right is not None


def test_dai_viet_serves_its_enterprise_subtree_and_generic_devices_only_mib2() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str]:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            oids = [f"{ENTERPRISE}.{n}.0" for n in range(1, 10)]
            daiviet = await aiosnmp_get("127.1.0.6", sim.snmp_port, oids)
            generic = await aiosnmp_get("127.1.0.5", sim.snmp_port, [f"{ENTERPRISE}.1.0", "1.3.6.1.2.1.99.0"])
            walk = await snmp_tool("snmpwalk", "-v2c", "-c", "public", "-On", f"127.1.0.6:{sim.snmp_port}", "1.3.6.1")
            return daiviet, generic, walk

    daiviet, generic, walk = run(scenario())
    assert [daiviet[f"{ENTERPRISE}.{n}.0"] for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 100, 1]
    assert -98 - 3 <= daiviet[f"{ENTERPRISE}.5.0"] <= -62 + 3
    assert daiviet[f"{ENTERPRISE}.9.0"] == b"3.1.0"
    assert all(value is None for value in generic.values())  # noSuchObject
    assert walk.count("\n") == 15 and "No more variables left in this MIB View" in walk
    assert '.1.3.6.1.2.1.1.1.0 = STRING: "Dai Viet DV-RX8 fw 3.1.0"' in walk


def test_faults_show_in_the_enterprise_subtree_and_offline_devices_stay_silent() -> None:
    async def scenario() -> tuple[dict[str, Any], Any]:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            sim.inject("06613-CL02", FaultKind.AMPLIFIER_FAULT)
            sim.inject("06613-CL02", FaultKind.SPEAKER_LINE_FAULT, variant="short")
            sim.inject("06613-CL02", FaultKind.DOOR_OPEN)
            sim.inject("06613-ST", FaultKind.LINK_DOWN)
            values = await aiosnmp_get("127.1.0.6", sim.snmp_port, [f"{ENTERPRISE}.{n}.0" for n in (1, 2, 8)])
            values.update(await aiosnmp_get("127.1.0.5", sim.snmp_port, [IF_OPER]))
            sim.inject("06613-ST", FaultKind.OFFLINE)
            silent = await asyncio.to_thread(raw_exchange, "127.1.0.5", sim.snmp_port, get_packet())
            return values, silent

    values, silent = run(scenario())
    assert [values[f"{ENTERPRISE}.{n}.0"] for n in (1, 2, 8)] == [2, 3, 2]
    assert values[IF_OPER] == 2
    assert silent is None


def test_garbage_replies_truncated_random_and_wrongly_typed() -> None:
    async def scenario() -> dict[str, Any]:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            port = sim.snmp_port
            good = await asyncio.to_thread(raw_exchange, "127.1.0.6", port, get_packet())
            found: dict[str, Any] = {"good": good}
            for variant in ("truncated", "random_bytes"):
                sim.inject("06613-CL02", FaultKind.GARBAGE, variant=variant)
                found[variant] = await asyncio.to_thread(raw_exchange, "127.1.0.6", port, get_packet())
            sim.inject("06613-CL02", FaultKind.GARBAGE, variant="wrong_types")
            found["wrong_types"] = await aiosnmp_get("127.1.0.6", port, [f"{ENTERPRISE}.4.0"])
            return found

    found = run(scenario())
    good = found["good"][0]
    truncated = found["truncated"][0]
    assert len(truncated) == len(good) // 2 and truncated[:8] == good[:8]  # the same reply, cut in the middle
    assert found["random_bytes"][0] != good and found["random_bytes"][1][0] == "127.1.0.6"
    assert found["wrong_types"][f"{ENTERPRISE}.4.0"] == b"100"  # an OCTET STRING where an INTEGER belongs


def test_a_slow_agent_answers_after_its_delay() -> None:
    async def scenario() -> float:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            sim.inject("06613-CL02", FaultKind.SLOW, delay_s=0.7)
            started = time.monotonic()
            reply = await asyncio.to_thread(raw_exchange, "127.1.0.6", sim.snmp_port, get_packet(), 3.0)
            assert reply is not None
            return time.monotonic() - started

    assert run(scenario()) >= 0.7


def test_snmpv3_authpriv_get_with_net_snmp() -> None:
    async def scenario() -> tuple[str, str, str]:
        async with simulator() as sim:
            target = f"127.1.0.7:{sim.snmp_v3_port}"
            good = await snmp_tool("snmpget", *V3, "-On", target, UPTIME, f"{ENTERPRISE}.9.0", "1.3.6.1.2.1.1.5.0")
            wrong = V3.copy()
            wrong[wrong.index("demo-priv-pass")] = "wrong-priv-pass"
            bad = await snmp_tool("snmpget", *wrong, "-t", "0.5", "-r", "0", "-On", target, UPTIME)
            sim.inject("06613-CL03", FaultKind.OFFLINE)
            silent = await snmp_tool("snmpget", *V3, "-t", "0.5", "-r", "0", "-On", target, UPTIME)
            return good, bad, silent

    good, bad, silent = run(scenario())
    assert "Timeticks" in good and 'STRING: "3.1.0"' in good and 'STRING: "06613-CL03"' in good
    assert "Timeticks" not in bad
    assert "Timeout" in silent


def test_v3_devices_do_not_answer_v2c() -> None:
    async def scenario() -> Any:
        async with simulator() as sim:
            assert sim.snmp_port is not None
            return await asyncio.to_thread(raw_exchange, "127.1.0.7", sim.snmp_port, get_packet())

    assert run(scenario()) is None


def test_faults_raise_and_clear_traps_from_the_devices_address() -> None:
    async def scenario() -> list[tuple[SnmpV2TrapMessage, tuple[str, int]]]:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        try:
            async with simulator(trap_target=receiver.getsockname()) as sim:
                sim.inject("06613-CL02", FaultKind.OVERHEAT)
                sim.clear("06613-CL02")
                sim.inject("06613-CL01", FaultKind.DOOR_OPEN)  # an HTTP device: no trap
                traps = []
                for _ in range(2):
                    data, source = await asyncio.to_thread(receiver.recvfrom, 65535)
                    message = SnmpV2TrapMessage.decode(data)
                    assert message is not None
                    traps.append((message, source))
                return traps
        finally:
            receiver.close()

    traps = run(scenario())
    (raised, raised_from), (cleared, _) = traps
    assert raised_from[0] == "127.1.0.6"
    values = {varbind.oid.lstrip("."): varbind.value for varbind in raised.data.varbinds}
    assert values["1.3.6.1.6.3.1.1.4.1.0"] == ".1.3.6.1.4.1.99999.2.1"
    assert values["1.3.6.1.4.1.99999.2.10.0"] == b"overheat"
    assert values["1.3.6.1.4.1.99999.2.11.0"] == b"06613-CL02"
    assert isinstance(values["1.3.6.1.2.1.1.3.0"], int)
    cleared_values = {varbind.oid.lstrip("."): varbind.value for varbind in cleared.data.varbinds}
    assert cleared_values["1.3.6.1.6.3.1.1.4.1.0"] == ".1.3.6.1.4.1.99999.2.2"
