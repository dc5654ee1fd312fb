"""Leased shards: the fleet split into a fixed number of shards, each polled by one live collector at a time.

    collector A ──claim/renew (every lease/3)──► collector_shards (shard, owner, epoch, expires_at)
    collector B ──claim/renew──────────────────►        ▲ FOR SHARE in every health write:
    collector C ──register (collector_members)──        │ a write whose shard's (owner, epoch) moved is refused

A device belongs to shard `device_id % shard_count` (ids are dense, so the shards are even). A collector of the
pool registers itself (`collector_members`, renewed with its leases), counts the live members and takes its
fair share, `ceil(shards / members)`: it claims free or lapsed shards, and gives back what it holds beyond
its share, so that a collector joining takes work from the others within a renewal or two. Every claim
increments the shard's epoch; every renewal names the epoch it holds, and a renewal that does not come back
(lost to another collector, or the database away) ends the collector's hold on that shard at once.

Fencing. A collector's writes of health carry its epochs (`ShardFence`): in the same transaction as the
write, the shards' rows are read `FOR SHARE`, and the observations of a shard whose owner or epoch is no
longer the writer's are refused (counted). A claim is an `UPDATE` of the same row, so it waits for a write
under way and every later write sees the new epoch: a collector paused for longer than its lease (SIGSTOP,
a long GC, a VM migration) that wakes up cannot overwrite its successor's judgement.

Times are the database's (`now()`), never a collector's clock: the leases do not depend on the collectors'
clocks agreeing. The pool needs PostgreSQL (row locks, `SKIP LOCKED`); SQLite runs one collector.

Pushed heartbeats: the holder of shard 0 also listens to the MQTT broker and counts push devices' silence
(one listener for the fleet); those writes are fenced by shard 0's epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime
from monitor.errors import MonitorError

log = logging.getLogger(__name__)
PUSH_SHARD = 0  # its holder hears the MQTT broker and counts push devices' silence


class CollectorShard(SQLModel, table=True):
    """One shard of the fleet: who holds it, under which epoch, until when (the database's time)."""

    __tablename__ = "collector_shards"

    shard: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    owner: str | None = Field(default=None, max_length=120)
    epoch: int = Field(default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"})
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CollectorMember(SQLModel, table=True):
    """A live collector of the pool (its registration lapses with its leases)."""

    __tablename__ = "collector_members"

    name: str = Field(primary_key=True, max_length=120)
    started_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


SHARDS = CollectorShard.__table__  # type: ignore[attr-defined]
MEMBERS = CollectorMember.__table__  # type: ignore[attr-defined]


class PoolNeedsPostgres(MonitorError):
    """The collectors' pool was asked for on a database that cannot hold leases (SQLite)."""


def shard_of(device_id: int, shard_count: int) -> int:
    """The shard a device belongs to."""
    return device_id % shard_count


def _interval(seconds: float) -> sa.ColumnElement[datetime]:
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _require_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise PoolNeedsPostgres(
            "the collectors' pool (monitor collect without --shard) needs PostgreSQL to hold its leases; "
            "on SQLite run one collector: monitor collect --shard 0/1"
        )


def ensure_shards(engine: Engine, shard_count: int) -> None:
    """Create the shard rows 0..shard_count-1 (idempotent); refuse a pool whose count differs from the table's.

    Changing the number of shards moves most devices to another shard: stop every collector, then
    `DELETE FROM collector_shards` and start them with the new count.
    """
    _require_postgres(engine)
    from sqlalchemy.dialects.postgresql import insert

    with engine.begin() as connection:
        existing = connection.execute(sa.select(sa.func.count()).select_from(SHARDS)).scalar_one()
        if existing and existing != shard_count:
            raise PoolNeedsPostgres(
                f"the pool has {existing} shards in the database and this collector was started with "
                f"{shard_count} (MONITOR_COLLECTOR_SHARDS): stop every collector, empty collector_shards, start again"
            )
        if not existing:
            rows = [{"shard": shard, "epoch": 0} for shard in range(shard_count)]
            connection.execute(insert(SHARDS).on_conflict_do_nothing(index_elements=["shard"]), rows)
            # Unheld from now: the watch counts a shard nobody claims from its creation.
            connection.execute(sa.update(SHARDS).where(SHARDS.c.expires_at.is_(None)).values(expires_at=sa.func.now()))


@dataclass
class Held:
    """What a collector holds now: each shard with its epoch."""

    epochs: dict[int, int] = field(default_factory=dict)

    @property
    def shards(self) -> frozenset[int]:
        return frozenset(self.epochs)


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one round of the lease keeper changed."""

    held: dict[int, int]
    lost: tuple[int, ...]
    claimed: tuple[int, ...]
    released: tuple[int, ...]
    members: int
    next_lapse_s: float | None = None  # until the earliest lease it does not renew lapses, by the database's clock


class Leases:
    """One collector's side of the pool: register, renew what it holds, claim its share, give back the excess.

    `round()` is one step, run every third of the lease (and just after a lease it does not renew lapses,
    `LeaseRound.next_lapse_s`); it returns what it holds afterwards. It raises if
    the database cannot be reached: the caller then drops every shard at once (it can no longer be sure of
    any), and calls `round()` again later.
    """

    def __init__(self, engine: Engine, name: str, *, shard_count: int, lease_s: float) -> None:
        _require_postgres(engine)
        self.engine = engine
        self.name = name
        self.shard_count = shard_count
        self.lease_s = lease_s
        self.held = Held()

    def round(self) -> LeaseRound:
        before = dict(self.held.epochs)
        with self.engine.begin() as connection:
            members = self._register(connection)
            kept = self._renew(connection, before)
            share = math.ceil(self.shard_count / max(1, members))
            released: list[int] = []
            if len(kept) > share:
                released = self._release(connection, sorted(kept)[share:])
                for shard in released:
                    kept.pop(shard, None)
            claimed = self._claim(connection, share - len(kept)) if len(kept) < share else {}
            held = {**kept, **claimed}
            next_lapse_s = self._next_lapse_s(connection, held)
        self.held = Held(held)
        lost = tuple(sorted(set(before) - set(kept) - set(released)))
        if lost:
            log.error("lost the lease of shards %s (another collector took them, or a renewal came too late)", lost)
        return LeaseRound(held, lost, tuple(sorted(claimed)), tuple(released), members, next_lapse_s)

    def drop_all(self) -> None:
        """Forget every shard held (the database could not be reached: none of them is sure any more)."""
        if self.held.epochs:
            log.error("lease renewal failed: stopped polling shards %s", sorted(self.held.epochs))
        self.held = Held()

    def leave(self) -> None:
        """Give every shard back and leave the pool (a clean stop): the others take them at their next round."""
        with self.engine.begin() as connection:
            self._release(connection, sorted(self.held.epochs))
            connection.execute(sa.delete(MEMBERS).where(MEMBERS.c.name == self.name))
        self.held = Held()

    # --- steps, in the round's transaction ---------------------------------------------------------

    def _register(self, connection: Connection) -> int:
        from sqlalchemy.dialects.postgresql import insert

        expires = _interval(self.lease_s)
        connection.execute(
            insert(MEMBERS)
            .values(name=self.name, started_at=sa.func.now(), expires_at=expires)
            .on_conflict_do_update(index_elements=["name"], set_={"expires_at": expires})
        )
        live = sa.select(sa.func.count()).select_from(MEMBERS).where(MEMBERS.c.expires_at > sa.func.now())
        return int(connection.execute(live).scalar_one())

    def _renew(self, connection: Connection, held: Mapping[int, int]) -> dict[int, int]:
        if not held:
            return {}
        pairs = sa.tuple_(SHARDS.c.shard, SHARDS.c.epoch).in_([(s, e) for s, e in held.items()])
        renewed = connection.execute(
            sa.update(SHARDS)
            .where(pairs, SHARDS.c.owner == self.name)
            .values(expires_at=_interval(self.lease_s))
            .returning(SHARDS.c.shard, SHARDS.c.epoch)
        )
        return {row.shard: row.epoch for row in renewed}

    def _claim(self, connection: Connection, wanted: int) -> dict[int, int]:
        if wanted <= 0:
            return {}
        free = (
            sa.select(SHARDS.c.shard)
            .where(
                sa.or_(SHARDS.c.owner.is_(None), SHARDS.c.expires_at.is_(None), SHARDS.c.expires_at <= sa.func.now())
            )
            .order_by(SHARDS.c.shard)
            .limit(wanted)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = connection.execute(
            sa.update(SHARDS)
            .where(SHARDS.c.shard.in_(free))
            .values(
                owner=self.name, epoch=SHARDS.c.epoch + 1, expires_at=_interval(self.lease_s), claimed_at=sa.func.now()
            )
            .returning(SHARDS.c.shard, SHARDS.c.epoch)
        )
        return {row.shard: row.epoch for row in claimed}

    def _next_lapse_s(self, connection: Connection, held: Mapping[int, int]) -> float | None:
        """Seconds until the earliest lease this collector does not renew lapses: another collector's
        registration, or a shard it does not hold (None: no such lease).

        A live collector renews every third of its lease, so its leases stay at least two thirds of a lease
        ahead; one that comes within a renewal period of lapsing has stopped renewing, and the keeper's next
        round is set just after that moment: the dead collector's shards are taken when its lease ends, not up
        to a renewal period later (the soak's takeovers took 13-20 s with a 15 s lease). The shards of this
        collector's name that it does not hold count too: a collector restarted under its name (systemd) takes
        back its previous life's shards when their leases end.
        """
        others = sa.and_(
            SHARDS.c.owner.is_not(None), SHARDS.c.shard.not_in(list(held)), SHARDS.c.expires_at > sa.func.now()
        )
        member = sa.select(sa.func.min(MEMBERS.c.expires_at)).where(
            MEMBERS.c.name != self.name, MEMBERS.c.expires_at > sa.func.now()
        )
        shard = sa.select(sa.func.min(SHARDS.c.expires_at)).where(others)
        earliest = sa.func.least(member.scalar_subquery(), shard.scalar_subquery())
        seconds = connection.execute(sa.select(sa.extract("epoch", earliest - sa.func.now()))).scalar_one()
        return None if seconds is None else max(0.0, float(seconds))

    def _release(self, connection: Connection, shards: Sequence[int]) -> list[int]:
        if not shards:
            return []
        released = connection.execute(
            sa.update(SHARDS)
            .where(SHARDS.c.shard.in_(list(shards)), SHARDS.c.owner == self.name)
            .values(owner=None, expires_at=sa.func.now())
            .returning(SHARDS.c.shard)
        )
        return sorted(row.shard for row in released)


@dataclass(frozen=True, slots=True)
class ShardFence:
    """A collector's epochs, checked inside its health writes (see the module's docstring).

    `admit` keeps the device ids whose shard the writer still holds under the same epoch, reading those
    shards' rows `FOR SHARE` in the write's own transaction; `push` marks ids written under the push role
    (shard 0's epoch) whatever their own shard.
    """

    owner: str
    epochs: Mapping[int, int]
    shard_count: int

    def admit(self, connection: Connection, device_ids: Iterable[int], push: frozenset[int] = frozenset()) -> set[int]:
        wanted: dict[int, int] = {}
        for device_id in device_ids:
            wanted[device_id] = PUSH_SHARD if device_id in push else shard_of(device_id, self.shard_count)
        shards = sorted(set(wanted.values()))
        if not shards:
            return set()
        rows = connection.execute(
            sa.select(SHARDS.c.shard, SHARDS.c.owner, SHARDS.c.epoch)
            .where(SHARDS.c.shard.in_(shards))
            .with_for_update(read=True)
        ).all()
        current = {row.shard for row in rows if row.owner == self.owner and self.epochs.get(row.shard) == row.epoch}
        return {device_id for device_id, shard in wanted.items() if shard in current}

    def holds_push(self, connection: Connection) -> bool:
        """Whether the writer still holds shard 0 under its epoch (for push devices' silence)."""
        return bool(self.admit(connection, [PUSH_SHARD], frozenset({PUSH_SHARD})))


def unheld_filter(grace_s: float) -> sa.ColumnElement[bool]:
    """Shards nobody holds, for longer than `grace_s` (released, lapsed, or never claimed)."""
    lapsed = SHARDS.c.expires_at <= sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_s)
    return sa.or_(lapsed, sa.and_(SHARDS.c.owner.is_(None), SHARDS.c.expires_at.is_(None)))


def unheld_shards(engine: Engine, grace_s: float) -> tuple[int, list[int]]:
    """The pool's number of shards (0: no pool on this database) and those held by nobody for over `grace_s`."""
    if engine.dialect.name != "postgresql":
        return 0, []
    with engine.connect() as connection:
        count = int(connection.execute(sa.select(sa.func.count()).select_from(SHARDS)).scalar_one())
        if not count:
            return 0, []
        unheld = connection.execute(sa.select(SHARDS.c.shard).where(unheld_filter(grace_s)).order_by(SHARDS.c.shard))
        return count, list(unheld.scalars())


def pool_state(engine: Engine) -> list[dict[str, object]]:
    """The shards as the database has them now, with whether each lease is current (for status and metrics)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                SHARDS.c.shard,
                SHARDS.c.owner,
                SHARDS.c.epoch,
                SHARDS.c.expires_at,
                (SHARDS.c.expires_at > sa.func.now()).label("current"),
            ).order_by(SHARDS.c.shard)
        ).all()
    return [dict(row._mapping) for row in rows]


__all__ = [
    "PUSH_SHARD",
    "CollectorMember",
    "CollectorShard",
    "Held",
    "LeaseRound",
    "Leases",
    "PoolNeedsPostgres",
    "ShardFence",
    "ensure_shards",
    "pool_state",
    "shard_of",
    "unheld_filter",
    "unheld_shards",
]
