"""MQTT: devices behind carrier NAT publish their status; we subscribe (aiomqtt) and map it.

`MqttListener.run()` connects, subscribes to one topic filter (QoS 1), and turns each message
into an observation through the device's profile: the topic names the device (`resolve_topic`,
given by the wiring, maps it to its `PollTarget`), the payload is the vendor's JSON. A payload
that is not JSON is a failed observation (`bad_json`) for that device; a topic that names no
device is counted (event `unknown_topic`) and ignored; so is a retained message (an old status
replayed by the broker is not news of the device). When the broker goes away, it reconnects with
exponential backoff (doubling, capped, with jitter so a thousand collectors do not come back in
step) and subscribes again, until cancelled.

`EmbeddedBroker` wraps amqtt's broker for `monitor demo` when no broker is configured; production
points at the operator's broker (Mosquitto or another).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from monitor.collectors.errors import FailureKind, UnknownProfile
from monitor.collectors.mapping import failed_observation, observation_from_json
from monitor.collectors.profiles import ProfileRegistry
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation

if TYPE_CHECKING:
    from amqtt.broker import Broker

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}

ObservationSink = Callable[[Observation], Awaitable[None] | None]


def parse_broker_url(url: str) -> dict[str, Any]:
    """`mqtt://[user[:password]@]host[:port]` (or mqtts:// for TLS) as aiomqtt.Client arguments."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError(f"not an MQTT broker URL (mqtt://host:port or mqtts://...): {url!r}")
    tls = _SCHEMES[parts.scheme]
    return {
        "hostname": parts.hostname,
        "port": parts.port or (8883 if tls else 1883),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "tls_context": ssl.create_default_context() if tls else None,
    }


class MqttListener:
    """Subscribes to device topics and delivers one observation per message (see the module docstring).

    `client_id` makes the session persistent (clean_session off): the broker keeps QoS 1 messages
    published while this collector was away. Each collector process needs its own id then.
    """

    def __init__(
        self,
        broker_url: str,
        topic_filter: str,
        resolve_topic: Callable[[str], PollTarget | None],
        registry: ProfileRegistry,
        on_observation: ObservationSink,
        counters: OutcomeCounters | None = None,
        *,
        client_id: str | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        keepalive_s: int = 30,
    ) -> None:
        self._client_args = parse_broker_url(broker_url)
        self.broker = f"{self._client_args['hostname']}:{self._client_args['port']}"
        self.topic_filter = topic_filter
        self.resolve_topic = resolve_topic
        self.registry = registry
        self.on_observation = on_observation
        self.counters = counters if counters is not None else OutcomeCounters()
        self.client_id = client_id
        self.max_payload_bytes = max_payload_bytes
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.keepalive_s = keepalive_s
        self.connected = asyncio.Event()
        self.connections = 0
        self._warned_profiles: set[str] = set()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting whenever the broker goes away."""
        failures = 0
        while True:
            try:
                async with aiomqtt.Client(
                    **self._client_args,
                    identifier=self.client_id,
                    clean_session=self.client_id is None,
                    keepalive=self.keepalive_s,
                ) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    failures = 0
                    self.connections += 1
                    self.connected.set()
                    log.info("MQTT: subscribed to %r on %s", self.topic_filter, self.broker)
                    async for message in client.messages:
                        await self.handle(str(message.topic), message.payload, retained=message.retain)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self.counters.event("mqtt", FailureKind.BROKER.value)
                delay = min(self.backoff_max_s, self.backoff_initial_s * 2**failures)
                delay *= random.uniform(0.5, 1.0)  # jitter: collectors must not reconnect in step
                failures += 1
                log.warning("MQTT broker %s: %s; reconnecting in %.1f s", self.broker, exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()

    async def handle(self, topic: str, payload: Any, *, retained: bool = False) -> Observation | None:
        """One message: map it and hand it to `on_observation`; returns the observation (None when ignored)."""
        observation = self.observation_for(topic, payload, retained=retained)
        if observation is None:
            return None
        try:
            result = self.on_observation(observation)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # One failing delivery must not stop the listener for the whole fleet; it is logged whole.
            self.counters.event("mqtt", "callback_error")
            log.exception("MQTT: delivering the observation of device %d failed", observation.device_id)
        return observation

    def observation_for(self, topic: str, payload: Any, *, retained: bool = False) -> Observation | None:
        """The observation a message makes, or None when it names no device or is a retained replay."""
        if retained:
            self.counters.event("mqtt", "retained_ignored")
            return None
        target = self.resolve_topic(topic)
        if target is None:
            self.counters.event("mqtt", "unknown_topic")
            return None
        try:
            profile = self.registry.get(target.profile)
        except UnknownProfile as exc:
            self.counters.event("mqtt", "unknown_profile")
            if target.profile not in self._warned_profiles:
                self._warned_profiles.add(target.profile)
                log.warning("MQTT: device %s: %s", target.code, exc)
            return None
        observed_at = datetime.now(UTC)
        body = _as_bytes(payload)
        if len(body) > self.max_payload_bytes:
            detail = f"payload of {len(body)} bytes is over the {self.max_payload_bytes}-byte cap"
            observation = failed_observation(target.device_id, observed_at, "mqtt", FailureKind.TOO_LARGE, detail)
        else:
            observation = observation_from_json(
                profile, body, device_id=target.device_id, observed_at=observed_at, source="mqtt"
            )
        self.counters.record_observation(observation)
        return observation


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


class EmbeddedBroker:
    """An MQTT broker inside this process (amqtt), anonymous, for the demo when none is configured."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start listening (inside the running loop)."""
        from amqtt.broker import Broker  # imported only when a demo needs it

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        await broker.start()
        self._broker = broker
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        """Stop the broker and close its connections."""
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None


__all__ = ["MAX_PAYLOAD_BYTES", "EmbeddedBroker", "MqttListener", "ObservationSink", "parse_broker_url"]
