"""Persisting health: apply observations and heartbeat silence to the stored state, write the outbox.

The machine (`machine.py`) decides; this module only loads, saves and records. Each call is one
transaction: new states and their `StateChange` rows commit together or not at all, so a crash
never loses a transition nor records one twice. Rows are locked while they are judged
(`FOR UPDATE` on PostgreSQL; SQLite has one writer at a time), so a web process taking heartbeats
and a collector polling can share the database safely.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.config import Settings
from monitor.db import begin_write, utcnow
from monitor.health.leases import PUSH_SHARD, SHARDS, ShardFence, unheld_filter
from monitor.health.machine import (
    DEFAULT_POLICY,
    DeviceHealth,
    HealthPolicy,
    Observation,
    Transition,
    next_silence_deadline,
    observe,
    tick,
    unwatched,
)
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState
from monitor.inventory.choices import Protocol
from monitor.inventory.models import Device

log = logging.getLogger(__name__)

HEALTH = DeviceHealthRow.__table__  # type: ignore[attr-defined]
CHANGES = StateChange.__table__  # type: ignore[attr-defined]
DEVICES = Device.__table__  # type: ignore[attr-defined]
PUSH_PROTOCOLS = frozenset({Protocol.MQTT.value, Protocol.HEARTBEAT.value})
_CHUNK = 500  # ids per IN (...) clause: well under SQLite's and PostgreSQL's parameter limits
#: Periods when the service could not hear (start, end): silence in them is not counted (see `tick`).
Excused = Sequence[tuple[datetime, datetime]]
#: Shown states of push devices expected to keep reporting (for judging the ingest, see `ingest_facts`).
REPORTING_STATES = (DeviceState.UP.value, DeviceState.DEGRADED.value, DeviceState.MAINTENANCE.value)


@dataclass(frozen=True, slots=True)
class IngestFacts:
    """What the database says of one push protocol's ingest: the newest observation of any of its devices,
    the oldest of those newer than a given time, and how many devices are expected to report (with the
    longest interval among them)."""

    last_heard: datetime | None
    first_heard_after: datetime | None
    expected: int
    longest_interval_s: int


@dataclass(frozen=True, slots=True)
class DeviceTransition:
    """A transition of one device, as written to the outbox."""

    device_id: int
    transition: Transition


@dataclass(frozen=True, slots=True)
class _Judged:
    device_id: int
    protocol: str
    interval_s: int
    before: DeviceHealth
    after: DeviceHealth
    latest: Observation | None


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _silence_deadline(
    health: DeviceHealth, protocol: str, interval_s: int, policy: HealthPolicy, excused: Excused = ()
) -> datetime | None:
    """When a silent push device next counts a missed heartbeat; None for polled or down devices."""
    if protocol not in PUSH_PROTOCOLS or health.true_state is DeviceState.DOWN:
        return None
    return next_silence_deadline(health, interval_s, policy, excused)


class HealthStore:
    """Loads, judges and saves device health; the only writer of `device_health` and `state_changes`."""

    def __init__(self, engine: Engine, policy: HealthPolicy = DEFAULT_POLICY) -> None:
        self.engine = engine
        self.policy = policy
        self.fenced = 0  # observations refused by a fence since the start (the shard moved to another collector)

    # --- reading ----------------------------------------------------------------------------

    def _lock_rows(self, connection: Connection, ids: Sequence[int], *, skip_locked: bool = False) -> dict[int, Any]:
        rows: dict[int, Any] = {}
        for chunk in _chunks(ids):
            # Only what judging needs: decoding the readings and faults of every row would cost more.
            query = sa.select(HEALTH.c.device_id, HEALTH.c.data).where(HEALTH.c.device_id.in_(chunk))
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=skip_locked)
            rows.update({row.device_id: row for row in connection.execute(query)})
        return rows

    def _ensure_rows(self, connection: Connection, ids: Sequence[int], now: datetime) -> None:
        """Create the health row of devices judged for the first time (concurrent creators are fine)."""
        initial = DeviceHealth.initial(since=now)
        values = [self._row_values(device_id, initial, None, Protocol.HTTP.value, 60, now) for device_id in ids]
        if not values:
            return
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            connection.execute(pg_insert(HEALTH).on_conflict_do_nothing(index_elements=["device_id"]), values)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            connection.execute(sqlite_insert(HEALTH).on_conflict_do_nothing(index_elements=["device_id"]), values)

    def _device_info(self, connection: Connection, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        info: dict[int, tuple[str, int]] = {}
        for chunk in _chunks(ids):
            query = sa.select(DEVICES.c.id, DEVICES.c.protocol, DEVICES.c.interval_s).where(DEVICES.c.id.in_(chunk))
            info.update({row.id: (row.protocol, row.interval_s) for row in connection.execute(query)})
        return info

    # --- writing ----------------------------------------------------------------------------

    def _row_values(
        self,
        device_id: int,
        health: DeviceHealth,
        latest: Observation | None,
        protocol: str,
        interval_s: int,
        now: datetime,
        excused: Excused = (),
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "device_id": device_id,
            "state": health.state.value,
            "since": health.since,
            "faults": sorted(health.faults),
            "flapping": health.flapping,
            "last_seen": health.last_seen,
            "last_observation_at": health.last_observation_at,
            "last_error": (health.last_error or None) and health.last_error[:300],
            "silence_deadline": _silence_deadline(health, protocol, interval_s, self.policy, excused),
            "data": health.to_dict(),
            "updated_at": now,
        }
        if latest is None:
            values.setdefault("readings", {})
            values.setdefault("latency_s", None)
        else:
            values["latency_s"] = latest.latency_s
            values["readings"] = dict(latest.readings) if latest.reachable else {}
        return values

    def _save(
        self,
        connection: Connection,
        judged: Sequence[_Judged],
        transitions: Sequence[DeviceTransition],
        now: datetime,
        excused: Excused = (),
    ) -> None:
        with_readings = [
            self._row_values(j.device_id, j.after, j.latest, j.protocol, j.interval_s, now)
            for j in judged
            if j.latest is not None and j.latest.reachable
        ]
        without_readings = []
        for j in judged:
            if j.latest is not None and j.latest.reachable:
                continue
            values = self._row_values(j.device_id, j.after, None, j.protocol, j.interval_s, now, excused)
            values.pop("readings")  # a failure keeps the last readings known
            values.pop("latency_s")
            without_readings.append(values)
        for batch in (with_readings, without_readings):
            if not batch:
                continue
            columns = [c for c in batch[0] if c != "device_id"]
            statement = (
                HEALTH.update()
                .where(HEALTH.c.device_id == sa.bindparam("b_device_id"))
                .values({c: sa.bindparam(f"b_{c}") for c in columns})
            )
            connection.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in batch])
        if transitions:
            connection.execute(
                CHANGES.insert(),
                [
                    {
                        "device_id": t.device_id,
                        "old_state": t.transition.old.value,
                        "new_state": t.transition.new.value,
                        "at": t.transition.at,
                        "reason": t.transition.reason[:300],
                        "faults": sorted(t.transition.faults),
                        "faults_added": sorted(t.transition.faults_added),
                        "faults_removed": sorted(t.transition.faults_removed),
                        "flapping": t.transition.flapping,
                        "created_at": now,
                    }
                    for t in transitions
                ],
            )

    # --- the two ways health changes ----------------------------------------------------------

    def apply(
        self, observations: Sequence[Observation], now: datetime | None = None, fence: ShardFence | None = None
    ) -> list[DeviceTransition]:
        """Judge a batch of observations (any devices, any order) and save the results in one transaction.

        Observations of devices that no longer exist are dropped; per device they apply in time order. With a
        `fence` (a collector of the pool), those of shards the writer no longer holds under its epoch are
        refused in the same transaction (counted in `fenced`): a successor's judgement is never overwritten.
        """
        if not observations:
            return []
        now = now or utcnow()
        by_device: dict[int, list[Observation]] = defaultdict(list)
        for obs in observations:
            by_device[obs.device_id].append(obs)
        with self.engine.begin() as connection:
            begin_write(connection)
            info = self._device_info(connection, sorted(by_device))
            ids = sorted(info)
            if len(ids) < len(by_device):
                log.info("dropped observations of %d deleted devices", len(by_device) - len(ids))
            if fence is not None:
                pushed = frozenset(i for i in ids if by_device[i][0].source in PUSH_PROTOCOLS)
                admitted = fence.admit(connection, ids, pushed)
                refused = [i for i in ids if i not in admitted]
                if refused:
                    self.fenced += sum(len(by_device[i]) for i in refused)
                    log.warning(
                        "refused %d observations of %d devices: their shards are no longer this collector's",
                        sum(len(by_device[i]) for i in refused),
                        len(refused),
                    )
                    ids = [i for i in ids if i in admitted]
            rows = self._lock_rows(connection, ids)
            missing = [i for i in ids if i not in rows]
            if missing:
                self._ensure_rows(connection, missing, now)
                rows.update(self._lock_rows(connection, missing))
            judged: list[_Judged] = []
            transitions: list[DeviceTransition] = []
            for device_id in ids:
                before = DeviceHealth.from_dict(rows[device_id].data)
                health = before
                for obs in sorted(by_device[device_id], key=lambda o: o.observed_at):
                    health, changed = observe(health, obs, self.policy)
                    transitions += [DeviceTransition(device_id, t) for t in changed]
                latest = max(by_device[device_id], key=lambda o: o.observed_at)
                protocol, interval_s = info[device_id]
                judged.append(_Judged(device_id, protocol, interval_s, before, health, latest))
            self._save(connection, judged, transitions, now)
        return transitions

    def tick_silent(
        self,
        now: datetime | None = None,
        limit: int = 5000,
        protocols: Iterable[str] = PUSH_PROTOCOLS,
        excused: Excused = (),
        fence: ShardFence | None = None,
    ) -> list[DeviceTransition]:
        """Count missed heartbeats of push devices whose silence deadline has passed.

        `protocols` leaves some out, e.g. MQTT devices while the collector cannot reach the broker:
        their silence says nothing about them then. `excused` are periods when the service itself could
        not hear (its loop stalled, its database away, its ingest silent): they are taken out of every
        device's silence, and the deadlines saved are pushed back by them. With a `fence`, nothing is counted
        unless the writer still holds the push role (shard 0) under its epoch.
        """
        now = now or utcnow()
        protocols = frozenset(protocols) & PUSH_PROTOCOLS
        if not protocols:
            return []
        with self.engine.begin() as connection:
            begin_write(connection)
            if fence is not None and not fence.holds_push(connection):
                return []
            query = (
                sa.select(HEALTH, DEVICES.c.protocol, DEVICES.c.interval_s, DEVICES.c.active)
                .join(DEVICES, DEVICES.c.id == HEALTH.c.device_id)
                .where(HEALTH.c.silence_deadline <= now, DEVICES.c.protocol.in_(sorted(protocols)))
                .order_by(HEALTH.c.silence_deadline)
                .limit(limit)
            )
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(of=HEALTH, skip_locked=True)
            judged: list[_Judged] = []
            transitions: list[DeviceTransition] = []
            for row in connection.execute(query).all():
                before = DeviceHealth.from_dict(row.data)
                if not row.active or row.protocol not in PUSH_PROTOCOLS:
                    after = before  # no longer a watched push device: saving clears its deadline
                    protocol = Protocol.HTTP.value
                else:
                    after, changed = tick(before, now, row.interval_s, self.policy, excused)
                    transitions += [DeviceTransition(row.device_id, t) for t in changed]
                    protocol = row.protocol
                judged.append(_Judged(row.device_id, protocol, row.interval_s, before, after, None))
            self._save(connection, judged, transitions, now, excused)
        return transitions

    def mark_unwatched(
        self, shards: Sequence[int], shard_count: int, grace_s: float, now: datetime | None = None
    ) -> list[DeviceTransition]:
        """Make the active devices of pool shards held by nobody `unknown` (see `machine.unwatched`).

        The shards are locked and checked again in the same transaction, so a shard claimed meanwhile is left
        to its new collector (a claim skips locked shards and takes them at its next round).
        """
        if not shards:
            return []
        now = now or utcnow()
        with self.engine.begin() as connection:
            still = list(
                connection.execute(
                    sa.select(SHARDS.c.shard)
                    .where(SHARDS.c.shard.in_(list(shards)), unheld_filter(grace_s))
                    .with_for_update()
                ).scalars()
            )
            if not still:
                return []
            query = (
                sa.select(HEALTH.c.device_id, HEALTH.c.data, DEVICES.c.protocol, DEVICES.c.interval_s)
                .join(DEVICES, DEVICES.c.id == HEALTH.c.device_id)
                .where(DEVICES.c.active.is_(True), HEALTH.c.state != DeviceState.UNKNOWN.value)
                .where(
                    # Polled devices by their own shard; MQTT devices are heard by shard 0's holder; devices
                    # pushing heartbeats to the web process are heard whatever the pool does.
                    sa.or_(
                        sa.and_(
                            DEVICES.c.protocol.not_in(sorted(PUSH_PROTOCOLS)), (DEVICES.c.id % shard_count).in_(still)
                        ),
                        sa.and_(DEVICES.c.protocol == Protocol.MQTT.value, sa.literal(PUSH_SHARD in still)),
                    )
                )
                .with_for_update(of=HEALTH)
            )
            judged: list[_Judged] = []
            transitions: list[DeviceTransition] = []
            for row in connection.execute(query).all():
                before = DeviceHealth.from_dict(row.data)
                after, changed = unwatched(before, now, self.policy)
                if not changed and after == before:
                    continue
                transitions += [DeviceTransition(row.device_id, t) for t in changed]
                judged.append(_Judged(row.device_id, row.protocol, row.interval_s, before, after, None))
            self._save(connection, judged, transitions, now)
        return transitions

    def ingest_facts(self, protocol: str, after: datetime | None = None) -> IngestFacts:
        """How the heartbeats of one push protocol reach the database (for `IngestWatch`), in one read.

        Devices of the protocol that are active and have a health row count; `after` picks the oldest
        newest-observation later than it (the first device heard again after a gap).
        """
        reporting = HEALTH.c.state.in_(REPORTING_STATES)
        first_after = (
            sa.func.min(sa.case((HEALTH.c.last_observation_at > after, HEALTH.c.last_observation_at)))
            if after is not None
            else sa.null()
        )
        query = (
            sa.select(
                sa.func.max(HEALTH.c.last_observation_at).label("last_heard"),
                first_after.label("first_after"),
                sa.func.count().filter(reporting).label("expected"),
                sa.func.max(sa.case((reporting, DEVICES.c.interval_s))).label("longest"),
            )
            .select_from(HEALTH.join(DEVICES, DEVICES.c.id == HEALTH.c.device_id))
            .where(DEVICES.c.protocol == protocol, DEVICES.c.active.is_(True))
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).one()
        return IngestFacts(
            last_heard=_as_utc(row.last_heard),
            first_heard_after=_as_utc(row.first_after),
            expected=int(row.expected or 0),
            longest_interval_s=int(row.longest or 0),
        )

    def start_watching(self, device_ids: Sequence[int], now: datetime | None = None) -> None:
        """Give push devices never heard a health row, so that their silence is counted from now."""
        now = now or utcnow()
        with self.engine.begin() as connection:
            begin_write(connection)
            existing = self._lock_rows(connection, sorted(device_ids))
            missing = [i for i in sorted(set(device_ids)) if i not in existing]
            if not missing:
                return
            info = self._device_info(connection, missing)
            self._ensure_rows(connection, sorted(info), now)
            initial = DeviceHealth.initial(since=now)
            judged = [_Judged(i, p, s, initial, initial, None) for i, (p, s) in info.items()]
            self._save(connection, judged, [], now)


def _as_utc(value: Any) -> datetime | None:
    """An aggregate's datetime as an aware UTC datetime (SQLite returns aggregates of dates as text)."""
    if value is None:
        return None
    parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def policy_from_settings(settings: Settings) -> HealthPolicy:
    """The machine's policy as the deployment configured it."""
    return HealthPolicy(
        failures_to_down=settings.failures_to_down,
        successes_to_up=settings.successes_to_up,
        heartbeat_grace_s=settings.heartbeat_grace_s,
    )


def current_states(engine: Engine, device_ids: Iterable[int] | None = None) -> Mapping[int, DeviceState]:
    """The shown state of devices (all when `device_ids` is None); devices never judged are absent."""
    query = sa.select(HEALTH.c.device_id, HEALTH.c.state)
    with engine.connect() as connection:
        if device_ids is None:
            return {r.device_id: DeviceState(r.state) for r in connection.execute(query)}
        ids = sorted(set(device_ids))
        result: dict[int, DeviceState] = {}
        for chunk in _chunks(ids):
            rows = connection.execute(query.where(HEALTH.c.device_id.in_(chunk)))
            result.update({r.device_id: DeviceState(r.state) for r in rows})
        return result
