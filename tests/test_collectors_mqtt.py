"""The MQTT listener against a real Mosquitto (restarted under it) and the embedded amqtt broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from monitor.collectors.mqtt import EmbeddedBroker, MqttListener, parse_broker_url
from monitor.collectors.profiles import load_profiles
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation
from tests.peers import free_port, start_mosquitto
from tests.test_collectors_mapping import VIETLOA

REGISTRY = load_profiles()
TOPIC = "lang-son/06613/06613-CL01/heartbeat"
CLUSTER = PollTarget(41, "06613-CL01", "mqtt", TOPIC, None, "vietloa-ip200-mqtt", None, 60)
ORPHAN = PollTarget(42, "06613-CL09", "mqtt", "lang-son/06613/06613-CL09/heartbeat", None, "no-such-profile", None, 60)
TARGETS = {t.address: t for t in (CLUSTER, ORPHAN)}


class Inbox:
    """Observations the listener delivered, awaitable one at a time."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Observation] = asyncio.Queue()

    async def put(self, observation: Observation) -> None:
        await self.queue.put(observation)

    async def next(self) -> Observation:
        """The next observation, within 5 s."""
        return await asyncio.wait_for(self.queue.get(), 5)


def listener_for(url: str, inbox: Inbox, sink: Callable[[Observation], object] | None = None) -> MqttListener:
    return MqttListener(
        url,
        "lang-son/+/+/heartbeat",
        TARGETS.get,
        REGISTRY,
        sink or inbox.put,  # type: ignore[arg-type]
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        keepalive_s=5,
    )


async def publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def started(listener: MqttListener) -> asyncio.Task[None]:
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 5)
    return task


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_published_status_becomes_an_observation_and_garbage_a_failed_one(tmp_path: Path) -> None:
    async def scenario() -> tuple[Observation, Observation, MqttListener]:
        with start_mosquitto(tmp_path) as broker:
            inbox = Inbox()
            listener = listener_for(f"mqtt://127.0.0.1:{broker.port}", inbox)
            task = await started(listener)
            try:
                await publish(broker.port, TOPIC, json.dumps(VIETLOA).encode())
                good = await inbox.next()
                await publish(broker.port, "lang-son/06613/06613-XX99/heartbeat", b"{}")  # nobody's topic
                await publish(broker.port, ORPHAN.address, b"{}")  # a device whose profile is unknown
                await publish(broker.port, TOPIC, b"\x00\x01 not json")
                bad = await inbox.next()
            finally:
                await stopped(task)
            return good, bad, listener

    good, bad, listener = asyncio.run(scenario())
    assert good.reachable and good.device_id == 41 and good.source == "mqtt"
    assert good.readings["signal_dbm"] == -87 and good.faults == frozenset()
    assert good.observed_at.tzinfo is not None
    assert not bad.reachable and bad.device_id == 41 and (bad.error or "").startswith("bad_json: ")
    assert listener.counters.event_count("mqtt", "unknown_topic") == 1
    assert listener.counters.event_count("mqtt", "unknown_profile") == 1
    assert listener.counters.outcomes() == {("mqtt", "ok"): 1, ("mqtt", "bad_json"): 1}


def test_a_retained_status_is_an_old_replay_and_is_ignored(tmp_path: Path) -> None:
    async def scenario() -> tuple[Observation, MqttListener]:
        with start_mosquitto(tmp_path) as broker:
            await publish(broker.port, TOPIC, json.dumps({**VIETLOA, "temp": 99}).encode(), retain=True)
            inbox = Inbox()
            listener = listener_for(f"mqtt://127.0.0.1:{broker.port}", inbox)
            task = await started(listener)
            try:
                await publish(broker.port, TOPIC, json.dumps(VIETLOA).encode())
                return await inbox.next(), listener
            finally:
                await stopped(task)

    fresh, listener = asyncio.run(scenario())
    assert fresh.readings["temperature_c"] == 41.5
    assert listener.counters.event_count("mqtt", "retained_ignored") == 1


def test_the_listener_survives_a_broker_restart(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Observation], MqttListener]:
        broker = start_mosquitto(tmp_path)
        port = broker.port
        inbox = Inbox()
        listener = listener_for(f"mqtt://127.0.0.1:{port}", inbox)
        task = await started(listener)
        try:
            await publish(port, TOPIC, json.dumps(VIETLOA).encode())
            before = await inbox.next()
            await asyncio.to_thread(broker.stop)
            for _ in range(100):  # the listener notices the broker is gone
                if not listener.connected.is_set():
                    break
                await asyncio.sleep(0.05)
            assert not listener.connected.is_set()
            broker = await asyncio.to_thread(start_mosquitto, tmp_path, port=port)
            await asyncio.wait_for(listener.connected.wait(), 10)
            await publish(port, TOPIC, json.dumps({**VIETLOA, "uptime": 5}).encode())
            after = await inbox.next()
        finally:
            await stopped(task)
            broker.stop()
        return [before, after], listener

    (before, after), listener = asyncio.run(scenario())
    assert before.readings["uptime_s"] == 123456 and after.readings["uptime_s"] == 5
    assert listener.connections == 2
    assert listener.counters.event_count("mqtt", "broker") >= 1


def test_a_failing_delivery_does_not_stop_the_listener(tmp_path: Path) -> None:
    delivered: list[Observation] = []

    def sink(observation: Observation) -> None:
        delivered.append(observation)
        if len(delivered) == 1:
            raise RuntimeError("database is locked")

    async def scenario() -> MqttListener:
        with start_mosquitto(tmp_path) as broker:
            listener = listener_for(f"mqtt://127.0.0.1:{broker.port}", Inbox(), sink)
            task = await started(listener)
            try:
                for _ in range(2):
                    await publish(broker.port, TOPIC, json.dumps(VIETLOA).encode())
                for _ in range(100):
                    if len(delivered) == 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await stopped(task)
            return listener

    listener = asyncio.run(scenario())
    assert len(delivered) == 2
    assert listener.counters.event_count("mqtt", "callback_error") == 1


def test_the_embedded_broker_carries_a_publish_to_a_subscriber_and_to_the_listener() -> None:
    async def scenario() -> tuple[bytes, Observation]:
        broker = EmbeddedBroker("127.0.0.1", free_port())
        await broker.start()
        try:
            async with aiomqtt.Client("127.0.0.1", broker.port) as subscriber:
                await subscriber.subscribe("lang-son/#", qos=1)
                inbox = Inbox()
                listener = listener_for(broker.url, inbox)
                task = await started(listener)
                try:
                    await publish(broker.port, TOPIC, json.dumps(VIETLOA).encode())
                    message = await asyncio.wait_for(anext(aiter(subscriber.messages)), 5)
                    observation = await inbox.next()
                finally:
                    await stopped(task)
            assert isinstance(message.payload, bytes)
            return message.payload, observation
        finally:
            await broker.stop()

    payload, observation = asyncio.run(scenario())
    assert json.loads(payload) == VIETLOA
    assert observation.reachable and observation.device_id == 41


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884, None, None, False)),
        ("mqtts://collector:p%40ss@broker.lang-son.vn", ("broker.lang-son.vn", 8883, "collector", "p@ss", True)),
        ("127.0.0.1", ("127.0.0.1", 1883, None, None, False)),
    ],
)
def test_broker_urls(url: str, expected: tuple[str, int, str | None, str | None, bool]) -> None:
    args = parse_broker_url(url)
    assert (
        args["hostname"],
        args["port"],
        args["username"],
        args["password"],
        args["tls_context"] is not None,
    ) == expected


def test_a_broker_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="not an MQTT broker URL"):
        parse_broker_url("http://127.0.0.1:1883")
