"""Pushing devices of the simulated fleet: MQTT heartbeats to a real Mosquitto, HTTP heartbeats to a recorder."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import web

from monitor.inventory.demo import demo_token
from monitor.simulator import FaultKind, Simulator
from monitor.simulator.loadcheck import synthetic_devices
from monitor.simulator.pacing import phase
from monitor.simulator.samples import sample_devices
from tests.postgres import free_port
from tests.test_simulator import run

TOPIC = "lang-son/06613/06613-CL04/heartbeat"


class Mosquitto:
    """A throw-away Mosquitto on a loopback port, started and stopped by pid."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto (Debian package) is not installed")
    broker = Mosquitto(tmp_path).start()
    try:
        yield broker
    finally:
        broker.stop()


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    """Poll `condition` every 50 ms; TimeoutError after `within` seconds."""
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not true within {within} s")


async def next_message(port: int, within: float) -> aiomqtt.Message:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"test-subscriber-{time.monotonic_ns()}") as client:
        await client.subscribe("lang-son/#", qos=1)
        async with asyncio.timeout(within):
            async for message in client.messages:
                return message
    raise AssertionError("no message")


def test_mqtt_clusters_publish_their_json_and_reconnect_after_the_broker_restarts(mosquitto: Mosquitto) -> None:
    async def scenario() -> tuple[Any, ...]:
        sim = Simulator(
            sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}"
        )
        async with sim:
            assert sim.mqtt is not None
            first = await next_message(mosquitto.port, 4)
            sim.inject("06613-CL04", FaultKind.GARBAGE, variant="not_json")
            garbage = await next_message(mosquitto.port, 4)
            sim.clear("06613-CL04")
            mosquitto.stop()
            await wait_until(lambda: not sim.mqtt.connected, 5)  # type: ignore[union-attr]
            mosquitto.start()
            after = await next_message(mosquitto.port, 8)
            return first, garbage, after, sim.mqtt.connections

    first, garbage, after, connections = run(scenario(), timeout=30)
    assert str(first.topic) == TOPIC
    body = json.loads(first.payload)
    assert body["device_id"] == "06613-CL04" and body["net"]["type"] == "4G" and body["power"]["source"] == "AC"
    assert first.qos == 1 and not first.retain
    with pytest.raises(ValueError):
        json.loads(garbage.payload)
    assert json.loads(after.payload)["device_id"] == "06613-CL04"
    assert connections == 2


class Recorder:
    """A stand-in for the service's heartbeat endpoint that records what it is sent."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes, float]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Recorder:
        async def heartbeat(request: web.Request) -> web.Response:
            self.posts.append(
                (
                    request.match_info["code"],
                    request.headers.get("Authorization", ""),
                    await request.read(),
                    time.monotonic(),
                )
            )
            return web.json_response({"accepted": True}, status=202)

        app = web.Application()
        app.router.add_post("/api/v1/heartbeats/{code}", heartbeat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def codes(self, since: float = 0.0) -> set[str]:
        return {code for code, _, _, at in self.posts if at >= since}


def test_heartbeat_devices_post_their_profiles_json_with_their_bearer_token() -> None:
    async def scenario() -> tuple[Recorder, set[str], Any]:
        recorder = await Recorder().start()
        try:
            async with Simulator(
                sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, service_url=recorder.url
            ) as sim:
                await wait_until(lambda: recorder.codes() == {"06613-BB2", "06613-CL05"}, 5)
                sim.inject("06613-CL05", FaultKind.OFFLINE)
                silent_since = time.monotonic()
                await asyncio.sleep(2.2)
                assert sim.push is not None
                return recorder, recorder.codes(silent_since), dict(sim.push.stats)
        finally:
            await recorder.stop()

    recorder, while_offline, stats = run(scenario())
    by_code = {code: (auth, json.loads(body)) for code, auth, body, _ in recorder.posts}
    for code, (auth, _) in by_code.items():
        assert auth == f"Bearer {demo_token(1, code)}"
    board = by_code["06613-BB2"][1]
    assert board["serial"].startswith("SB43-") and board["system"]["power"] == "mains"
    tts = by_code["06613-CL05"][1]
    assert set(tts) == {"readings", "faults"} and tts["faults"] == []
    assert tts["readings"]["power"] == "mains" and isinstance(tts["readings"]["signal_dbm"], int)
    assert while_offline == {"06613-BB2"}  # the offline cluster fell silent, the board went on
    assert stats["sent"] >= 4 and stats["http_202"] == stats["sent"]


def test_an_injected_token_function_signs_the_heartbeats() -> None:
    async def scenario() -> set[str]:
        recorder = await Recorder().start()
        try:
            sim = Simulator(
                sample_devices(),
                http_port=0,
                snmp_port=0,
                snmp_v3_port=0,
                service_url=recorder.url,
                token_for=lambda code: f"token-of-{code}",
            )
            async with sim:
                await wait_until(lambda: len(recorder.codes()) >= 2, 5)
            return {auth for _, auth, _, _ in recorder.posts}
        finally:
            await recorder.stop()

    assert run(scenario()) >= {"Bearer token-of-06613-BB2", "Bearer token-of-06613-CL05"}


def test_a_service_that_is_down_only_counts_failures() -> None:
    async def scenario() -> dict[str, int]:
        sim = Simulator(
            sample_devices(), http_port=0, snmp_port=0, snmp_v3_port=0, service_url=f"http://127.0.0.1:{free_port()}"
        )
        async with sim:
            await asyncio.sleep(1.5)
            assert sim.push is not None
            return dict(sim.push.stats)

    stats = run(scenario())
    assert stats["failed"] >= 2 and stats.get("sent", 0) == 0


def test_push_phases_are_spread_and_deterministic() -> None:
    devices = synthetic_devices(900, "http")
    for device in devices:
        device.interval_s = 60
    phases = [phase(1, device) for device in devices]
    assert phases == [phase(1, device) for device in devices]
    assert phases != [phase(2, device) for device in devices]
    assert all(0 <= p < 60 for p in phases)
    assert len({int(p * 1000) for p in phases}) > 890  # hardly two in the same millisecond
