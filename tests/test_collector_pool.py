"""The collectors' pool with real processes: three `monitor collect` on a real PostgreSQL, polling the project's
simulator over loopback; one killed with -9, another stopped (SIGSTOP) for longer than its lease.

A history of what the database said is recorded every 0.25 s, then checked, Jepsen-style:
- every shard is held by one collector at a time (per epoch, one owner; epochs only grow);
- a dead collector's shards are taken over within two lease periods, and their devices polled again within
  the lease and their interval;
- the paused collector's writes after its shards moved are refused (the shard's epoch moved on), and once
  it runs again it takes its share back;
- no device is declared down (the simulated fleet is healthy throughout): the collectors' own deaths and
  pauses are never the devices' fault.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.config import load_settings
from monitor.db import make_engine, session_scope
from monitor.inventory.choices import Protocol
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from tests.conftest import TEST_SECRET, _fresh_database_url
from tests.peers import free_port, stop_process

pytestmark = pytest.mark.postgres
SHARDS = 8
LEASE_S = 3.0
INTERVAL_S = 4


@dataclass
class Sample:
    at: float
    owners: dict[int, tuple[str | None, int, bool]]  # shard -> (owner, epoch, current)
    last_polled: dict[int, datetime | None]  # device id -> last observation


@dataclass
class Pool:
    engine: Engine
    env: dict[str, str]
    folder: Path
    device_ids: list[int]
    collectors: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    history: list[Sample] = field(default_factory=list)

    def start(self, name: str) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.metrics_ports[name] = port = free_port()
        self.collectors[name] = subprocess.Popen(
            [sys.executable, "-m", "monitor", "collect", "--name", name, "--metrics-port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def sample(self) -> Sample:
        with self.engine.connect() as connection:
            shards = connection.execute(
                sa.text("SELECT shard, owner, epoch, expires_at > now() AS current FROM collector_shards")
            ).all()
            polled = connection.execute(sa.text("SELECT device_id, last_observation_at FROM device_health")).all()
        found = Sample(
            time.monotonic(),
            {row.shard: (row.owner, row.epoch, bool(row.current)) for row in shards},
            {row.device_id: row.last_observation_at for row in polled},
        )
        self.history.append(found)
        return found

    def record_until(self, condition: object, timeout_s: float, what: str) -> Sample:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            now = self.sample()
            if callable(condition) and condition(now):
                return now
            time.sleep(0.25)
        raise AssertionError(f"not within {timeout_s} s: {what}\nlast: {self.history[-1].owners}")

    def metric(self, name: str, family: str) -> float:
        """One unlabelled family of a collector's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(family + " "):
                return float(line.split()[1])
        raise AssertionError(f"{family} not in {name}'s metrics")

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()


def _held_by(sample: Sample, name: str) -> set[int]:
    return {shard for shard, (owner, _e, current) in sample.owners.items() if owner == name and current}


def _all_held_by(sample: Sample, names: set[str]) -> bool:
    return all(owner in names and current for owner, _e, current in sample.owners.values())


@pytest.fixture
def pool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pool]:
    url = _fresh_database_url(request, "postgres", tmp_path)
    engine = make_engine(load_settings(database_url=url))
    http_port, snmp_port = free_port(), free_port()
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(col(Commune.district_code) == "183")))[:6]
        rows = []
        for row in generate_demo_rows(communes, seed=7, today=date(2026, 1, 1)):
            if row.protocol is Protocol.HTTP:
                rows.append(
                    replace(row, address=row.address.replace(":18080/", f":{http_port}/"), interval_s=INTERVAL_S)
                )
            elif row.protocol is Protocol.SNMP and row.port == 16161:
                rows.append(replace(row, port=snmp_port, interval_s=INTERVAL_S))
        apply_fleet_rows(rows, session=session)
    with engine.connect() as connection:
        ids = list(connection.execute(sa.text("SELECT id FROM devices WHERE active")).scalars())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {
        "MONITOR_DATABASE_URL": url,
        "MONITOR_DATA_DIR": str(tmp_path),
        "MONITOR_SECRET_KEY": TEST_SECRET,
        "MONITOR_COLLECTOR_SHARDS": str(SHARDS),
        "MONITOR_COLLECTOR_LEASE_S": str(LEASE_S),
        "MONITOR_HTTP_TIMEOUT_S": "1",
        "MONITOR_SNMP_TIMEOUT_S": "0.5",
        "MONITOR_SNMP_RETRIES": "0",
        "MONITOR_HOST": "127.0.0.1",
    }
    simulator_log = (tmp_path / "simulator.log").open("w")
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "simulate",
            "run",
            "--seed",
            "7",
            "--http-port",
            str(http_port),
            "--snmp-port",
            str(snmp_port),
            "--snmp-v3-port",
            str(free_port()),
        ],
        env=env,
        stdout=simulator_log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found = Pool(engine, env, tmp_path, ids)
    try:
        yield found
    finally:
        for process in found.collectors.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
            stop_process(process, grace_s=10)
        stop_process(simulator, grace_s=5)
        engine.dispose()


def test_three_collectors_share_take_over_and_fence(pool: Pool) -> None:
    assert len(pool.device_ids) >= 16
    for name in ("c1", "c2", "c3"):
        pool.start(name)
    shared = pool.record_until(
        lambda s: _all_held_by(s, {"c1", "c2", "c3"}) and all(len(_held_by(s, n)) >= 2 for n in ("c1", "c2", "c3")),
        40,
        "the three share every shard",
    )
    pool.record_until(
        lambda s: all(s.last_polled.get(i) is not None for i in pool.device_ids), 20, "every device polled"
    )

    # kill -9 c1: its shards lapse and are taken over by c2 and c3 within two lease periods.
    c1_shards = _held_by(shared, "c1")
    killed_at = time.monotonic()
    pool.collectors["c1"].kill()
    after_kill = pool.record_until(lambda s: _all_held_by(s, {"c2", "c3"}), 2 * LEASE_S + 2, "c1's shards taken over")
    takeover_s = after_kill.at - killed_at
    # The issue asks for two leases; the survivors' rounds are set just after the dead one's lease lapses, so
    # within one lease and a little (the history is sampled every 0.25 s).
    assert takeover_s <= LEASE_S + 1.0, takeover_s
    for shard in c1_shards:
        assert after_kill.owners[shard][1] > shared.owners[shard][1]  # a new epoch
    moved = [i for i in pool.device_ids if i % SHARDS in c1_shards]
    since = datetime.now(UTC)
    pool.record_until(
        lambda s: all((s.last_polled.get(i) or since) > since for i in moved),
        LEASE_S + INTERVAL_S + 3,
        "c1's devices polled again",
    )

    # SIGSTOP c2 for longer than its lease: c3 takes everything; c2's writes after that are refused.
    c2 = pool.collectors["c2"]
    c2_shards = _held_by(pool.sample(), "c2")
    os.kill(c2.pid, signal.SIGSTOP)
    alone = pool.record_until(lambda s: _all_held_by(s, {"c3"}), 2 * LEASE_S + 3, "c3 holds every shard")
    time.sleep(1)
    os.kill(c2.pid, signal.SIGCONT)
    back = pool.record_until(
        lambda s: _all_held_by(s, {"c2", "c3"}) and len(_held_by(s, "c2")) >= 3, 4 * LEASE_S, "c2 back in the pool"
    )
    for shard in c2_shards:
        assert alone.owners[shard][1] > shared.owners[shard][1]
    assert "lost the lease of shards" in pool.log("c2") or "lease renewal failed" in pool.log("c2")
    time.sleep(6)  # the collectors' metrics are built at most every 5 s
    assert pool.metric("c2", "fleet_collector_shards_lost_total") >= len(c2_shards)
    assert pool.metric("c2", "fleet_collector_shards_held") == len(_held_by(pool.sample(), "c2"))
    assert pool.metric("c3", "fleet_collector_shards_claimed_total") >= SHARDS - len(_held_by(shared, "c3"))

    # Checks over the whole history.
    epochs: dict[tuple[int, int], set[str]] = {}
    last_epoch: dict[int, int] = {}
    for sample in pool.history:
        for shard, (owner, epoch, _current) in sample.owners.items():
            if owner is not None:
                epochs.setdefault((shard, epoch), set()).add(owner)
            assert epoch >= last_epoch.get(shard, 0), "an epoch went back"
            last_epoch[shard] = epoch
    assert all(len(owners) == 1 for owners in epochs.values()), "two owners under one epoch"
    with pool.engine.connect() as connection:
        downs = connection.execute(sa.text("SELECT count(*) FROM state_changes WHERE new_state = 'down'")).scalar_one()
    assert downs == 0, "a collector's death or pause was blamed on the devices"
    assert back.owners

    # A clean stop gives the shards back at once.
    for name in ("c2", "c3"):
        pool.collectors[name].send_signal(signal.SIGTERM)
        assert pool.collectors[name].wait(timeout=15) == 0
    final = pool.sample()
    assert all(owner is None for owner, _e, _c in final.owners.values())
