"""A running service for tests that need one from outside, like a real Prometheus scraping it.

    python -m tests.live_fleet FOLDER      # until SIGTERM; writes FOLDER/ports.json when ready

What `monitor demo` runs, as production runs it (separate web and collector metrics), on free loopback ports:
a SQLite database with the demo fleet (seed 1), the simulated fleet (HTTP, SNMP v2c/v3, MQTT through an
embedded broker, HTTP heartbeats to the web app), the collector with its own metrics server, and the web app
(with `/metrics`). Before saying it is ready it injects faults (a few devices offline, some with an amplifier
fault, all in Cao Lộc, district 183, and a few elsewhere), sweeps the whole fleet three times so that they are
judged down or degraded, adds one device nobody hears (unknown), and writes some tickets, open and resolved.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from sqlmodel import col, select

from monitor.collectors.mqtt import EmbeddedBroker
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade, utcnow
from monitor.inventory.demo import seed_demo
from monitor.inventory.models import Commune, Device
from monitor.metrics import MetricsServer, collector_exporter
from monitor.simulator import Simulator
from monitor.simulator.source import devices_from_inventory
from monitor.tickets.models import Ticket
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.peers import free_port

FAULTED_DISTRICT = "183"
UNKNOWN_DEVICE = "TEST-NEVER-HEARD"
METRICS_TOKEN = "metrics-token-for-the-live-fleet"  # Prometheus scrapes with it, as deployed


def ticket(number: int, **values: Any) -> dict[str, Any]:
    """A ticket row with every required column (the tickets service is not what is tested with it); every row
    has the same keys, as an executemany insert takes its columns from the first row."""
    created = values.pop("created_at", utcnow() - timedelta(hours=2))
    row = {
        "code": f"LS-2026-{number:06d}",
        "title": "Mất kết nối",
        "problem_key": f"device:T{number}:offline",
        "scope": "device",
        "scope_code": f"T{number}",
        "kind": "offline",
        "district_code": "183",
        "priority": "P2",
        "source": "auto",
        "status": "new",
        "details": {},
        "created_at": created,
        "sla_started_at": created,
        "resolve_due_at": created + timedelta(hours=8),
        "sla_breached": False,
        "resolved_at": None,
        "updated_at": created,
    }
    return row | values


def _prepare(folder: Path, ports: dict[str, int]) -> tuple[Any, Any]:
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'monitor.db'}",
        secret_key=TEST_SECRET,
        metrics_token=METRICS_TOKEN,
        data_dir=folder,
        http_timeout_s=2.0,
        snmp_timeout_s=1.0,
    )
    engine = make_engine(settings)
    upgrade(engine)
    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
    devices = Device.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            sa.update(devices)
            .where(devices.c.protocol == "http")
            .values(address=sa.func.replace(devices.c.address, ":18080/", f":{ports['http']}/"))
        )
        connection.execute(sa.update(devices).where(devices.c.port == 16161).values(port=ports["snmp"]))
        connection.execute(sa.update(devices).where(devices.c.port == 16162).values(port=ports["snmp_v3"]))
        now = utcnow()
        connection.execute(
            Ticket.__table__.insert(),  # type: ignore[attr-defined]
            [
                ticket(1),
                ticket(2, status="in_progress", sla_breached=True, created_at=now - timedelta(days=2)),
                ticket(3, status="waiting", priority="P1", district_code="189", created_at=now - timedelta(days=9)),
                ticket(4, status="resolved", resolved_at=now - timedelta(days=1), created_at=now - timedelta(days=2)),
                ticket(
                    5,
                    status="closed",
                    sla_breached=True,
                    resolved_at=now - timedelta(days=3),
                    created_at=now - timedelta(days=5),
                ),
                ticket(
                    6,
                    status="resolved",
                    district_code="189",
                    resolved_at=now - timedelta(hours=3),
                    created_at=now - timedelta(hours=9),
                ),
            ],
        )
    return settings, engine


def _faulted(engine: Any) -> tuple[list[str], list[str]]:
    """Polled devices to take offline, and radio clusters to give an amplifier fault."""
    with session_scope(engine) as session:
        communes = set(session.exec(select(Commune.code).where(Commune.district_code == FAULTED_DISTRICT)))
        polled = list(
            session.exec(select(Device).where(col(Device.protocol).in_(["http", "snmp"])).order_by(col(Device.code)))
        )
    local = [d for d in polled if d.commune_code in communes]
    offline = [d.code for d in local[:6]] + [d.code for d in polled if d.commune_code not in communes][:4]
    clusters = [d.code for d in local[6:] if d.kind == "radio_cluster"][:4]
    return offline, clusters


def _add_unknown_device(engine: Any) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        commune = session.exec(select(Commune.code).where(Commune.district_code == FAULTED_DISTRICT)).first()
        assert commune is not None
        session.add(
            Device(
                code=UNKNOWN_DEVICE,
                name="Thiết bị chưa từng báo",
                kind="bulletin_board",
                commune_code=commune,
                profile="saobac-board-heartbeat",
                protocol="heartbeat",
                interval_s=3600,
                created_at=now,
                updated_at=now,
            )
        )


async def run(folder: Path) -> None:
    ports = {name: free_port() for name in ("http", "snmp", "snmp_v3", "mqtt", "web", "collector")}
    settings, engine = await asyncio.to_thread(_prepare, folder, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    broker = EmbeddedBroker(port=ports["mqtt"])
    await broker.start()
    simulator = Simulator(
        await asyncio.to_thread(devices_from_inventory, settings),
        seed=1,  # binds 0.0.0.0 to answer every 127.1.x.y device address; traffic stays on loopback
        http_port=ports["http"],
        snmp_port=ports["snmp"],
        snmp_v3_port=ports["snmp_v3"],
        mqtt_url=broker.url,
        service_url=f"http://127.0.0.1:{ports['web']}",
        control_port=0,
        data_dir=folder,
    )
    app = create_app(settings, engine)
    app.state.metrics.max_age_s = 0.5
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=ports["web"], log_level="warning"))
    collector = Collector(settings, engine, registry=load_profiles(), mqtt_url=broker.url, refresh_s=5.0)
    metrics = MetricsServer(
        collector_exporter(collector, max_age_s=0.5), "127.0.0.1", ports["collector"], token=METRICS_TOKEN
    )
    offline, amplifier = await asyncio.to_thread(_faulted, engine)
    await simulator.start()
    for code in offline:
        simulator.inject(code, "offline")
    for code in amplifier:
        simulator.inject(code, "amplifier_fault")
    await collector.start()
    web = asyncio.create_task(server.serve())
    try:
        for _ in range(3):
            await collector.scheduler.poll_all_now()
            await collector.flush()
        await asyncio.to_thread(_add_unknown_device, engine)
        await metrics.start()
        info = {**ports, "database": str(folder / "monitor.db"), "offline": offline, "amplifier": amplifier}
        (folder / "ports.json").write_text(json.dumps(info))
        await asyncio.wait([web, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        await asyncio.wait_for(web, 10)
        await metrics.stop()
        await collector.stop()
        await simulator.stop()
        await broker.stop()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
