"""The per-device health state machine: plain functions over frozen dataclasses, no I/O.

    observe(health, observation, policy)        a poll result, heartbeat or trap arrived
    tick(health, now, expected_interval_s, ...) time passed: count missed heartbeats of a push device
    set_maintenance(health, on, now, policy)    an operator started or ended maintenance
    collector_blind(results)                    did a whole sweep fail? then it is the collector's own network

Each returns the new `DeviceHealth` and the `Transition`s that happened, which the caller writes
as state-change rows (the outbox). The rules:

- Confirm before declaring. `failures_to_down` consecutive failures take a device down (from
  unknown, up or degraded); `successes_to_up` consecutive successes bring it back from down. A
  device never heard (`unknown`) is up or degraded on its first success: there was nothing to
  confirm. A failure resets the success count and vice versa.
- Reachable with faults is `degraded`; up <-> degraded is immediate, and a change of the fault set
  while degraded is a transition degraded -> degraded (`faults_added`, `faults_removed`), so alerts
  can keep one problem per fault.
- A down device keeps the faults it last reported, plus `offline`: what cannot be seen is not
  fixed. A failed observation says nothing about faults. The fault set is replaced by the next
  confirmed success.
- Out-of-order observations (older than the last one) change nothing.
- Maintenance is shown (`state` is `maintenance`) but the machine keeps counting underneath
  (`true_state`, `faults`) without emitting transitions; when it ends, one transition
  maintenance -> the true state, with the faults that changed meanwhile, so a device that went down
  during maintenance is never hidden.
- Flapping: changes of the true state outside maintenance are remembered for `flap_window_s`;
  when they reach `flap_threshold` the flag is set (on the transition that set it) and it clears,
  silently, after `flap_clear_after_s` without a change: callers compare `flapping` before and after.
- A transition's time is never before the time the shown state began, so transition times of one
  device never go backwards.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from monitor.health.states import DeviceState, FaultCode

OFFLINE = FaultCode.OFFLINE.value
NO_HEARTBEAT = "no_heartbeat"
UNREACHABLE = "unreachable"
SOURCES = frozenset({"http", "snmp", "mqtt", "heartbeat", "trap"})


def _require_aware(name: str, value: datetime) -> None:
    # Naive datetimes compare wrongly with stored UTC times; refuse them where they come in.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about one device, the same shape whatever the protocol that produced it.

    `reachable` is False for a failed poll (then `error` says why: "timeout", "bad_json"…).
    `faults` are fault codes (see `FaultCode`; a profile may add its own) and are only
    considered when the device was reachable.
    """

    device_id: int
    observed_at: datetime
    source: str
    reachable: bool
    latency_s: float | None = None
    readings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    faults: frozenset[str] = frozenset()
    error: str | None = None

    def __post_init__(self) -> None:
        _require_aware("observed_at", self.observed_at)
        if self.source not in SOURCES:
            raise ValueError(f"unknown observation source {self.source!r}, expected one of {sorted(SOURCES)}")
        # Frozen all the way down: a shared observation cannot be changed behind the machine's back.
        object.__setattr__(self, "readings", types.MappingProxyType(dict(self.readings)))
        object.__setattr__(self, "faults", frozenset(self.faults))


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How sure the machine must be before declaring a change, and what counts as flapping.

    `flap_clear_s` defaults to twice `flap_window_s` (read it through `flap_clear_after_s`).
    `heartbeat_grace_s` is the silence allowed beyond a push device's interval before a
    heartbeat counts as missed.
    """

    failures_to_down: int = 3
    successes_to_up: int = 2
    flap_window_s: float = 3600.0
    flap_threshold: int = 5
    flap_clear_s: float | None = None
    heartbeat_grace_s: float = 30.0

    def __post_init__(self) -> None:
        if self.failures_to_down < 1 or self.successes_to_up < 1:
            raise ValueError("failures_to_down and successes_to_up must be at least 1")
        if self.flap_threshold < 2:
            raise ValueError("flap_threshold must be at least 2 (one change is not flapping)")
        if self.flap_window_s <= 0 or self.heartbeat_grace_s < 0:
            raise ValueError("flap_window_s must be positive and heartbeat_grace_s not negative")
        if self.flap_clear_s is not None and self.flap_clear_s <= 0:
            raise ValueError("flap_clear_s must be positive")

    @property
    def flap_clear_after_s(self) -> float:
        """Quiet time that clears the flapping flag."""
        return self.flap_clear_s if self.flap_clear_s is not None else 2 * self.flap_window_s


DEFAULT_POLICY = HealthPolicy()


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What the service knows about one device's health: persisted between observations.

    `state` is what people see; `true_state` is what the device really is, which differs only
    during maintenance. `since` is when `state` began. `last_seen` is the last reachable
    observation, `last_observation_at` the last observation of any kind (later ones are refused
    when older). `recent_changes` are the times of true-state changes inside the flap window,
    `last_change_at` the time of the latest one. `silence_counted_until` is the deadline of the
    last missed heartbeat already counted by `tick`. `faults_before_maintenance` is the fault set
    when maintenance began, against which its end reports what changed.
    """

    state: DeviceState = DeviceState.UNKNOWN
    true_state: DeviceState = DeviceState.UNKNOWN
    since: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    faults: frozenset[str] = frozenset()
    last_seen: datetime | None = None
    last_observation_at: datetime | None = None
    recent_changes: tuple[datetime, ...] = ()
    last_change_at: datetime | None = None
    flapping: bool = False
    in_maintenance: bool = False
    faults_before_maintenance: frozenset[str] = frozenset()
    last_error: str | None = None
    silence_counted_until: datetime | None = None

    @classmethod
    def initial(cls, since: datetime | None = None) -> DeviceHealth:
        """A device nothing is known about yet; `since` is when watching it began."""
        if since is not None:
            _require_aware("since", since)
        return cls(since=since)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (ISO timestamps, sorted fault lists) that `from_dict` reads back."""
        return {
            "state": self.state.value,
            "true_state": self.true_state.value,
            "since": _iso(self.since),
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "faults": sorted(self.faults),
            "last_seen": _iso(self.last_seen),
            "last_observation_at": _iso(self.last_observation_at),
            "recent_changes": [t.isoformat() for t in self.recent_changes],
            "last_change_at": _iso(self.last_change_at),
            "flapping": self.flapping,
            "in_maintenance": self.in_maintenance,
            "faults_before_maintenance": sorted(self.faults_before_maintenance),
            "last_error": self.last_error,
            "silence_counted_until": _iso(self.silence_counted_until),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceHealth:
        """Read back what `to_dict` wrote; a missing key takes its default, so old rows still load."""
        state = DeviceState(data.get("state", DeviceState.UNKNOWN.value))
        return cls(
            state=state,
            # Older rows may lack true_state: outside maintenance it is the shown state.
            true_state=DeviceState(data.get("true_state", state.value)),
            since=_from_iso(data.get("since")),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            consecutive_successes=int(data.get("consecutive_successes", 0)),
            faults=frozenset(data.get("faults", ())),
            last_seen=_from_iso(data.get("last_seen")),
            last_observation_at=_from_iso(data.get("last_observation_at")),
            recent_changes=tuple(_parse_iso(t) for t in data.get("recent_changes", ())),
            last_change_at=_from_iso(data.get("last_change_at")),
            flapping=bool(data.get("flapping", False)),
            in_maintenance=bool(data.get("in_maintenance", False)),
            faults_before_maintenance=frozenset(data.get("faults_before_maintenance", ())),
            last_error=data.get("last_error"),
            silence_counted_until=_from_iso(data.get("silence_counted_until")),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    _require_aware("stored timestamp", parsed)
    return parsed


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else _parse_iso(value)


@dataclass(frozen=True, slots=True)
class Transition:
    """A change people may need to act on: the shown state changed, or the faults of a degraded device.

    `reason` is short English text, machine-readable first ("3 consecutive failures: timeout").
    `faults` is the fault set after the change; `flapping` is the flag after it.
    """

    old: DeviceState
    new: DeviceState
    at: datetime
    reason: str
    faults: frozenset[str] = frozenset()
    faults_added: frozenset[str] = frozenset()
    faults_removed: frozenset[str] = frozenset()
    flapping: bool = False


def observe(
    health: DeviceHealth, observation: Observation, policy: HealthPolicy = DEFAULT_POLICY
) -> tuple[DeviceHealth, list[Transition]]:
    """Apply one observation; return the new health and the transitions it caused (zero or one)."""
    at = observation.observed_at
    if health.last_observation_at is not None and at < health.last_observation_at:
        return health, []
    health = _age(health, at, policy)
    # One copy of the state per observation (it is the collector's hot path): what observing sets goes
    # into the same `replace` as the counters.
    if observation.reachable:
        return _succeed(health, at, observation.faults, policy, last_observation_at=at, last_seen=at, last_error=None)
    return _fail(health, at, observation.error or UNREACHABLE, policy, last_observation_at=at)


def tick(
    health: DeviceHealth,
    now: datetime,
    expected_interval_s: float,
    policy: HealthPolicy = DEFAULT_POLICY,
    excused: Sequence[tuple[datetime, datetime]] = (),
) -> tuple[DeviceHealth, list[Transition]]:
    """Count the heartbeats a push device missed up to `now`, each as one failure.

    Silence is measured from the last observation (for a device never heard, from `since`; a
    device with neither starts being watched now). The first heartbeat is missed once
    `interval + grace` has passed without news, then one more each `interval`. Each missed one is
    counted once however often `tick` is called (`silence_counted_until` is the deadline of the
    last one counted, and counting resumes from there), and its failure is dated at its deadline.

    `excused` are periods when the service itself could not hear (its collector stalled, its database
    away, its ingest silent): silence in them is not the device's, so every deadline after one is
    pushed back by the part of it that fell in the device's silence. Without them, nothing changes.
    """
    _require_aware("now", now)
    if not expected_interval_s > 0:
        raise ValueError(f"expected_interval_s must be positive, got {expected_interval_s}")
    health = _age(health, now, policy)
    anchor = health.last_observation_at or health.since
    if anchor is None:
        return replace(health, since=now), []
    interval = timedelta(seconds=expected_interval_s)
    counted = health.silence_counted_until
    # Resume after the last missed heartbeat counted, unless news came since: then a fresh silence.
    base = (
        counted if counted is not None and counted >= anchor else anchor + timedelta(seconds=policy.heartbeat_grace_s)
    )
    # Excused time is taken out of the silence: measure it on a clock that stops during those periods.
    silence_start = counted if counted is not None and counted >= anchor else anchor
    periods = _excused_after(excused, silence_start) if excused else []
    virtual_now = now - _excused_within(periods, silence_start, now) if periods else now
    if virtual_now <= base + interval:
        return health, []
    # Heartbeat k is missed when base + k * interval < now: silence *beyond* the deadline.
    missed = (virtual_now - base - timedelta(microseconds=1)) // interval
    transitions: list[Transition] = []
    k = 1
    # One at a time until down (each may be a transition), then the rest at once: a month of
    # silence must not cost a month of iterations.
    while k <= missed and health.true_state is not DeviceState.DOWN:
        health, changed = _fail(health, _real(periods, silence_start, base + k * interval), NO_HEARTBEAT, policy)
        transitions += changed
        k += 1
    if k <= missed:
        health = replace(
            health,
            consecutive_failures=health.consecutive_failures + missed - k + 1,
            consecutive_successes=0,
            last_error=NO_HEARTBEAT,
        )
    health = replace(health, silence_counted_until=_real(periods, silence_start, base + missed * interval))
    # Failures are dated at their deadlines, before `now`: age again so that a second tick at the
    # same `now` finds nothing left to do.
    return _age(health, now, policy), transitions


def next_silence_deadline(
    health: DeviceHealth,
    expected_interval_s: float,
    policy: HealthPolicy = DEFAULT_POLICY,
    excused: Sequence[tuple[datetime, datetime]] = (),
) -> datetime | None:
    """When `tick` will next count a missed heartbeat of this silent device (None: never heard nor watched)."""
    anchor = health.last_observation_at or health.since
    if anchor is None:
        return None
    counted = health.silence_counted_until
    interval = timedelta(seconds=expected_interval_s)
    if counted is not None and counted >= anchor:
        silence_start, base = counted, counted
    else:
        silence_start, base = anchor, anchor + timedelta(seconds=policy.heartbeat_grace_s)
    if not excused:
        return base + interval
    return _real(_excused_after(excused, silence_start), silence_start, base + interval)


def set_maintenance(
    health: DeviceHealth, on: bool, now: datetime, policy: HealthPolicy = DEFAULT_POLICY
) -> tuple[DeviceHealth, list[Transition]]:
    """Start (`on=True`) or end maintenance; ending it always shows the true state again.

    Asking for what is already the case changes nothing.
    """
    _require_aware("now", now)
    if on == health.in_maintenance:
        return health, []
    health = _age(health, now, policy)
    at = _not_before_since(health, now)
    if on:
        started = replace(
            health,
            state=DeviceState.MAINTENANCE,
            since=at,
            in_maintenance=True,
            faults_before_maintenance=health.faults,
        )
        return started, [
            Transition(
                health.state,
                DeviceState.MAINTENANCE,
                at,
                "maintenance started",
                health.faults,
                flapping=health.flapping,
            )
        ]
    before = health.faults_before_maintenance
    ended = replace(
        health, state=health.true_state, since=at, in_maintenance=False, faults_before_maintenance=frozenset()
    )
    reason = f"maintenance ended: {health.true_state.value}"
    return ended, [
        Transition(
            DeviceState.MAINTENANCE,
            health.true_state,
            at,
            reason,
            health.faults,
            faults_added=health.faults - before,
            faults_removed=before - health.faults,
            flapping=health.flapping,
        )
    ]


UNWATCHED_REASON = "no collector polls it: its shard is held by none"


def unwatched(
    health: DeviceHealth, now: datetime, policy: HealthPolicy = DEFAULT_POLICY
) -> tuple[DeviceHealth, list[Transition]]:
    """Nobody hears the device any more (its shard of the collectors' pool is held by no collector): `unknown`.

    Not `down`: the service's own trouble is never the device's. Its faults stay as they were (a device down
    before stays with `offline`, so its problem and ticket stay open) and its counters start again, so that
    whatever the next collector hears is confirmed afresh. Already unknown: nothing changes.
    """
    _require_aware("now", now)
    if health.true_state is DeviceState.UNKNOWN:
        return health, []
    health = replace(_age(health, now, policy), consecutive_failures=0, consecutive_successes=0)
    return _become(health, DeviceState.UNKNOWN, health.faults, now, UNWATCHED_REASON, policy)


def collector_blind(results: Mapping[str, tuple[int, int]], minimum_attempted: int = 20) -> bool:
    """Whether one sweep failed for every device of every protocol: the collector, not the fleet, is cut off.

    `results` maps a protocol to `(attempted, failed)` for the sweep. It is blind when at least
    `minimum_attempted` devices were tried in total and every one of them failed; then the caller
    must not feed those failures to the machine (or the whole province would go down at once).
    """
    attempted_total = 0
    for protocol, (attempted, failed) in results.items():
        if attempted < 0 or not 0 <= failed <= attempted:
            raise ValueError(f"{protocol}: need 0 <= failed <= attempted, got attempted={attempted} failed={failed}")
        if failed < attempted:
            return False
        attempted_total += attempted
    return attempted_total >= minimum_attempted


def _succeed(
    health: DeviceHealth, at: datetime, faults: frozenset[str], policy: HealthPolicy, **also: Any
) -> tuple[DeviceHealth, list[Transition]]:
    """A success; `also` are further fields to set in the same copy."""
    health = replace(health, consecutive_failures=0, consecutive_successes=health.consecutive_successes + 1, **also)
    reachable_state = DeviceState.DEGRADED if faults else DeviceState.UP
    was = health.true_state
    if was is DeviceState.DOWN:
        if health.consecutive_successes < policy.successes_to_up:
            return health, []
        reason = f"{health.consecutive_successes} consecutive successes"
    elif was is DeviceState.UNKNOWN:
        reason = "first success"
    elif reachable_state is DeviceState.UP:
        reason = "faults cleared" if was is DeviceState.DEGRADED else "reachable"
    elif was is DeviceState.UP:
        reason = "reachable with faults"
    else:
        reason = "faults changed"
    if faults:
        reason += ": " + ", ".join(sorted(faults))
    return _become(health, reachable_state, faults, at, reason, policy)


def _fail(
    health: DeviceHealth, at: datetime, error: str, policy: HealthPolicy, **also: Any
) -> tuple[DeviceHealth, list[Transition]]:
    """A failure; `also` are further fields to set in the same copy."""
    health = replace(
        health,
        consecutive_failures=health.consecutive_failures + 1,
        consecutive_successes=0,
        last_error=error,
        **also,
    )
    if health.true_state is DeviceState.DOWN or health.consecutive_failures < policy.failures_to_down:
        return health, []
    reason = f"{health.consecutive_failures} consecutive failures: {error}"
    return _become(health, DeviceState.DOWN, health.faults | {OFFLINE}, at, reason, policy)


def _become(
    health: DeviceHealth, new: DeviceState, faults: frozenset[str], at: datetime, reason: str, policy: HealthPolicy
) -> tuple[DeviceHealth, list[Transition]]:
    """Move the true state to `new` with `faults`; emit a transition unless in maintenance or nothing changed."""
    state_changed = new is not health.true_state
    if not state_changed and faults == health.faults:
        return health, []
    at = _not_before_since(health, at)
    if state_changed and not health.in_maintenance:
        window_start = at - timedelta(seconds=policy.flap_window_s)
        recent = (*(t for t in health.recent_changes if t > window_start), at)
        health = replace(
            health,
            recent_changes=recent,
            last_change_at=at,
            flapping=health.flapping or len(recent) >= policy.flap_threshold,
        )
    old_faults = health.faults
    health = replace(health, true_state=new, faults=faults)
    if health.in_maintenance:
        return health, []
    old_state = health.state
    health = replace(health, state=new, since=at if state_changed else health.since)
    return health, [
        Transition(
            old_state,
            new,
            at,
            reason,
            faults,
            faults_added=faults - old_faults,
            faults_removed=old_faults - faults,
            flapping=health.flapping,
        )
    ]


def _not_before_since(health: DeviceHealth, at: datetime) -> datetime:
    return at if health.since is None or at >= health.since else health.since


def _excused_after(excused: Sequence[tuple[datetime, datetime]], start: datetime) -> list[tuple[datetime, datetime]]:
    """The excused periods after `start`, clipped to it, sorted and joined where they overlap."""
    joined: list[tuple[datetime, datetime]] = []
    for begin, end in sorted((max(b, start), e) for b, e in excused if e > start):
        if joined and begin <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((begin, end))
    return joined


def _excused_within(periods: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> timedelta:
    """How much of [start, end] the (joined, clipped) periods cover."""
    total = timedelta(0)
    for begin, finish in periods:
        if finish > start and begin < end:
            total += min(finish, end) - max(begin, start)
    return total


def _real(periods: Sequence[tuple[datetime, datetime]], start: datetime, virtual: datetime) -> datetime:
    """The real time at which the stopped clock of `_excused_within` (started at `start`) shows `virtual`."""
    at, remaining = start, virtual - start
    for begin, finish in periods:
        if at + remaining <= begin:
            break
        remaining -= max(timedelta(0), begin - at)
        at = max(at, finish)
    return at + remaining


def _age(health: DeviceHealth, now: datetime, policy: HealthPolicy) -> DeviceHealth:
    """Forget changes that left the flap window and clear the flag after a long enough quiet."""
    window_start = now - timedelta(seconds=policy.flap_window_s)
    recent = tuple(t for t in health.recent_changes if t > window_start)
    quiet = health.last_change_at is None or (now - health.last_change_at).total_seconds() >= policy.flap_clear_after_s
    if recent == health.recent_changes and not (health.flapping and quiet):
        return health
    return replace(health, recent_changes=recent, flapping=health.flapping and not quiet)


__all__ = [
    "DEFAULT_POLICY",
    "NO_HEARTBEAT",
    "OFFLINE",
    "DeviceHealth",
    "HealthPolicy",
    "Observation",
    "Transition",
    "collector_blind",
    "next_silence_deadline",
    "observe",
    "set_maintenance",
    "tick",
    "unwatched",
]
