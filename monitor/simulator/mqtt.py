"""VietLoa 4G clusters publishing their heartbeat to an MQTT broker, as they do in the field.

Each device publishes its JSON to its topic (the inventory `address`) every interval, QoS 1, not
retained. One connection carries the whole fleet (the service cannot tell: it sees topics, not
connections). When the broker goes away the publisher reconnects with capped exponential backoff
and resumes the same schedule; heartbeats due meanwhile are lost, as a device's would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from urllib.parse import urlsplit

import aiomqtt

from monitor.simulator import formats
from monitor.simulator.fleet import Clock, Fleet, SimDevice
from monitor.simulator.pacing import Pacer

log = logging.getLogger(__name__)
_instances = itertools.count(1)  # two publishers with one client id would kick each other off the broker


def parse_broker_url(url: str) -> tuple[str, int, str | None, str | None]:
    """(host, port, username, password) of `mqtt://[user:pass@]host[:port]`; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"MQTT broker URL {url!r} must read mqtt://HOST[:PORT]")
    return parts.hostname, parts.port or 1883, parts.username, parts.password


class MqttPublisher:
    """Publishes the heartbeats of the fleet's MQTT devices."""

    def __init__(
        self,
        fleet: Fleet,
        url: str,
        *,
        clock: Clock | None = None,
        backoff_max_s: float = 30.0,
        publish_timeout_s: float = 10.0,
    ) -> None:
        self.fleet = fleet
        self.clock = clock or fleet.clock
        self.host, self.port, self.username, self.password = parse_broker_url(url)
        self.backoff_max_s = backoff_max_s
        self.publish_timeout_s = publish_timeout_s
        self.pacer = Pacer(fleet.with_protocol("mqtt"), fleet.seed)
        self.connected = False
        self.published = 0
        self.connections = 0
        self.client_id = f"fleet-simulator-{fleet.seed}-{os.getpid()}-{next(_instances)}"
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delayed: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect in the background (the broker may not be up yet) and publish."""
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="simulator-mqtt")

    async def stop(self) -> None:
        """Disconnect and stop publishing (idempotent)."""
        self._stopping.set()
        for task in [*self._delayed, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._delayed, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._delayed.clear()
        self._task = None
        self.connected = False

    async def _run(self) -> None:
        backoff = 0.5
        warned = False
        while not self._stopping.is_set():
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username=self.username,
                    password=self.password,
                    identifier=self.client_id,
                    keepalive=30,
                    timeout=self.publish_timeout_s,
                ) as client:
                    self.connected, backoff, warned = True, 0.5, False
                    self.connections += 1
                    log.info("MQTT: connected to %s:%s", self.host, self.port)
                    await self.pacer.run(lambda device: self._publish(client, device), self._stopping)
            except aiomqtt.MqttError as exc:
                if self.connected:
                    log.warning("MQTT: lost the broker at %s:%s (%s); reconnecting", self.host, self.port, exc)
                elif not warned:  # once per outage, not at every retry
                    log.warning("MQTT: cannot reach %s:%s (%s); retrying with backoff", self.host, self.port, exc)
                warned = True
            self.connected = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def payload(self, device: SimDevice) -> bytes | None:
        """What the device publishes now, or None when it is silent (unreachable)."""
        now = self.clock()
        state = device.snapshot(now)
        if not state.reachable:
            return None
        if state.garbage:
            return formats.garbage_body(device.next_garbage("mqtt"), device, state, now)
        return formats.encode(formats.vietloa(device, state, now))

    async def _publish(self, client: aiomqtt.Client, device: SimDevice) -> None:
        payload = self.payload(device)
        if payload is None:
            return
        delay = device.snapshot(self.clock()).slow_delay_s
        if delay:  # a slow device's heartbeat arrives late
            task = asyncio.create_task(self._publish_later(client, device.address, payload, delay))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
            return
        await client.publish(device.address, payload, qos=1, timeout=self.publish_timeout_s)
        self.published += 1

    async def _publish_later(self, client: aiomqtt.Client, topic: str, payload: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, payload, qos=1, timeout=self.publish_timeout_s)
            self.published += 1
