"""How the processes run: the web server, a collector, and the demo that runs everything in one process.

Each function owns the life of its parts: start in order, stop in reverse on Ctrl-C or SIGTERM
(uvicorn's signal handling ends `serve()`; a collector waits on the same signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import uvicorn
from sqlalchemy.engine import Engine

from monitor.collectors.mqtt import EmbeddedBroker
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings
from monitor.web.app import create_app

log = logging.getLogger(__name__)
DEMO_MQTT_PORT = 18830
DEMO_SCENARIOS = ("random-faults:per_day=2",)


def _server(settings: Settings, engine: Engine, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_app(settings, engine), host=host, port=port, log_level="info", lifespan="on")
    return uvicorn.Server(config)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_collector(settings: Settings, engine: Engine, shard: tuple[int, int]) -> None:
    """A collector process: polls its shard until Ctrl-C or SIGTERM."""
    collector = Collector(
        settings,
        engine,
        registry=load_profiles(settings.profiles_dir),
        shard=shard,
        mqtt_url=settings.mqtt_url,
        trap_port=settings.snmp_trap_port,
    )
    await collector.start()
    try:
        await _until_signalled()
    finally:
        await collector.stop()


async def run_demo(
    settings: Settings, engine: Engine, *, seed: int, port: int, scenarios: Sequence[str] = DEMO_SCENARIOS
) -> None:
    """Everything in one process: an MQTT broker, the simulated fleet, the collector and the web app."""
    from monitor.simulator import Simulator  # the demo is the one place that runs the simulator in-process
    from monitor.simulator.source import devices_from_inventory

    broker: EmbeddedBroker | None = None
    mqtt_url = settings.mqtt_url
    if mqtt_url is None:
        broker = EmbeddedBroker(port=DEMO_MQTT_PORT)
        await broker.start()
        mqtt_url = broker.url
    simulator = Simulator(
        await asyncio.to_thread(devices_from_inventory, settings),
        seed=seed,
        mqtt_url=mqtt_url,
        service_url=f"http://127.0.0.1:{port}",
        scenarios=scenarios,
        data_dir=settings.data_dir,
    )
    collector = Collector(
        settings, engine, registry=load_profiles(settings.profiles_dir), mqtt_url=mqtt_url, trap_port=None
    )
    server = _server(settings, engine, "127.0.0.1", port)
    await simulator.start()
    try:
        await collector.start()
        try:
            await server.serve()
        finally:
            await collector.stop()
    finally:
        await simulator.stop()
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.stop()
