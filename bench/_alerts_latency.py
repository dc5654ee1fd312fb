"""From a device going dark to its ticket, by three ways, for `bench_alerts.py`.

    virtual = dark_to_ticket_virtual(folder, timing)       # the service's path on a virtual clock
    ours, prom = run_realtime(folder, timing)              # both real paths at once, same t0, real time

1. **Ours, virtual**: Huyện Cao Lộc's demo fleet in a fresh SQLite database, every device up; one radio cluster
   goes dark at t0 just after a successful poll; its failed polls arrive at t0 + 15, 30, 45 s (the default
   three confirmations); the dispatcher (default rules: group_wait 60 s) runs every 2 s from t0, its clock
   advancing by each cycle's wall time and the pause. Latency: the ticket's `created_at` - t0.
2. **Ours, real time**: the service's `Collector` polling one simulated cluster (`monitor.simulator.Simulator`,
   HTTP on an ephemeral loopback port, interval 15 s, HTTP timeout 5 s, three confirmations) and
   `runtime.dispatch_forever` (every 2 s, group_wait 60 s). At t0 the simulator takes the device offline
   (new connections dropped: each poll times out).
3. **Prometheus -> Alertmanager -> the receiver, real time** (`_alerts_prometheus.py`): the web app
   (`create_app` under uvicorn in a thread) exporting `/metrics` for the same demo fleet, every device up;
   Debian's Prometheus scraping it every 15 s with `fleet_device_up == 0` for 1m (evaluated every 15 s);
   Debian's Alertmanager (group_wait 30 s, group_interval 30 s) posting to POST
   /api/v1/integrations/alertmanager with the bearer token. At t0 the device's health is written down
   (`HealthStore.apply` of one failed observation, failures_to_down=1), so the next `/metrics` shows
   `fleet_device_up 0`. Latency: the Alertmanager ticket's `created_at` - t0.

2 and 3 run side by side from the same t0 (both are mostly waiting). `Timing.scaled(15)` divides every
interval by 15 for `--quick`.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from _alerts_prometheus import PrometheusPath
from _alerts_setup import (
    DISTRICT,
    T0,
    PathFigures,
    Timing,
    all_up,
    demo_district,
    migrated_sqlite,
    seconds_after,
    ticket_of,
    watched_cluster,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.dispatcher import Dispatcher
from monitor.alerts.models import AlertProblem
from monitor.alerts.rules import AlertRules
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.db import session_scope, utcnow
from monitor.health.machine import HealthPolicy, Observation
from monitor.health.models import StateChange
from monitor.health.store import HealthStore
from monitor.inventory.choices import DeviceKind, Protocol
from monitor.inventory.fleetfile import FleetRow
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from monitor.runtime import dispatch_forever
from monitor.simulator import Simulator
from monitor.simulator.source import devices_from_inventory
from monitor.tickets.models import Ticket
from tests.peers import free_port


def _our_milestones(engine: Engine, device: Device, t0: datetime) -> dict[str, float | None]:
    """Down committed, problem pending, problem active: seconds after t0."""
    with Session(engine) as session:
        down = session.exec(
            select(StateChange)
            .where(StateChange.device_id == device.id, StateChange.new_state == "down")
            .order_by(col(StateChange.id))
        ).first()
        problem = session.exec(
            select(AlertProblem).where(AlertProblem.device_id == device.id).order_by(col(AlertProblem.id))
        ).first()
    return {
        "down": seconds_after(down.created_at if down else None, t0),
        "problem": seconds_after(problem.started_at if problem else None, t0),
        "active": seconds_after(problem.activated_at if problem else None, t0),
    }


# --- 1. ours, on a virtual clock ------------------------------------------------------------------


def dark_to_ticket_virtual(folder: Path, timing: Timing) -> PathFigures:
    """Path 1 of the module docstring."""
    _, engine = migrated_sqlite(folder / "virtual.db")
    figures = PathFigures("ours (virtual clock)")
    try:
        devices = demo_district(engine)
        device = watched_cluster(devices)
        all_up(engine, devices, T0 - timedelta(minutes=10))
        rules = AlertRules(group_wait=timedelta(seconds=timing.group_wait_s))
        dispatcher = Dispatcher(engine, rules=rules, name="virtual")
        dispatcher.run_once(T0 - timedelta(minutes=10))
        store = HealthStore(engine, HealthPolicy(failures_to_down=timing.failures))
        polls = [T0 + timedelta(seconds=timing.poll_s * n) for n in range(1, timing.failures + 1)]
        now, ticket = T0, None
        while ticket is None and now < T0 + timedelta(minutes=10):
            while polls and polls[0] <= now:  # the collector's flush of the poll that failed
                at = polls.pop(0)
                store.apply([Observation(device.id or 0, at, "http", False, error="timeout: no answer")], at)
            started = time.perf_counter()
            report = dispatcher.run_once(now)
            if report.tickets:
                ticket = ticket_of(engine, device.code, "auto")
            now += timedelta(seconds=time.perf_counter() - started + timing.dispatch_every_s)
        figures.milestones = _our_milestones(engine, device, T0)
        if ticket is not None:
            figures.ticket, figures.ticket_s = ticket.code, seconds_after(ticket.created_at, T0)
    finally:
        engine.dispose()
    return figures


# --- 2. ours, in real time --------------------------------------------------------------------------


class OurPath:
    """One simulated HTTP cluster, the real collector polling it, the dispatcher every 2 s."""

    def __init__(self, folder: Path, timing: Timing) -> None:
        self.timing = timing
        self.port = free_port()
        self.settings, self.engine = migrated_sqlite(
            folder / "ours.db", http_timeout_s=timing.http_timeout_s, failures_to_down=timing.failures
        )
        with session_scope(self.engine) as session:
            init_province(session, load_units("lang-son", "2020"))
            commune = session.exec(select(Commune).where(Commune.district_code == DISTRICT)).first()
            assert commune is not None
            row = FleetRow(
                line=2,
                code=f"{commune.code}-CL01",
                name=f"Cụm loa số 1 {commune.name}",
                kind=DeviceKind.RADIO_CLUSTER,
                commune_code=commune.code,
                parent_code=None,
                protocol=Protocol.HTTP,
                address=f"http://127.0.0.1:{self.port}/status",
                port=None,
                profile="vietloa-ip200-http",
                interval_s=max(1, round(timing.poll_s)),
                lat=commune.lat,
                lon=commune.lon,
                installed_on=date(2024, 6, 1),
                vendor="VietLoa",
                model="IP-200",
            )
            apply_fleet_rows([row], session=session)
        with Session(self.engine) as session:
            self.device = session.exec(select(Device)).one()
        self.simulator: Simulator | None = None
        self.collector: Collector | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """The simulator on 127.0.0.1 only, the collector, the dispatcher; returns when the device is up."""
        self.simulator = Simulator(
            await asyncio.to_thread(devices_from_inventory, self.settings),
            host="127.0.0.1",
            http_port=self.port,
            snmp_port=0,
            snmp_v3_port=0,
            control_port=0,
        )
        await self.simulator.start()
        self.collector = Collector(
            self.settings, self.engine, registry=load_profiles(), refresh_s=3600, flush_s=self.timing.flush_s
        )
        await self.collector.start()
        rules = AlertRules(group_wait=timedelta(seconds=self.timing.group_wait_s))
        dispatcher = Dispatcher(self.engine, rules=rules, name="ours")
        self.tasks.append(asyncio.create_task(dispatch_forever(dispatcher, self.timing.dispatch_every_s)))
        deadline = time.monotonic() + 3 * self.timing.poll_s + 10
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._state) == "up":
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the simulated device {self.device.code} never came up")

    def _state(self) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.text("SELECT state FROM device_health")).scalar()

    def go_dark(self) -> None:
        """The device stops answering (new connections dropped by the simulator)."""
        assert self.simulator is not None
        self.simulator.inject(self.device.code, "offline")

    def ticket(self) -> Ticket | None:
        """The device's ticket, once the dispatcher opened it."""
        return ticket_of(self.engine, self.device.code, "auto")

    def milestones(self, t0: datetime) -> dict[str, float | None]:
        """Down committed, problem pending, problem active: seconds after t0."""
        return _our_milestones(self.engine, self.device, t0)

    async def stop(self) -> None:
        """Everything started, in reverse."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.collector is not None:
            await self.collector.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        self.engine.dispose()


# --- 2 and 3 side by side ---------------------------------------------------------------------------


async def _race(ours: OurPath, prom: PrometheusPath, timing: Timing) -> tuple[PathFigures, PathFigures]:
    our_figures = PathFigures("ours (real collector + simulator)")
    prom_figures = PathFigures("Prometheus -> Alertmanager -> receiver")
    try:
        await ours.start()
        t0 = utcnow()
        ours.go_dark()
        await asyncio.to_thread(prom.go_dark, t0)
        deadline = time.monotonic() + 2 * max(timing.prometheus_range_s()[1], timing.ours_range_s()[1]) + 10
        our_ticket: Ticket | None = None
        prom_ticket: Ticket | None = None
        while time.monotonic() < deadline and (our_ticket is None or prom_ticket is None):
            await asyncio.sleep(0.25)
            our_ticket = our_ticket or await asyncio.to_thread(ours.ticket)
            prom_ticket = prom_ticket or await asyncio.to_thread(prom.ticket)
        our_figures.milestones = await asyncio.to_thread(ours.milestones, t0)
        with suppress(httpx.HTTPError, KeyError, ValueError):
            prom_figures.milestones = await asyncio.to_thread(prom.milestones, t0)
        for figures, ticket in ((our_figures, our_ticket), (prom_figures, prom_ticket)):
            if ticket is None:
                figures.error = "no ticket before the deadline"
            else:
                figures.ticket, figures.ticket_s = ticket.code, seconds_after(ticket.created_at, t0)
    finally:
        await ours.stop()
    return our_figures, prom_figures


def run_realtime(folder: Path, timing: Timing) -> tuple[PathFigures, PathFigures]:
    """Paths 2 and 3 of the module docstring, side by side from the same t0."""
    (folder / "prometheus").mkdir(parents=True, exist_ok=True)
    (folder / "ours").mkdir(parents=True, exist_ok=True)
    prom = PrometheusPath(folder / "prometheus", timing)
    try:
        prom.start()
        ours = OurPath(folder / "ours", timing)
        return asyncio.run(_race(ours, prom, timing))
    finally:
        prom.stop()
