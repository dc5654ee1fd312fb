"""`Simulator`: the whole simulated fleet in one event loop — servers, publishers, scenarios, control API.

    simulator = Simulator(devices, seed=1, http_port=0, snmp_port=0, snmp_v3_port=0, clock=ManualClock())
    await simulator.start()
    ...  # poll 127.1.x.y:simulator.http_port, inject faults, simulator.clock.advance(60); simulator.tick()
    await simulator.stop()

A server is started only when the fleet has devices for it (HTTP, SNMP v2c, SNMPv3), MQTT only with
a broker URL, heartbeats only with a service URL; the control API always. Ports 0 pick free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monitor.inventory.demo import demo_token
from monitor.simulator.control import ControlServer, remove_state_file, write_state_file
from monitor.simulator.faults import Fault, FaultKind
from monitor.simulator.fleet import Clock, DeviceState, Fleet, SimDevice, system_clock
from monitor.simulator.http import StatusServer
from monitor.simulator.mqtt import MqttPublisher
from monitor.simulator.push import HeartbeatPusher, TokenFunction
from monitor.simulator.scenarios import Scenario, ScenarioContext, Timeline, parse_scenario
from monitor.simulator.snmp import TRAPPED_FAULTS, SnmpAgent
from monitor.simulator.snmpv3 import SnmpV3Agent
from monitor.simulator.synfilter import LOOPBACK

log = logging.getLogger(__name__)

TRAP_PROFILES = frozenset({"daiviet-rx-snmp"})


def parse_host_port(text: str, default_port: int = 162) -> tuple[str, int]:
    """(host, port) of `HOST[:PORT]`; ValueError otherwise."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"{text!r} must read HOST[:PORT]")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"{text!r} must read HOST[:PORT]") from None


class Simulator:
    """A simulated fleet speaking HTTP, SNMP v2c/v3, MQTT and HTTP heartbeats on loopback."""

    def __init__(
        self,
        devices: Iterable[SimDevice],
        *,
        seed: int = 1,
        host: str = LOOPBACK,
        http_port: int = 18080,
        snmp_port: int = 16161,
        snmp_v3_port: int = 16162,
        mqtt_url: str | None = None,
        service_url: str | None = None,
        trap_target: tuple[str, int] | None = None,
        scenarios: Sequence[Scenario | str] = (),
        clock: Clock = system_clock,
        token_for: TokenFunction | None = None,
        control_port: int = 0,
        data_dir: Path | None = None,
        tick_s: float = 0.25,
        hold_unreachable_s: float = 120.0,
    ) -> None:
        """Build the fleet (nothing is bound until `start()`).

        devices: the fleet (`source.devices_from_inventory(settings)`, or a list); seed: values and scenarios;
        host and *_port: where HTTP and SNMP listen (0: a free port); mqtt_url: `mqtt://HOST:PORT` for the
        MQTT clusters; service_url: where heartbeat devices post; trap_target: (host, port) for SNMP traps;
        scenarios: `Scenario` objects or specs (`"uplink-down:06613"`); clock: Unix seconds (`ManualClock`
        in tests); token_for: code -> bearer token (default: `demo_token(seed, code)`); control_port: the
        control API on 127.0.0.1; data_dir: where simulator.json goes; tick_s: how often scenarios run;
        hold_unreachable_s: how long a request on an open connection to an unreachable device is held.
        """
        self.seed = seed
        self.clock = clock
        self.fleet = Fleet(devices, seed=seed, clock=clock)
        self.scenarios = [parse_scenario(s) if isinstance(s, str) else s for s in scenarios]
        self.timeline = Timeline()
        self.trap_target = trap_target
        self.data_dir = data_dir
        self.tick_s = tick_s
        self.traps_sent = 0
        self.http: StatusServer | None = None
        self.snmp: SnmpAgent | None = None
        self.snmpv3: SnmpV3Agent | None = None
        self.mqtt: MqttPublisher | None = None
        self.push: HeartbeatPusher | None = None
        if self.fleet.http_by_host:
            self.http = StatusServer(self.fleet, host=host, port=http_port, hold_unreachable_s=hold_unreachable_s)
        if self.fleet.snmp_by_host or (trap_target and self.fleet.snmpv3_by_host):
            self.snmp = SnmpAgent(self.fleet, host=host, port=snmp_port)
        if self.fleet.snmpv3_by_host:
            self.snmpv3 = SnmpV3Agent(self.fleet, host=host, port=snmp_v3_port)
        self._mqtt_url = mqtt_url if self.fleet.with_protocol("mqtt") else None
        self._service_url = service_url if self.fleet.with_protocol("heartbeat") else None
        self._token_for = token_for or (lambda code: demo_token(seed, code))
        self.control = ControlServer(self.fleet, port=control_port, describe=self.describe)
        self._ticker: asyncio.Task[None] | None = None
        self._started = False
        self.fleet.add_listener(self._on_fault)

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule the scenarios, open every server, start publishing; write simulator.json."""
        if self._started:
            return
        self._started = True
        try:
            context = ScenarioContext(self.fleet, self.timeline, self.seed, self.clock())
            for scenario in self.scenarios:
                scenario.schedule(context)
            for server in (self.http, self.snmp, self.snmpv3):
                if server is not None:
                    await server.start()
            if self._mqtt_url:
                self.mqtt = MqttPublisher(self.fleet, self._mqtt_url)
                await self.mqtt.start()
            if self._service_url:
                self.push = HeartbeatPusher(self.fleet, self._service_url, self._token_for)
                await self.push.start()
            await self.control.start()
        except BaseException:
            await self.stop()
            raise
        self.tick()
        self._ticker = asyncio.create_task(self._tick_forever(), name="simulator-ticker")
        if self.data_dir is not None:
            write_state_file(self.data_dir, {"pid": os.getpid(), **self.describe()})
        log.info("simulator: %d devices, control API at %s", len(self.fleet), self.control.url)

    async def stop(self) -> None:
        """Stop everything and close every socket; safe to call twice."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for part in (self.push, self.mqtt, self.control, self.http, self.snmpv3, self.snmp):
            if part is not None:
                try:
                    await part.stop()
                except Exception:  # one part failing to stop must not leave the others open
                    log.exception("simulator: stopping %s failed", type(part).__name__)
        self.mqtt = self.push = None
        if self.data_dir is not None and self._started:
            remove_state_file(self.data_dir)
        self._started = False

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def tick(self) -> None:
        """Run what is due by the clock: scenario actions, fault expiries, the HTTP connection filter."""
        now = self.clock()
        self.timeline.run_due(now)
        self.fleet.expire(now)
        if self.http is not None:
            self.http.refresh_filter()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:  # a faulty scenario must not stop the fleet
                log.exception("simulator: tick failed")

    # --- faults -------------------------------------------------------------------------------

    def inject(
        self,
        code: str,
        fault: FaultKind | str,
        *,
        for_s: float | None = None,
        variant: str | None = None,
        delay_s: float | None = None,
    ) -> Fault:
        """Raise a fault on a device (see `Fleet.inject`)."""
        return self.fleet.inject(code, FaultKind(fault), for_s=for_s, variant=variant, delay_s=delay_s)

    def clear(self, code: str, fault: FaultKind | str | None = None) -> list[Fault]:
        """End one fault, or all faults, of a device."""
        return self.fleet.clear(code, None if fault is None else FaultKind(fault))

    def state(self, code: str) -> DeviceState:
        """What the device says now."""
        return self.fleet.snapshot(code)

    def _on_fault(self, device: SimDevice, fault: Fault, raised: bool, at: float) -> None:
        if self.http is not None and fault.kind in (FaultKind.OFFLINE, FaultKind.POWER_LOSS):
            with contextlib.suppress(RuntimeError):  # no running loop: the next tick refreshes it
                self.http.refresh_filter_soon()
        if (
            self.trap_target is not None
            and self.snmp is not None
            and self.snmp.socket.sock is not None
            and device.profile in TRAP_PROFILES
            and fault.kind in TRAPPED_FAULTS
            and device.snapshot(at).reachable
        ):
            self.snmp.send_trap(device, fault.kind.value, raised, self.trap_target)
            self.traps_sent += 1

    # --- what is served -----------------------------------------------------------------------

    @property
    def http_port(self) -> int | None:
        """The HTTP port (None when the fleet has no HTTP device or it is not started)."""
        return self.http.port if self.http is not None and self.http._sock is not None else None

    @property
    def snmp_port(self) -> int | None:
        """The SNMP v2c port (None when not serving)."""
        return self.snmp.port if self.snmp is not None and self.snmp.socket.sock is not None else None

    @property
    def snmp_v3_port(self) -> int | None:
        """The SNMPv3 port (None when not serving)."""
        return self.snmpv3.port if self.snmpv3 is not None and self.snmpv3.socket.sock is not None else None

    @property
    def control_url(self) -> str | None:
        """The control API's base URL (None when not started)."""
        return self.control.url

    def describe(self) -> dict[str, Any]:
        """What this simulator serves, for `GET /` and simulator.json."""
        return {
            "control_url": self.control_url,
            "seed": self.seed,
            "devices": len(self.fleet),
            "http_port": self.http_port,
            "snmp_port": self.snmp_port,
            "snmp_v3_port": self.snmp_v3_port,
            "mqtt": {
                "devices": len(self.fleet.with_protocol("mqtt")),
                "connected": bool(self.mqtt and self.mqtt.connected),
                "published": self.mqtt.published if self.mqtt else 0,
            },
            "heartbeat": {
                "devices": len(self.fleet.with_protocol("heartbeat")),
                **(dict(self.push.stats) if self.push else {}),
            },
            "scenarios": [scenario.spec for scenario in self.scenarios],
            "upcoming": [{"at": at, "what": label} for at, label in self.timeline.upcoming(10)],
            "traps_sent": self.traps_sent,
        }
