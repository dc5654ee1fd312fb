"""The `monitor` command itself and its process commands: `demo`, `serve`, `dispatch`, `collect`, and `status`."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, configure_logging, fail, migrated_engine, production_settings
from monitor.config import Mode
from monitor.db import make_engine, session_scope, upgrade
from monitor.inventory.choices import UnitStructure

app = typer.Typer(
    help="Giám sát cụm loa và bảng tin điện tử — fleet monitoring and repair tickets for a province's "
    "grassroots information network.\n\nTry it: `monitor demo`, then open http://127.0.0.1:8000/docs.",
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
) -> None:
    """Run the whole service in one process on SQLite, with the simulated Lạng Sơn fleet.

    The fleet answers on 127.1.x.y (HTTP, SNMP) and pushes over MQTT (an embedded broker) and HTTP;
    the collector polls it and the web app serves the API. Ctrl-C stops everything.
    """
    from monitor.auth.cast import CAST, DEMO_PASSWORD, seed_cast
    from monitor.inventory.demo import seed_demo
    from monitor.runtime import DEMO_SCENARIOS, run_demo

    configure_logging()
    overrides: dict[str, object] = {"mode": Mode.DEMO, "port": port, "cookie_secure": False}
    if not os.environ.get("MONITOR_ALERTMANAGER_TOKEN"):
        overrides["alertmanager_token"] = DEMO_ALERTMANAGER_TOKEN
    settings = cli_settings(**overrides)
    engine = make_engine(settings)
    upgrade(engine)
    with session_scope(engine) as session:
        result = seed_demo(session=session, seed=seed, structure=structure)
        seed_cast(session=session)
    typer.echo(f"database: {settings.effective_database_url}")
    typer.echo(f"fleet: {result.created} devices created, {result.updated} updated, {result.unchanged} unchanged")
    typer.echo(f"open http://127.0.0.1:{port}/docs (API) — sign in with POST /api/v1/auth/login")
    typer.echo(f"demo users (password {DEMO_PASSWORD!r}): " + ", ".join(f"{p.username} ({p.role.value})" for p in CAST))
    typer.echo("inject a fault: monitor simulate inject --device 06613-CL01 --fault offline")
    typer.echo(f"what is down now: GET http://127.0.0.1:{port}/api/v1/devices?state=down, or `monitor status`")
    typer.echo(
        f"Alertmanager webhook: POST http://127.0.0.1:{port}/api/v1/integrations/alertmanager "
        f"(bearer {settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else '-'})"
    )
    typer.echo("Ctrl-C stops it.")
    asyncio.run(run_demo(settings, engine, seed=seed, port=port, scenarios=scenario or DEMO_SCENARIOS))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: MONITOR_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: MONITOR_PORT)")] = None,
    dispatcher: Annotated[bool, typer.Option(help="also run the alerts dispatcher in this process")] = True,
) -> None:
    """Run the web app and API (and, by default, the alerts dispatcher) on the configured database."""
    from monitor.runtime import run_web

    configure_logging()
    settings = production_settings()
    engine = migrated_engine(settings)
    asyncio.run(run_web(settings, engine, host or settings.host, port or settings.port, with_dispatcher=dispatcher))


@app.command()
def dispatch() -> None:
    """Run an alerts dispatcher: state changes to problems, tickets and notifications (several may run)."""
    from monitor.runtime import run_dispatcher

    configure_logging()
    settings = production_settings()
    asyncio.run(run_dispatcher(settings, migrated_engine(settings)))


@app.command()
def collect(
    shard: Annotated[str, typer.Option(help="I/N: poll the devices whose id modulo N is I (0-based)")] = "0/1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="port of this collector's /metrics (default 9180 + I, on MONITOR_HOST)", min=1, max=65535),
    ] = None,
) -> None:
    """Run a collector: poll its shard of the fleet, hear pushed heartbeats (shard 0), judge health."""
    from monitor.runtime import run_collector

    configure_logging()
    settings = cli_settings()
    try:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        fail(f"--shard {shard!r}: give I/N with 0 <= I < N, e.g. 0/2")
    engine = migrated_engine(settings)
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
