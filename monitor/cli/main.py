"""The `monitor` command itself and its process commands: `demo`, `serve`, `dispatch`, `collect`, and `status`."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Annotated

import typer
from sqlmodel import col, select

from monitor.cli._common import cli_settings, configure_logging, fail, migrated_engine, production_settings
from monitor.config import Mode
from monitor.db import make_engine, session_scope, upgrade, utcnow
from monitor.health.leases import PoolNeedsPostgres
from monitor.inventory.choices import UnitStructure

app = typer.Typer(
    help="Giám sát cụm loa và bảng tin điện tử — fleet monitoring and repair tickets for a province's "
    "grassroots information network.\n\nTry it: `monitor demo`, then open http://127.0.0.1:8000/.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DEMO_ALERTMANAGER_TOKEN = "demo-alertmanager-token"  # demo mode only, printed at start


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port of the web app on 127.0.0.1")] = 8000,
    seed: Annotated[int, typer.Option(help="seed of the generated fleet: same seed, same fleet")] = 1,
    structure: Annotated[UnitStructure, typer.Option(help="2020: 11 districts; 2025: maintenance areas")] = (
        UnitStructure.Y2020
    ),
    scenario: Annotated[
        list[str] | None, typer.Option(help="simulator scenarios, e.g. uplink-down:06613 (default: random faults)")
    ] = None,
    history: Annotated[
        bool, typer.Option(help="give a fresh demo a year of history: outages, tickets, costs, training (~20 s, once)")
    ] = True,
) -> None:
    """Run the whole service in one process on SQLite, with the simulated Lạng Sơn fleet.

    The fleet answers on 127.1.x.y (HTTP, SNMP) and pushes over MQTT (an embedded broker) and HTTP;
    the collector polls it and the web app serves the API. Ctrl-C stops everything.
    """
    from monitor.auth.cast import CAST, DEMO_PASSWORD, seed_cast
    from monitor.inventory.demo import DemoPorts, seed_demo
    from monitor.inventory.models import Commune, Device, District
    from monitor.runtime import DEMO_SCENARIOS, choose_demo_ports, port_free, run_demo

    configure_logging()
    if not port_free(port, host="127.0.0.1"):
        fail(f"port {port} on 127.0.0.1 is taken (another demo?): choose another with --port (make demo PORT=8080)")
    ports = choose_demo_ports()
    overrides: dict[str, object] = {"mode": Mode.DEMO, "port": port, "cookie_secure": False}
    if not os.environ.get("MONITOR_ALERTMANAGER_TOKEN"):
        overrides["alertmanager_token"] = DEMO_ALERTMANAGER_TOKEN
    settings = cli_settings(**overrides)
    engine = make_engine(settings)
    upgrade(engine)
    with session_scope(engine) as session:
        result = seed_demo(session=session, seed=seed, structure=structure, ports=ports)
        seed_cast(session=session)
        if history and result.created:
            from monitor.reports.backfill import backfill_year

            typer.echo("writing a year of history for the reports (once, about 20 s)…")
            year = backfill_year(session, seed=seed, now=utcnow())
            done = f"{year.outages:,} outages, {year.tickets:,} tickets, {year.training_sessions} training sessions"
            typer.echo(f"history: {done}")
        districts = {d.code: d.name for d in session.exec(select(District))}
        # a device the printed officer and technician of Cao Lộc can see, polled over HTTP
        example = session.exec(
            select(Device.code)
            .join(Commune, col(Commune.code) == Device.commune_code)
            .where(Commune.district_code == "183", Device.protocol == "http", Device.kind == "radio_cluster")
            .order_by(col(Device.code))
        ).first()
    typer.echo(f"database: {settings.effective_database_url}")
    typer.echo(f"fleet: {result.created} devices created, {result.updated} updated, {result.unchanged} unchanged")
    if ports != DemoPorts():
        typer.echo(
            f"the usual fleet ports are taken (another demo?): this fleet answers on HTTP {ports.http}, "
            f"SNMP {ports.snmp}/{ports.snmp_v3}, MQTT {ports.mqtt}, on 127.1.x.y"
        )
    typer.echo(f"open http://127.0.0.1:{port}/ and sign in as one of these (the API: http://127.0.0.1:{port}/docs)")
    typer.echo(f"demo users, password {DEMO_PASSWORD!r}:")
    for person in CAST:
        code = person.district_code
        where = f"{districts.get(code, '?')} ({code})" if code else "cả tỉnh / the whole province"
        typer.echo(f"  {person.username:<8} {person.role.value:<10} {person.role.label_vi} — {where}")
    if example:
        typer.echo(f"break a device of Cao Lộc: monitor simulate inject --device {example} --fault offline")
    typer.echo(f"what is down now: GET http://127.0.0.1:{port}/api/v1/devices?state=down, or `monitor status`")
    typer.echo(
        f"Alertmanager webhook: POST http://127.0.0.1:{port}/api/v1/integrations/alertmanager "
        f"(bearer {settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else '-'})"
    )
    typer.echo("Ctrl-C stops it.")
    asyncio.run(run_demo(settings, engine, seed=seed, port=port, scenarios=scenario or DEMO_SCENARIOS, ports=ports))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: MONITOR_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: MONITOR_PORT)")] = None,
    dispatcher: Annotated[bool, typer.Option(help="also run the alerts dispatcher in this process")] = True,
    workers: Annotated[
        int | None,
        typer.Option(help="web processes sharing the port (default: MONITOR_WEB_WORKERS, 1)", min=1, max=64),
    ] = None,
) -> None:
    """Run the web app and API (and, by default, the alerts dispatcher) on the configured database."""
    from monitor.runtime import run_web_forever

    configure_logging()
    settings = production_settings()
    if workers is not None:
        settings = settings.model_copy(update={"web_workers": workers})
    engine = migrated_engine(settings)
    run_web_forever(settings, engine, host or settings.host, port or settings.port, with_dispatcher=dispatcher)


@app.command()
def dispatch() -> None:
    """Run an alerts dispatcher: state changes to problems, tickets and notifications (several may run)."""
    from monitor.runtime import run_dispatcher

    configure_logging()
    settings = production_settings()
    asyncio.run(run_dispatcher(settings, migrated_engine(settings)))


@app.command()
def collect(
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: poll only the devices whose id modulo N is I (0-based); default: join the pool"),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="port of this collector's /metrics (default 9180 + I, or 9180 in the pool)", min=1, max=65535
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="this collector's name in the pool (default: host-pid)")] = None,
) -> None:
    """Run a collector: poll its shards of the fleet, hear pushed heartbeats (shard 0), judge health.

    Without --shard, on PostgreSQL, it joins the pool: it leases its share of the fleet's shards and takes over
    those of a collector that stops renewing (MONITOR_COLLECTOR_SHARDS, MONITOR_COLLECTOR_LEASE_S). On SQLite it
    polls the whole fleet, as --shard 0/1.
    """
    from monitor.runtime import run_collector, run_pool_collector

    configure_logging()
    settings = cli_settings()
    engine = migrated_engine(settings)
    if shard is None and engine.dialect.name == "postgresql":
        member = name or f"{socket.gethostname()}-{os.getpid()}"
        try:
            asyncio.run(run_pool_collector(settings, engine, member, metrics_port))
        except PoolNeedsPostgres as exc:
            fail(str(exc), code=2)
        return
    if shard is None:
        typer.echo("SQLite: one collector polls the whole fleet (the pool of leased shards needs PostgreSQL)", err=True)
        shard = "0/1"
    try:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        fail(f"--shard {shard!r}: give I/N with 0 <= I < N, e.g. 0/2")
    asyncio.run(run_collector(settings, engine, (index, count), metrics_port))


@app.command()
def status() -> None:
    """The province at a glance: each district's active devices by state and its open tickets."""
    from monitor.health.queries import list_districts
    from monitor.health.states import DeviceState
    from monitor.tickets.queries import open_tickets_by_district

    engine = migrated_engine(cli_settings())
    with session_scope(engine) as session:
        districts = list_districts(session=session)
        open_tickets = open_tickets_by_district(session=session)
    states = [s.value for s in DeviceState]
    header = ["district", *states, "tickets", "name"]
    rows = [
        [
            d.district.code,
            *(str(d.devices_by_state.get(s, 0)) for s in states),
            str(open_tickets.get(d.district.code, 0)),
            d.district.name,
        ]
        for d in districts
    ]
    totals = ["total", *(str(sum(d.devices_by_state.get(s, 0) for d in districts)) for s in states)]
    rows.append([*totals, str(sum(open_tickets.values())), ""])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


__all__ = ["app"]
