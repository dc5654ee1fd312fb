"""Collector against the simulated fleet over real sockets: devices come up, faults appear and clear,
an injected outage takes a device down only after the confirmation count, and comes back."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings
from monitor.db import session_scope
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.choices import Protocol
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.fleetfile import FleetRow
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.simulator import Simulator
from monitor.simulator.source import devices_from_inventory
from tests.peers import free_port


def _polled_fleet(engine: Engine, http_port: int, snmp_port: int) -> list[str]:
    """Two communes of the demo fleet, polled devices only, on this test's own ports."""
    with session_scope(engine) as session:
        communes = list(session.exec(select(Commune).where(col(Commune.code).in_(["06613", "06616"]))))
        rows = []
        for row in generate_demo_rows(communes, seed=5, today=date(2026, 1, 1)):
            if row.protocol is Protocol.HTTP:
                rows.append(_with(row, address=row.address.replace(":18080/", f":{http_port}/")))
            elif row.protocol is Protocol.SNMP and row.port == 16161:
                rows.append(_with(row, port=snmp_port))
        apply_fleet_rows(rows, session=session)
        return [r.code for r in rows]


def _simulated(settings: Settings, engine: Engine, http_port: int, snmp_port: int) -> tuple[Simulator, Collector]:
    """The simulator serving the fleet of `_polled_fleet` on its ports, and a collector of it (started by the test,
    which refreshes and flushes by hand)."""
    simulator = Simulator(
        devices_from_inventory(settings),
        seed=5,
        http_port=http_port,
        snmp_port=snmp_port,
        snmp_v3_port=0,
        control_port=0,
    )
    return simulator, Collector(settings, engine, registry=load_profiles(), refresh_s=3600, flush_s=3600)


def _with(row: FleetRow, **changes: object) -> FleetRow:
    from dataclasses import replace

    return replace(row, **changes)  # type: ignore[arg-type]


def states(engine: Engine) -> dict[str, tuple[str, list[str]]]:
    with Session(engine) as session:
        rows = session.exec(select(Device.code, DeviceHealthRow.state, DeviceHealthRow.faults).join(DeviceHealthRow))
        return {code: (state, faults) for code, state, faults in rows}


def test_the_collector_hears_the_simulated_fleet_and_confirms_before_declaring(
    province: Engine, collector_settings: Settings
) -> None:
    http_port, snmp_port = free_port(), free_port()
    codes = _polled_fleet(province, http_port, snmp_port)
    assert len(codes) >= 4

    async def scenario() -> None:
        simulator, collector = _simulated(collector_settings, province, http_port, snmp_port)

        async def sweep() -> dict[str, tuple[str, list[str]]]:
            await collector.scheduler.poll_all_now()
            await collector.flush()
            return states(province)

        await simulator.start()
        await collector.start()
        try:
            first = await sweep()
            assert set(first) == set(codes)
            assert all(state in ("up", "degraded") for state, _ in first.values()), errors(province)

            cluster = next(c for c in codes if "-CL" in c)
            station = next(c for c in codes if c.endswith("-ST"))
            simulator.clear(cluster)
            simulator.clear(station)
            simulator.inject(cluster, "amplifier_fault")
            simulator.inject(station, "offline")
            after_one = await sweep()
            assert after_one[cluster] == ("degraded", ["amplifier_fault"])
            assert after_one[station][0] == "up", "one failed poll is not an outage"
            assert (await sweep())[station][0] == "up"
            assert (await sweep())[station] == ("down", ["offline"])

            simulator.clear(station)
            simulator.clear(cluster)
            assert (await sweep())[station][0] == "down", "one success is not a recovery"
            recovered = await sweep()
            assert recovered[station] == ("up", []) and recovered[cluster] == ("up", [])
        finally:
            await collector.stop()
            await simulator.stop()

    asyncio.run(scenario())
    with Session(province) as session:
        device_ids = {d.code: d.id for d in session.exec(select(Device))}
        station_changes = [
            (c.old_state, c.new_state)
            for c in session.exec(select(StateChange).order_by(col(StateChange.id)))
            if c.device_id == device_ids[next(c for c in codes if c.endswith("-ST"))]
        ]
    assert station_changes[-2:] == [("up", "down"), ("down", "up")]


def test_when_every_device_fails_at_once_the_collector_blames_its_own_network(
    province: Engine, collector_settings: Settings
) -> None:
    http_port, snmp_port = free_port(), free_port()
    codes = _polled_fleet(province, http_port, snmp_port)

    async def scenario() -> tuple[bool, dict[str, tuple[str, list[str]]]]:
        # No simulator at all: every poll fails, as when the collector's uplink is cut.
        collector = Collector(collector_settings, province, registry=load_profiles(), refresh_s=3600, flush_s=3600)
        collector.guard.minimum_attempted = len(codes)
        await collector.start()
        try:
            for _ in range(4):
                await collector.scheduler.poll_all_now()
                await collector.flush()
            return collector.guard.blind, states(province)
        finally:
            await collector.stop()

    blind, seen = asyncio.run(scenario())
    assert blind
    assert all(state != "down" for state, _ in seen.values()), "the fleet is not declared down"


def errors(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        rows = session.exec(select(Device.code, DeviceHealthRow.last_error).join(DeviceHealthRow))
        return dict(rows.all())


def test_a_device_that_goes_dark_gets_one_ticket_that_resolves_and_reopens_within_a_day(
    province: Engine, collector_settings: Settings
) -> None:
    """The whole chain over real sockets: simulator -> collector -> health -> dispatcher -> ticket."""
    from datetime import timedelta

    from monitor.alerts.dispatcher import Dispatcher
    from monitor.alerts.rules import AlertRules
    from monitor.tickets.models import Ticket

    http_port, snmp_port = free_port(), free_port()
    codes = _polled_fleet(province, http_port, snmp_port)
    cluster = next(c for c in codes if "-CL" in c)
    dispatcher = Dispatcher(province, rules=AlertRules(group_wait=timedelta(0)))

    def tickets() -> list[tuple[str, str]]:
        with Session(province) as session:
            return [(t.problem_key, t.status) for t in session.exec(select(Ticket).order_by(col(Ticket.id)))]

    async def scenario() -> None:
        simulator, collector = _simulated(collector_settings, province, http_port, snmp_port)

        async def sweeps(n: int) -> None:
            for _ in range(n):
                await collector.scheduler.poll_all_now()
                await collector.flush()
                await asyncio.to_thread(dispatcher.run_once)

        await simulator.start()
        await collector.start()
        try:
            for code in codes:
                simulator.clear(code)
            await sweeps(1)
            simulator.inject(cluster, "offline")
            await sweeps(3)
            assert tickets() == [(f"device:{cluster}:offline", "new")]
            await sweeps(2)
            assert len(tickets()) == 1, "exactly one ticket, however long it stays down"
            simulator.clear(cluster)
            await sweeps(2)
            assert tickets() == [(f"device:{cluster}:offline", "resolved")]
            simulator.inject(cluster, "offline")
            await sweeps(3)
            assert tickets() == [(f"device:{cluster}:offline", "reopened")]
        finally:
            await collector.stop()
            await simulator.stop()

    asyncio.run(scenario())
