"""Leased shards on a real PostgreSQL (monitor.health.leases): shares, takeover, fencing, leaving, joining.

Leases of one or two seconds keep the tests short; the database's clock decides when a lease has lapsed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from monitor.collectors.pool import PoolMember
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import load_settings
from monitor.db import make_engine, session_scope
from monitor.health.leases import (
    PUSH_SHARD,
    SHARDS,
    Leases,
    PoolNeedsPostgres,
    ShardFence,
    ensure_shards,
    pool_state,
    shard_of,
)
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.models import Commune, Device
from monitor.inventory.units import init_province, load_units
from tests.conftest import _fresh_database_url

pytestmark = pytest.mark.postgres
SHARD_COUNT = 12


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(load_settings(database_url=_fresh_database_url(request, "postgres", tmp_path)))
    ensure_shards(engine, SHARD_COUNT)
    yield engine
    engine.dispose()


def member(engine: Engine, name: str, lease_s: float = 2.0) -> Leases:
    return Leases(engine, name, shard_count=SHARD_COUNT, lease_s=lease_s)


def test_the_pool_refuses_sqlite_and_a_changed_shard_count(pg: Engine, tmp_path: Path) -> None:
    sqlite = make_engine(load_settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(PoolNeedsPostgres, match="needs PostgreSQL"):
        Leases(sqlite, "a", shard_count=4, lease_s=3)
    with pytest.raises(PoolNeedsPostgres, match="has 12 shards"):
        ensure_shards(pg, 16)
    ensure_shards(pg, SHARD_COUNT)  # the same count again: nothing to do
    assert [row["shard"] for row in pool_state(pg)] == list(range(SHARD_COUNT))


def test_three_collectors_share_the_shards_disjointly(pg: Engine) -> None:
    members = [member(pg, name) for name in "abc"]
    for _ in range(3):
        for m in members:
            m.round()
    held = [m.held.shards for m in members]
    assert sorted(len(h) for h in held) == [4, 4, 4]
    assert frozenset().union(*held) == frozenset(range(SHARD_COUNT))
    assert sum(len(h) for h in held) == SHARD_COUNT  # no shard twice
    rows = {row["shard"]: row for row in pool_state(pg)}
    for m in members:
        for shard, epoch in m.held.epochs.items():
            assert rows[shard]["owner"] == m.name and rows[shard]["epoch"] == epoch and rows[shard]["current"]


def test_a_round_says_when_the_next_lease_it_does_not_renew_lapses(pg: Engine) -> None:
    """The keeper's next round is set just after that moment (a dead collector's shards are taken when its
    lease ends): the round reports it by the database's clock, and nothing for a collector alone."""
    a, b = member(pg, "a", lease_s=3.0), member(pg, "b", lease_s=3.0)
    assert a.round().next_lapse_s is None  # alone: nobody else's lease to wait for
    b.round()
    lapse = a.round().next_lapse_s
    assert lapse is not None and 2.0 < lapse <= 3.0, lapse  # b renewed just before, for 3 s
    time.sleep(1.0)  # b stops renewing: its lease comes nearer
    later = a.round().next_lapse_s
    assert later is not None and later < lapse - 0.8, (lapse, later)
    time.sleep(later + 0.1)
    taken = a.round()  # just after the lapse: b's shards are a's now
    assert a.held.shards == frozenset(range(SHARD_COUNT)) and taken.claimed and taken.next_lapse_s is None

    # a killed and restarted under its name (as systemd does): the new life holds nothing yet, and its previous
    # life's leases are the ones it waits for.
    again = member(pg, "a", lease_s=3.0)
    first = again.round()
    assert not first.claimed and first.next_lapse_s is not None and first.next_lapse_s <= 3.0, first
    time.sleep(first.next_lapse_s + 0.1)
    assert again.round().claimed and again.held.shards == frozenset(range(SHARD_COUNT))


def test_a_lapsed_collectors_shards_are_taken_over_with_a_new_epoch_and_its_writes_are_refused(pg: Engine) -> None:
    with session_scope(pg) as session:
        init_province(session, load_units("lang-son", "2020"))
        commune = session.exec(select(Commune.code).limit(1)).one()
        devices = [
            Device(
                code=f"D{i:03d}",
                name=f"D{i}",
                kind="radio_cluster",
                commune_code=commune,
                protocol="http",
                profile="generic-http",
                address=f"http://127.0.0.1:1/{i}",
                interval_s=60,
            )
            for i in range(24)
        ]
        session.add_all(devices)
        session.flush()
        ids = [d.id for d in devices if d.id is not None]
    a, b = member(pg, "a", lease_s=1.0), member(pg, "b", lease_s=1.0)
    a.round()
    assert a.held.shards == frozenset(range(SHARD_COUNT))  # alone: everything
    stale = ShardFence("a", dict(a.held.epochs), SHARD_COUNT)
    b.round()  # b joins: its share is 6, nothing is free yet
    assert b.held.shards == frozenset()

    time.sleep(1.3)  # a stops renewing (paused): its leases lapse by the database's clock
    taken = b.round()
    assert taken.members == 1  # a's registration lapsed with its leases: b's share is the whole fleet
    assert len(taken.claimed) == SHARD_COUNT
    for shard in taken.claimed:
        assert b.held.epochs[shard] == stale.epochs[shard] + 1

    store = HealthStore(pg)
    now = datetime.now(UTC)
    mine = [i for i in ids if shard_of(i, SHARD_COUNT) in b.held.shards]
    theirs = [i for i in ids if shard_of(i, SHARD_COUNT) not in b.held.shards]
    observations = [Observation(device_id=i, observed_at=now, reachable=True, source="http") for i in ids]
    assert not theirs
    store.apply(observations, now, fence=stale)  # a wakes up and writes everything with its old epochs
    with pg.connect() as connection:
        written = set(connection.execute(sa.text("SELECT device_id FROM device_health")).scalars())
    assert written == set() and store.fenced == len(mine)  # refused, all of it
    store.apply(observations, now, fence=ShardFence("b", dict(b.held.epochs), SHARD_COUNT))
    with pg.connect() as connection:
        written = set(connection.execute(sa.text("SELECT device_id FROM device_health")).scalars())
    assert written == set(ids)  # the successor's writes go through

    lost = a.round()  # a's next round: every shard is lost to it; it registers again, with nothing free
    assert set(lost.lost) == set(range(SHARD_COUNT)) and a.held.shards == frozenset() and lost.members == 2
    b.round()  # b sees two members: gives half back, which a claims at its next round
    a.round()
    assert len(a.held.shards) == len(b.held.shards) == 6 and a.held.shards.isdisjoint(b.held.shards)


def test_a_claim_never_takes_a_shard_under_a_write_and_the_write_after_it_is_refused(pg: Engine) -> None:
    a, b = member(pg, "a", lease_s=1.0), member(pg, "b", lease_s=1.0)
    a.round()
    fence = ShardFence("a", dict(a.held.epochs), SHARD_COUNT)
    time.sleep(1.2)  # lapsed, not yet taken

    with pg.begin() as connection:  # a's write transaction: its fence check locks shards 0-2's rows
        assert fence.admit(connection, [0, 1, 2]) == {0, 1, 2}
        done: list[object] = []
        thread = threading.Thread(target=lambda: done.append(b.round()))
        thread.start()
        thread.join(10)
        assert b.held.shards == frozenset(range(3, SHARD_COUNT))  # skipped what a is writing under
    with pg.begin() as connection:
        assert fence.admit(connection, [3, 4, 5]) == set()  # a's writes to the moved shards are refused
        assert fence.admit(connection, [0, 1, 2]) == {0, 1, 2}  # still a's: nobody took them
    b.round()
    assert b.held.shards == frozenset(range(SHARD_COUNT))
    with pg.begin() as connection:
        assert fence.admit(connection, [0, 1, 2]) == set()


def test_a_collector_that_leaves_hands_over_at_once_and_a_newcomer_gets_its_share(pg: Engine) -> None:
    a, b = member(pg, "a"), member(pg, "b")
    a.round()
    b.round()
    a.round()  # a sees two members: gives back the half above its share
    assert len(a.held.shards) == 6
    b.round()
    assert len(b.held.shards) == 6 and a.held.shards.isdisjoint(b.held.shards)
    a.leave()
    assert all(row["owner"] != "a" for row in pool_state(pg))
    with pg.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM collector_members")).scalar_one() == 1
    b.round()  # no waiting for a lease to lapse
    assert b.held.shards == frozenset(range(SHARD_COUNT))
    c = member(pg, f"c-{uuid.uuid4().hex[:4]}")
    c.round()
    b.round()
    c.round()
    assert len(c.held.shards) == 6 and len(b.held.shards) == 6


def test_a_renewal_that_fails_drops_everything(pg: Engine) -> None:
    a = member(pg, "a")
    a.round()
    assert a.held.shards
    with pg.begin() as connection:  # someone else moved shard 3 under a (an operator, a successor)
        connection.execute(sa.update(SHARDS).where(SHARDS.c.shard == 3).values(epoch=SHARDS.c.epoch + 7))
    done = a.round()
    assert 3 in done.lost and 3 not in a.held.shards
    a.drop_all()
    assert a.held.shards == frozenset()


def test_a_collector_that_lost_the_push_role_counts_no_missed_heartbeat(pg: Engine) -> None:
    """The collector's silence counting carries its fence (monitor.collectors.runner `_tick_silent`): one paused
    past its lease, still believing it holds shard 0, counts nothing once another has taken shard 0 over."""
    with session_scope(pg) as session:
        init_province(session, load_units("lang-son", "2020"))
        commune = session.exec(select(Commune.code).limit(1)).one()
        pushed = Device(
            code="HB01",
            name="HB01",
            kind="radio_cluster",
            commune_code=commune,
            protocol="heartbeat",
            profile="tts-heartbeat",
            interval_s=60,
        )
        session.add(pushed)
        session.flush()
        device_id = pushed.id
    settings = load_settings(database_url=pg.url.render_as_string(hide_password=False))
    store = HealthStore(pg)
    then = datetime.now(UTC) - timedelta(minutes=10)
    store.apply([Observation(device_id=device_id, observed_at=then, reachable=True, source="heartbeat")], then)

    a, b = member(pg, "a", lease_s=1.0), member(pg, "b", lease_s=1.0)
    a.round()
    assert PUSH_SHARD in a.held.epochs
    paused = Collector(settings, pg, registry=load_profiles(), pool=PoolMember(a), store=store)
    time.sleep(1.3)  # a is paused: its leases lapse, b takes everything (shard 0 included)
    b.round()
    assert PUSH_SHARD in b.held.epochs and PUSH_SHARD in a.held.epochs  # a still believes it holds shard 0

    with pg.connect() as connection:
        deadline = connection.execute(
            sa.text("SELECT silence_deadline FROM device_health WHERE device_id = :d"), {"d": device_id}
        ).scalar_one()
    assert paused._tick_silent(datetime.now(UTC), ["heartbeat"], []) == []
    with pg.connect() as connection:
        after = connection.execute(
            sa.text("SELECT silence_deadline, data FROM device_health WHERE device_id = :d"), {"d": device_id}
        ).one()
    assert after.silence_deadline == deadline  # nothing counted, nothing moved

    successor = Collector(settings, pg, registry=load_profiles(), pool=PoolMember(b), store=store)
    assert successor._tick_silent(datetime.now(UTC), ["heartbeat"], []) != []  # b counts: down after 10 min
