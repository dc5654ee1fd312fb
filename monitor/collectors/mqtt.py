"""MQTT: devices behind carrier NAT publish their status; we subscribe (aiomqtt) and map it.

`MqttListener.run()` connects, subscribes to one topic filter (QoS 1), and turns each message
into an observation through the device's profile: the topic names the device (`resolve_topic`,
given by the wiring, maps it to its `PollTarget`), the payload is the vendor's JSON. A payload
that is not JSON is a failed observation (`bad_json`) for that device; a topic that names no
device is counted (event `unknown_topic`) and ignored; so is a retained message (an old status
replayed by the broker is not news of the device). When the broker goes away, it reconnects with
exponential backoff (doubling, capped, with jitter so a thousand collectors do not come back in
step) and subscribes again, until cancelled: one log line when the broker is lost, one when it is
back (and a reminder a minute while it stays away), never one per attempt.

The session is clean: a status is a full snapshot repeated every interval, so nothing published
while the listener was away needs replaying, and a replay would be harmful: an observation is dated
when it is heard, so an hour-old queued status would pass for news (and the broker keeps only the
oldest ones once its queue for us is full). The time the listener could not hear is kept instead
(`away_periods`, from the moment it can no longer vouch for the connection to the new subscription)
and taken out of MQTT devices' silence by the collector, which also counts silence only up to
`heard_until`: a half-open connection is noticed by the keepalive only within twice its period.

`EmbeddedBroker` wraps amqtt's broker for `monitor demo` when no broker is configured; production
points at the operator's broker (Mosquitto or another).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from monitor.collectors.errors import FailureKind, UnknownProfile
from monitor.collectors.liveness import KEEP_STALLS_S, MAX_STALLS, Stall
from monitor.collectors.mapping import failed_observation, observation_from_json
from monitor.collectors.profiles import ProfileRegistry
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget
from monitor.failures import REPEAT_S
from monitor.health.machine import Observation

if TYPE_CHECKING:
    from amqtt.broker import Broker

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
#: Beyond twice the keepalive: paho checks it once a second, pings after one silent period, gives up after two.
KEEPALIVE_SLACK_S = 2.0
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

    `client_id` names the connection (two listeners with one id take the broker from each other); the
    session is clean whatever it is. `connected` is set while subscribed. `clock` dates observations and
    the periods the listener could not hear (the collector's clock).
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
        clock: Callable[[], datetime] | None = None,
        deaf_since: datetime | None = None,
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
        self.clock = clock or _utcnow
        self.connected = asyncio.Event()
        self.connections = 0  # subscriptions made, the first one included
        self.attempts_failed = 0  # connections or subscriptions that failed, since the start
        self.outages = 0  # times the broker was lost or could not be reached, once each however long
        self.outage_seconds = 0.0
        self.last_message_at: datetime | None = None
        self._subscribed_at: datetime | None = None
        self._away_since: datetime | None = None
        self._away: deque[Stall] = deque(maxlen=MAX_STALLS)
        self._warned_profiles: set[str] = set()
        # Nobody heard the broker since then: the last MQTT heartbeat saved before this listener started (a
        # collector restarted, or the pool's push role taken over from one that stopped). Excused too.
        self._deaf_since = deaf_since

    async def run(self) -> None:
        """Listen until cancelled, reconnecting whenever the broker goes away."""
        now = self.clock()  # nothing is heard before the first subscription either, nor since the last one heard
        self._away_since = min(self._deaf_since, now) if self._deaf_since is not None else now
        failures = 0  # attempts failed in a row: the backoff's exponent
        attempts = 0  # attempts failed in this outage: for the log
        said = up = 0.0
        while True:
            try:
                async with aiomqtt.Client(
                    **self._client_args,
                    identifier=self.client_id,
                    clean_session=True,
                    keepalive=self.keepalive_s,
                ) as client:
                    granted = await client.subscribe(self.topic_filter, qos=1)
                    if any(getattr(code, "is_failure", False) for code in granted):  # e.g. an ACL denies it
                        raise aiomqtt.MqttError(f"the broker refused the subscription to {self.topic_filter!r}")
                    up = time.monotonic()
                    self._back(attempts)
                    attempts = 0
                    async for message in client.messages:
                        await self.handle(str(message.topic), message.payload, retained=message.retain)
                        self.last_message_at = self.clock()  # the connection was alive then (after its observation)
            except aiomqtt.MqttError as exc:
                self.counters.event("mqtt", FailureKind.BROKER.value)
                if self.connected.is_set():
                    # A connection that drops at once (another listener with our id?) does not reset the backoff.
                    if time.monotonic() - up >= self.backoff_max_s:
                        failures = 0
                    self._lost(exc)
                    said = time.monotonic()
                else:
                    self.attempts_failed += 1
                    attempts += 1
                    if attempts == 1 and self.connections == 0:
                        said = time.monotonic()
                        log.warning(
                            "MQTT broker %s unreachable (%s): retrying with backoff up to %g s; MQTT heartbeat "
                            "silence is not counted until it is reached",
                            self.broker,
                            exc,
                            self.backoff_max_s,
                        )
                    elif time.monotonic() - said >= REPEAT_S:
                        said = time.monotonic()
                        log.warning(
                            "MQTT broker %s still away (%d attempts failed since %s): %s",
                            self.broker,
                            attempts,
                            _since(self._away_since),
                            exc,
                        )
                failures += 1
                await asyncio.sleep(self.backoff_delay(failures))
            finally:
                self.connected.clear()

    def backoff_delay(self, failures: int) -> float:
        """Seconds to wait after `failures` attempts in a row failed: doubling, capped, with jitter."""
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(failures - 1, 32))
        return delay * random.uniform(0.5, 1.0)  # jitter: collectors must not reconnect in step

    def _back(self, attempts: int) -> None:
        """Subscribed: the period since the broker was lost (or since the start) is over."""
        now = self.clock()
        away_since = self._away_since or now
        self._away_since = None
        self._subscribed_at = now
        self.connections += 1
        self._away.append(Stall("mqtt_broker", away_since, now))
        while self._away and (now - self._away[0].end).total_seconds() > KEEP_STALLS_S:
            self._away.popleft()
        lost = self.connections > 1
        if lost or attempts:
            self.outages += 1
            self.outage_seconds += (now - away_since).total_seconds()
        if lost:
            self.counters.event("mqtt", "reconnected")
        self.connected.set()
        if lost or attempts:
            log.warning(
                "MQTT broker %s back after %.1f s (%d attempts failed): subscribed to %r; MQTT heartbeat "
                "silence of that time is not counted",
                self.broker,
                (now - away_since).total_seconds(),
                attempts,
                self.topic_filter,
            )
        else:
            log.info("MQTT: subscribed to %r on %s", self.topic_filter, self.broker)

    def _lost(self, exc: BaseException) -> None:
        """The subscription is gone: the listener cannot hear from when it can no longer vouch for it."""
        now = self.clock()
        self._away_since = self.heard_until(now) or now
        self.connected.clear()
        log.warning(
            "MQTT broker %s lost (%s): reconnecting with backoff up to %g s; MQTT heartbeat silence is not "
            "counted until it is back",
            self.broker,
            exc,
            self.backoff_max_s,
        )

    def heard_until(self, now: datetime) -> datetime | None:
        """Up to when the listener can vouch it heard everything published (None while not subscribed).

        A connection that died without a word is noticed by the keepalive only within about twice its
        period: until then, only the last message or the subscription proves that it was alive.
        """
        if not self.connected.is_set() or self._subscribed_at is None:
            return None
        proven = max(self._subscribed_at, self.last_message_at or self._subscribed_at)
        return min(now, max(proven, now - timedelta(seconds=2 * self.keepalive_s + KEEPALIVE_SLACK_S)))

    def away_periods(self) -> list[tuple[datetime, datetime]]:
        """The periods, over, when the listener could not hear: from losing the broker (or from the start)
        to the subscription that followed. Silence in them is not the devices' (see `HealthStore.tick_silent`)."""
        return [(stall.start, stall.end) for stall in self._away]

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
        observed_at = self.clock()
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


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _since(moment: datetime | None) -> str:
    return "?" if moment is None else moment.isoformat(timespec="seconds")


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


__all__ = [
    "KEEPALIVE_SLACK_S",
    "MAX_PAYLOAD_BYTES",
    "EmbeddedBroker",
    "MqttListener",
    "ObservationSink",
    "parse_broker_url",
]
