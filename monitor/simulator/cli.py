"""`monitor simulate …`: run the simulated fleet of the inventory, and change a running one.

Mounted by monitor/cli/__init__.py as `app.add_typer(simulate_app, name="simulate")`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import typer

from monitor.errors import MonitorError
from monitor.simulator.control import STATE_FILE, read_state_file
from monitor.simulator.faults import FaultKind, parse_fault_kind
from monitor.simulator.scenarios import SCENARIOS, parse_duration, parse_scenario
from monitor.simulator.synfilter import LOOPBACK

simulate_app = typer.Typer(
    help="A simulated fleet on loopback (127.1.x.y) speaking HTTP, SNMP, MQTT and heartbeats, with fault scenarios.",
    no_args_is_help=True,
)

ControlOption = Annotated[
    str | None,
    typer.Option("--control", help=f"control API URL (default: read from MONITOR_DATA_DIR/{STATE_FILE})"),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _data_dir() -> Path:
    from monitor.config import load_settings

    try:
        return load_settings().data_dir
    except MonitorError as exc:
        _fail(str(exc), 2)


@simulate_app.command("run")
def run(
    seed: Annotated[int, typer.Option(help="seed of the simulated values and scenarios")] = 1,
    host: Annotated[
        str,
        typer.Option(
            help="where HTTP and SNMP listen: loopback (every 127.x.y.z and nothing else), 0.0.0.0 or one address"
        ),
    ] = LOOPBACK,
    http_port: Annotated[int, typer.Option(help="HTTP port of every HTTP device")] = 18080,
    snmp_port: Annotated[int, typer.Option(help="SNMP v2c port of every SNMP device")] = 16161,
    snmp_v3_port: Annotated[int, typer.Option(help="SNMPv3 port of every v3 device")] = 16162,
    mqtt: Annotated[str | None, typer.Option(help="MQTT broker the 4G clusters publish to: mqtt://HOST:PORT")] = None,
    service: Annotated[str | None, typer.Option(help="service the heartbeat devices post to: http://HOST:PORT")] = None,
    trap_target: Annotated[str | None, typer.Option(help="HOST:PORT that SNMP devices send their traps to")] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help=f"NAME[:TARGET][:KEY=VALUE…], repeatable; names: {', '.join(SCENARIOS)}"),
    ] = None,
    control_port: Annotated[int, typer.Option(help="port of the control API on 127.0.0.1 (0: any free port)")] = 0,
) -> None:
    """Simulate every active device of the configured inventory until Ctrl-C."""
    import logging

    from monitor.config import load_settings
    from monitor.simulator.runner import Simulator, parse_host_port
    from monitor.simulator.source import devices_from_inventory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        scenarios = [parse_scenario(spec) for spec in scenario or []]
        target = parse_host_port(trap_target) if trap_target else None
    except (MonitorError, ValueError) as exc:
        _fail(str(exc), 2)
    try:
        devices = devices_from_inventory(settings)
    except Exception as exc:  # SQLAlchemy's errors: no database, no table
        _fail(f"cannot read the inventory at {settings.effective_database_url}: {exc.__class__.__name__}: {exc}")
    if not devices:
        _fail("the inventory has no active device: load one with `monitor demo` or `monitor fleet import`")

    async def main() -> None:
        simulator = Simulator(
            devices,
            seed=seed,
            host=host,
            http_port=http_port,
            snmp_port=snmp_port,
            snmp_v3_port=snmp_v3_port,
            mqtt_url=mqtt,
            service_url=service,
            trap_target=target,
            scenarios=scenarios,
            control_port=control_port,
            data_dir=settings.data_dir,
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await simulator.start()
        except (OSError, ValueError) as exc:
            _fail(f"cannot start the simulator: {exc}")
        info = simulator.describe()
        typer.echo(
            f"simulating {info['devices']} devices — HTTP :{info['http_port']}, SNMP :{info['snmp_port']}, "
            f"SNMPv3 :{info['snmp_v3_port']}; control API {info['control_url']}. Ctrl-C stops it."
        )
        try:
            await stopping.wait()
        finally:
            await simulator.stop()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def _control_url(control: str | None) -> str:
    if control:
        return control.rstrip("/")
    data_dir = _data_dir()
    try:
        return str(read_state_file(data_dir)["control_url"]).rstrip("/")
    except FileNotFoundError:
        _fail(
            f"no running simulator found: {data_dir / STATE_FILE} does not exist "
            "(start one with `monitor simulate run`, or pass --control URL)"
        )
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {data_dir / STATE_FILE}: {exc}")


def _call(control: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    base = _control_url(control)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except ValueError:
            message = exc.reason
        _fail(str(message))
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"no simulator answers at {base} ({getattr(exc, 'reason', exc)}); is it still running?")


def _describe_state(view: dict[str, Any]) -> str:
    state = view["state"]
    faults = ", ".join(state["faults"]) or "none"
    reach = "reachable" if state["reachable"] else f"unreachable ({state['unreachable_mode']})"
    return f"{view['code']}: {reach}, uptime {state['uptime_s']} s, power {state['power']}, faults: {faults}"


@simulate_app.command("inject")
def inject(
    device: Annotated[str, typer.Option(help="device code, e.g. 06613-CL01")],
    fault: Annotated[str, typer.Option(help=f"one of: {', '.join(kind.value for kind in FaultKind)}")],
    for_: Annotated[
        str | None, typer.Option("--for", help="how long: 90, 30s, 10m, 2h (default: until cleared)")
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="garbage variant, speaker line open/short, offline timeout/refused")
    ] = None,
    delay: Annotated[str | None, typer.Option(help="delay of a slow device's answers, e.g. 15s")] = None,
    control: ControlOption = None,
) -> None:
    """Inject a fault into a device of the running simulator."""
    try:
        kind = parse_fault_kind(fault)
        for_s = parse_duration(for_) if for_ else None
        delay_s = parse_duration(delay) if delay else None
    except ValueError as exc:
        _fail(str(exc), 2)
    body = {"device": device, "fault": kind.value, "for_s": for_s, "variant": variant, "delay_s": delay_s}
    result = _call(control, "POST", "/inject", body)
    until = f" for {for_s:g} s" if for_s else " until cleared"
    typer.echo(f"injected {kind.value} into {device}{until}")
    typer.echo(_describe_state(result["device"]))


@simulate_app.command("clear")
def clear(
    device: Annotated[str, typer.Option(help="device code")],
    fault: Annotated[str | None, typer.Option(help="only this fault (default: all)")] = None,
    control: ControlOption = None,
) -> None:
    """Clear the faults of a device of the running simulator."""
    body: dict[str, Any] = {"device": device}
    if fault:
        try:
            body["fault"] = parse_fault_kind(fault).value
        except ValueError as exc:
            _fail(str(exc), 2)
    result = _call(control, "POST", "/clear", body)
    cleared = ", ".join(item["kind"] for item in result["cleared"]) or "nothing"
    typer.echo(f"cleared {cleared} on {device}")
    typer.echo(_describe_state(result["device"]))


@simulate_app.command("show")
def show(
    device: Annotated[str, typer.Option(help="device code")],
    control: ControlOption = None,
) -> None:
    """Show what a device of the running simulator says now (JSON)."""
    typer.echo(json.dumps(_call(control, "GET", f"/devices/{quote(device, safe='')}"), indent=2, ensure_ascii=False))
