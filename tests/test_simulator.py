"""The simulated fleet over real loopback sockets: HTTP status pages, scenarios, the control API and CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from typer.testing import CliRunner

from monitor.config import Settings
from monitor.simulator import FaultKind, Fleet, ManualClock, Simulator, parse_duration, parse_scenario
from monitor.simulator.cli import simulate_app
from monitor.simulator.faults import NATURAL_FAULTS_BY_KIND
from monitor.simulator.samples import sample_devices
from monitor.simulator.scenarios import ScenarioContext, Timeline

T = TypeVar("T")
START = 1_790_000_000.0


def run(coroutine: Awaitable[T], timeout: float = 25) -> T:
    """Run one test's async body, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


def simulator(**options: Any) -> Simulator:
    """A simulator of the sample fleet on free ports, with a manual clock."""
    options.setdefault("clock", ManualClock(START))
    return Simulator(sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, hold_unreachable_s=5, **options)


async def get(sim: Simulator, host: str, path: str = "/status", within: float = 2.0) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
        session.get(f"http://{host}:{sim.http_port}{path}") as response,
    ):
        return response.status, await response.read()


# --- HTTP -----------------------------------------------------------------------------------------


def test_each_address_on_the_same_port_serves_its_own_vendor_json() -> None:
    async def scenario() -> tuple[Any, ...]:
        async with simulator() as sim:
            vietloa = await get(sim, "127.1.0.2")
            saobac = await get(sim, "127.1.0.3")
            unknown = await get(sim, "127.1.0.99")
            wrong_path = await get(sim, "127.1.0.2", "/metrics")
            return vietloa, saobac, unknown, wrong_path

    vietloa, saobac, unknown, wrong_path = run(scenario())
    assert vietloa[0] == 200
    body = json.loads(vietloa[1])
    assert body["device_id"] == "06613-CL01"
    assert set(body) == {"device_id", "fw", "uptime", "power", "net", "audio", "temp", "door", "ts"}
    assert body["power"] == {"source": "AC", "battery": 100}
    assert body["audio"]["amp"] == "OK" and body["audio"]["line"] == "OK"
    assert isinstance(body["uptime"], int) and isinstance(body["net"]["rssi"], int)
    assert body["door"] == "closed" and body["ts"].endswith("Z")
    board = json.loads(saobac[1])
    assert board["serial"].startswith("SB55-")
    assert board["system"]["power"] == "mains" and board["status"]["display"] == "on"
    assert board["status"]["content"]["updated_at"] > START - 900
    assert 0 <= board["status"]["storage"]["used_pct"] <= 95
    assert unknown[0] == 404 and wrong_path[0] == 404


def test_the_same_seed_serves_the_same_values_and_another_seed_others() -> None:
    async def bodies(seed: int) -> list[bytes]:
        async with simulator(seed=seed) as sim:
            return [(await get(sim, host))[1] for host in ("127.1.0.2", "127.1.0.3", "127.1.0.10")]

    assert run(bodies(7)) == run(bodies(7))
    assert run(bodies(7)) != run(bodies(8))


def test_uplink_down_makes_only_that_communes_devices_unreachable() -> None:
    async def scenario() -> tuple[Any, ...]:
        async with simulator(scenarios=["uplink-down:06613"]) as sim:
            started = time.monotonic()
            with pytest.raises(TimeoutError):  # the kernel drops the SYN: a connect timeout
                await get(sim, "127.1.0.2", within=0.5)
            waited = time.monotonic() - started
            other = await get(sim, "127.1.0.10")
            assert sim.push is None and sim.mqtt is None
            silent = [sim.state(code).reachable for code in ("06613-CL04", "06613-CL05", "06613-ST", "06700-ST")]
            return waited, other[0], silent

    waited, other_status, reachable = run(scenario())
    assert waited >= 0.45
    assert other_status == 200
    assert reachable == [False, False, False, True]


def test_uplink_down_in_refused_mode_resets_connections() -> None:
    async def scenario() -> None:
        async with simulator(scenarios=["uplink-down:06613:mode=refused"]) as sim:
            with pytest.raises(aiohttp.ClientOSError):
                await get(sim, "127.1.0.3")
            assert (await get(sim, "127.1.0.10"))[0] == 200

    run(scenario())


def test_garbage_variants_over_http() -> None:
    async def scenario() -> dict[str, bytes]:
        async with simulator() as sim:
            found = {}
            for variant in ("malformed_json", "wrong_types", "not_json", "huge_body"):
                sim.inject("06613-CL01", FaultKind.GARBAGE, variant=variant)
                found[variant] = (await get(sim, "127.1.0.2", within=10))[1]
            sim.clear("06613-CL01")
            found["after"] = (await get(sim, "127.1.0.2"))[1]
            return found

    found = run(scenario())
    with pytest.raises(ValueError):
        json.loads(found["malformed_json"])
    wrong = json.loads(found["wrong_types"])
    assert isinstance(wrong["uptime"], str) and isinstance(wrong["power"]["battery"], str)
    with pytest.raises(ValueError):
        json.loads(found["not_json"])
    assert len(found["huge_body"]) == 10 * 1024 * 1024
    assert json.loads(found["after"])["device_id"] == "06613-CL01"


def test_a_reboot_resets_the_uptime() -> None:
    clock = ManualClock(START)

    async def scenario() -> list[int]:
        async with simulator(clock=clock) as sim:
            before = json.loads((await get(sim, "127.1.0.2"))[1])["uptime"]
            sim.inject("06613-CL01", FaultKind.REBOOT)
            at_boot = json.loads((await get(sim, "127.1.0.2"))[1])["uptime"]
            clock.advance(30)
            later = json.loads((await get(sim, "127.1.0.2"))[1])["uptime"]
            return [before, at_boot, later]

    before, at_boot, later = run(scenario())
    assert before > 3600 and at_boot == 0 and later == 30


def test_a_slow_device_answers_only_after_its_delay() -> None:
    async def scenario() -> tuple[float, bool]:
        async with simulator() as sim:
            sim.inject("06613-BB1", FaultKind.SLOW, delay_s=0.6)
            started = time.monotonic()
            status, _ = await get(sim, "127.1.0.3", within=3)
            elapsed = time.monotonic() - started
            assert status == 200
            try:
                await get(sim, "127.1.0.3", within=0.3)  # a collector with a shorter timeout gives up
            except TimeoutError:
                return elapsed, True
            return elapsed, False

    elapsed, timed_out = run(scenario())
    assert elapsed >= 0.6 and timed_out


def test_a_district_power_cut_drains_batteries_then_the_devices_go_dark() -> None:
    clock = ManualClock(START)

    async def scenario() -> None:
        async with simulator(clock=clock, scenarios=["power-cut:181"]) as sim:
            body = json.loads((await get(sim, "127.1.0.10"))[1])
            assert body["power"]["source"] == "BAT" and body["power"]["battery"] == 100
            assert json.loads((await get(sim, "127.1.0.2"))[1])["power"]["source"] == "AC"  # district 180
            clock.advance(3600)
            assert json.loads((await get(sim, "127.1.0.10"))[1])["power"]["battery"] < 100
            clock.advance(11 * 3600)  # every battery lasts 4-10 h
            sim.tick()
            with pytest.raises(TimeoutError):
                await get(sim, "127.1.0.10", within=0.5)
            assert not sim.state("06700-ST").reachable
            sim.clear("06700-CL01")  # mains back: it boots
            sim.tick()
            back = json.loads((await get(sim, "127.1.0.10"))[1])
            assert back["uptime"] == 0 and back["power"]["source"] == "AC"

    run(scenario())


# --- scenarios ------------------------------------------------------------------------------------


def test_a_flapping_device_alternates_every_period() -> None:
    clock = ManualClock(START)
    fleet = Fleet(sample_devices(), seed=1, clock=clock)
    timeline = Timeline()
    parse_scenario("flapping:06613-CL01:period=30s").schedule(ScenarioContext(fleet, timeline, 1, START))
    seen = []
    for _ in range(5):
        timeline.run_due(clock())
        seen.append(fleet.snapshot("06613-CL01").reachable)
        clock.advance(30)
    assert seen == [False, True, False, True, False]


def _random_fault_log(seed: int) -> list[tuple[float, str, str]]:
    clock = ManualClock(START)
    fleet = Fleet(sample_devices(), seed=seed, clock=clock)
    log: list[tuple[float, str, str]] = []
    fleet.add_listener(lambda device, fault, raised, at: raised and log.append((at, device.code, fault.kind.value)))
    timeline = Timeline()
    parse_scenario("random-faults:per_day=6").schedule(ScenarioContext(fleet, timeline, seed, START))
    for _ in range(24 * 6):
        clock.advance(600)
        timeline.run_due(clock())
    return log


def test_random_faults_are_deterministic_by_seed_and_fit_each_device_kind() -> None:
    first, again, other = _random_fault_log(3), _random_fault_log(3), _random_fault_log(4)
    assert first == again and first != other
    assert len(first) > 10
    kinds = {device.code: device.kind for device in sample_devices()}
    for _, code, fault in first:
        assert FaultKind(fault) in NATURAL_FAULTS_BY_KIND[kinds[code]]
    boards = {fault for _, code, fault in first if kinds[code] == "bulletin_board"}
    assert not boards & {"amplifier_fault", "speaker_line_fault", "door_open"}


def test_scenario_specs_and_durations_are_parsed_or_refused_clearly() -> None:
    assert parse_scenario("uplink-down:06613:after=5m:for=1h").spec == "uplink-down:06613:after=5m:for=1h"
    assert parse_duration("10m") == 600 and parse_duration("90") == 90 and parse_duration("2h") == 7200
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_scenario("earthquake")
    with pytest.raises(ValueError, match="unknown option"):
        parse_scenario("slow:X:speed=3")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    fleet = Fleet(sample_devices(), seed=1, clock=ManualClock(START))
    with pytest.raises(ValueError, match="no device in commune"):
        parse_scenario("uplink-down:99999").schedule(ScenarioContext(fleet, Timeline(), 1, START))


def test_faults_a_device_cannot_show_are_refused() -> None:
    fleet = Fleet(sample_devices(), seed=1, clock=ManualClock(START))
    with pytest.raises(ValueError, match="does not apply"):
        fleet.inject("06613-CL01", FaultKind.SCREEN_OFF)
    fault = fleet.inject("06613-BB1", FaultKind.CONTENT_STALE, for_s=60)
    assert fleet.snapshot("06613-BB1").content_updated_at <= START - 2 * 3600
    fleet.clock.advance(61)  # type: ignore[attr-defined]
    assert fleet.snapshot("06613-BB1").faults == () and fault.until == START + 60


# --- control API and CLI --------------------------------------------------------------------------


def test_the_control_api_injects_clears_and_shows_faults() -> None:
    async def scenario() -> None:
        async with simulator() as sim, aiohttp.ClientSession() as session:
            url = sim.control_url
            async with session.post(
                f"{url}/inject", json={"device": "06613-CL01", "fault": "door_open", "for_s": None}
            ) as r:
                assert r.status == 200
                assert (await r.json())["device"]["state"]["door"] == "open"
            assert json.loads((await get(sim, "127.1.0.2"))[1])["door"] == "open"
            async with session.get(f"{url}/devices/06613-CL01") as r:
                assert (await r.json())["state"]["faults"] == ["door_open"]
            async with session.post(f"{url}/clear", json={"device": "06613-CL01"}) as r:
                assert [f["kind"] for f in (await r.json())["cleared"]] == ["door_open"]
            assert json.loads((await get(sim, "127.1.0.2"))[1])["door"] == "closed"
            async with session.post(f"{url}/inject", json={"device": "NOPE", "fault": "offline"}) as r:
                assert r.status == 404
            async with session.post(f"{url}/inject", json={"device": "06613-CL01", "fault": "meltdown"}) as r:
                assert r.status == 400 and "unknown fault kind" in (await r.json())["error"]
            async with session.post(f"{url}/inject", json={"device": "06613-CL01", "fault": "screen_off"}) as r:
                assert r.status == 422
            async with session.get(f"{url}/devices/NOPE") as r:
                assert r.status == 404

    run(scenario())


@pytest.fixture
def running_simulator(tmp_path: Path) -> Iterator[Simulator]:
    """A simulator running in a thread of its own (the CLI under test blocks its caller), data dir tmp/data."""
    loop = asyncio.new_event_loop()
    sim = Simulator(
        sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, data_dir=tmp_path / "data", hold_unreachable_s=2
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(20)
    try:
        yield sim
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_the_cli_finds_the_running_fleet_through_the_data_dir(
    running_simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "data"))
    state_file = json.loads((tmp_path / "data" / "simulator.json").read_text())
    assert state_file["pid"] == os.getpid() and state_file["control_url"] == running_simulator.control_url
    runner = CliRunner()
    result = runner.invoke(
        simulate_app, ["inject", "--device", "06613-CL02", "--fault", "amplifier_fault", "--for", "10m"]
    )
    assert result.exit_code == 0, result.output
    assert "injected amplifier_fault into 06613-CL02 for 600 s" in result.output
    assert running_simulator.state("06613-CL02").amplifier == "FAIL"
    shown = runner.invoke(simulate_app, ["show", "--device", "06613-CL02"])
    assert json.loads(shown.output)["state"]["faults"] == ["amplifier_fault"]
    result = runner.invoke(simulate_app, ["clear", "--device", "06613-CL02"])
    assert result.exit_code == 0 and "cleared amplifier_fault on 06613-CL02" in result.output
    assert running_simulator.state("06613-CL02").faults == ()
    result = runner.invoke(simulate_app, ["inject", "--device", "06613-CL02", "--fault", "meltdown"])
    assert result.exit_code == 2 and "unknown fault kind" in result.output
    result = runner.invoke(simulate_app, ["inject", "--device", "NOPE", "--fault", "offline"])
    assert result.exit_code == 1 and "no simulated device 'NOPE'" in result.output
    url = running_simulator.control_url
    result = runner.invoke(simulate_app, ["clear", "--device", "06613-CL02", "--control", str(url)])
    assert result.exit_code == 0


def test_the_cli_says_clearly_when_no_simulator_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(simulate_app, ["inject", "--device", "X", "--fault", "offline"])
    assert result.exit_code == 1 and "no running simulator found" in result.output
    result = CliRunner().invoke(simulate_app, ["clear", "--device", "X", "--control", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "no simulator answers at http://127.0.0.1:9" in result.output


# --- life cycle and inventory ---------------------------------------------------------------------


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the descriptor listdir itself used
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_stop_closes_every_socket_and_removes_the_state_file(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int, bool]:
        before = _open_sockets()
        sim = simulator(data_dir=tmp_path, trap_target=("127.0.0.1", 9))
        await sim.start()
        during = _open_sockets()
        assert (tmp_path / "simulator.json").exists()
        await get(sim, "127.1.0.2")
        await sim.stop()
        await sim.stop()  # idempotent
        await asyncio.sleep(0.05)
        return before, during, _open_sockets(), (tmp_path / "simulator.json").exists()

    before, during, after, file_left = run(scenario())
    assert during >= before + 4  # HTTP, SNMP v2c, SNMPv3, control
    assert after == before and not file_left


def test_the_fleet_is_read_from_the_inventory_database(sqlite_settings: Settings) -> None:
    from monitor.db import make_engine, session_scope
    from monitor.inventory.demo import seed_demo
    from monitor.simulator.source import devices_from_inventory

    engine = make_engine(sqlite_settings)
    with session_scope(engine) as session:
        result = seed_demo(session=session, seed=1)
    engine.dispose()
    devices = devices_from_inventory(sqlite_settings)
    assert len(devices) == result.created
    fleet = Fleet(devices, seed=1, clock=ManualClock(START))
    cluster = next(d for d in devices if d.code.endswith("-CL01"))
    assert cluster.parent_code == f"{cluster.commune_code}-ST" and cluster.district_code
    assert len(fleet.http_by_host) + len(fleet.snmp_by_host) + len(fleet.snmpv3_by_host) == sum(
        d.protocol in ("http", "snmp") for d in devices
    )
    assert fleet.snmpv3_by_host and all(d.port == 16162 for d in fleet.snmpv3_by_host.values())


def test_a_scenario_on_an_unknown_target_refuses_to_start() -> None:
    async def scenario() -> None:
        sim = simulator(scenarios=["power-cut:999"])
        with pytest.raises(ValueError, match="no device in district"):
            await sim.start()
        assert sim.http_port is None and sim.control_url is None

    run(scenario())


def test_the_syn_filter_takes_thousands_of_addresses_and_drops_only_those() -> None:
    import socket

    from monitor.simulator.synfilter import MAX_FILTERED_ADDRESSES, SynFilter

    blocked = [f"127.2.{n // 250}.{n % 250 + 1}" for n in range(MAX_FILTERED_ADDRESSES + 50)]
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        assert SynFilter(listener).update(blocked)
        for host, reachable in ((blocked[0], False), (blocked[1999], False), ("127.2.100.1", True)):
            with socket.socket() as client:
                client.settimeout(0.3)
                try:
                    client.connect((host, port))
                    connected = True
                except TimeoutError:
                    connected = False
            assert connected is reachable, host


def _an_address_of_this_machine_outside_loopback() -> str | None:
    """The address this machine would send from to reach the Internet (no packet is sent), if it has one."""
    import socket

    candidates = []
    for target in ("198.51.100.1", "10.255.255.1"):  # TEST-NET-2, a private address: only a route is looked up
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
            probe.connect((target, 9))
            candidates.append(str(probe.getsockname()[0]))
    with contextlib.suppress(OSError):
        candidates += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    return next((address for address in candidates if not address.startswith(("127.", "0."))), None)


@pytest.mark.parametrize("host", ["loopback", "0.0.0.0"])
def test_the_simulator_keeps_to_loopback_unless_told_otherwise(host: str) -> None:
    """By default HTTP and SNMP answer every 127.x.y.z and nothing else, though bound to the wildcard address:
    a connection to another address of the machine times out, a datagram to it never reaches the agent."""
    import socket

    outside = _an_address_of_this_machine_outside_loopback()
    if outside is None:
        pytest.skip("this machine has no address outside loopback to try")
    # a v2c GET of sysUpTime for community "public", as any manager sends it
    request = bytes.fromhex("302602010104067075626c6963a019020101020100020100300e300c06082b060102010103000500")

    def connects(address: str, port: int) -> bool:
        with socket.socket() as client:
            client.settimeout(0.5)
            try:
                client.connect((address, port))
            except (TimeoutError, ConnectionRefusedError):
                return False
            return True

    def answered(address: str, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(0.5)
            client.sendto(request, (address, port))
            try:
                client.recvfrom(2048)
            except TimeoutError:
                return False
            return True

    async def scenario() -> None:
        sim = simulator(host=host)
        await sim.start()
        try:
            assert sim.http is not None and sim.snmp is not None
            assert await asyncio.to_thread(connects, "127.1.0.2", sim.http.port)
            assert await asyncio.to_thread(answered, "127.1.0.5", sim.snmp.port)
            assert await asyncio.to_thread(connects, outside, sim.http.port) is (host == "0.0.0.0")
            seen = sum(sim.snmp.stats.values())
            await asyncio.to_thread(answered, outside, sim.snmp.port)
            await asyncio.sleep(0.1)
            reached = sum(sim.snmp.stats.values()) > seen  # the agent itself refuses peers outside 127/8
            assert reached is (host == "0.0.0.0")
        finally:
            await sim.stop()

    run(scenario())
