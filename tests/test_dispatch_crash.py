"""A real `monitor dispatch` process killed (SIGKILL) again and again in the middle of a storm, then left to
finish: no ticket lost, none duplicated, every state change processed, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.models import AlertProblem
from monitor.collectors.errors import FailureKind
from monitor.collectors.mapping import failed_observation
from monitor.config import Settings
from monitor.db import session_scope, utcnow
from monitor.health.models import StateChange
from monitor.health.store import HealthStore
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.tickets.models import Ticket
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]
KILLS = 6


def _storm(engine: Engine) -> int:
    """The whole demo fleet (every district) goes dark: three failed sweeps, one state change per device."""
    with session_scope(engine) as session:
        communes = list(session.exec(select(Commune)))
        apply_fleet_rows(generate_demo_rows(communes, seed=1, today=date(2026, 1, 1)), session=session)
        ids = [d.id for d in session.exec(select(Device)) if d.id is not None]
    store = HealthStore(engine)
    start = utcnow() - timedelta(minutes=5)
    for sweep in range(3):
        at = start + timedelta(seconds=15 * sweep)
        store.apply([failed_observation(i, at, "http", FailureKind.TIMEOUT, "dark") for i in ids], at)
    return len(ids)


def _in_cycle(engine: Engine) -> bool:
    """Whether a dispatcher is inside a transaction of its cycle right now.

    SQLite: someone holds the write lock (the dispatcher takes it with BEGIN IMMEDIATE at the start of a
    cycle). PostgreSQL: someone holds the evaluation's advisory lock (taken at the start of a cycle).
    """
    if engine.dialect.name == "sqlite":
        connection = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()
    with engine.connect() as connection:
        held = connection.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))
        return bool(held.scalar_one())


def _settled(engine: Engine) -> bool:
    with Session(engine) as session:
        unprocessed = session.execute(
            sa.select(sa.func.count()).select_from(StateChange).where(col(StateChange.processed_at).is_(None))
        ).scalar_one()
        pending = session.execute(
            sa.select(sa.func.count()).select_from(AlertProblem).where(col(AlertProblem.status) == "pending")
        ).scalar_one()
        tickets = session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one()
    return unprocessed == 0 and pending == 0 and tickets > 0


def test_a_dispatcher_killed_mid_storm_loses_and_duplicates_no_ticket(
    province: Engine, settings: Settings, tmp_path: Path
) -> None:
    devices = _storm(province)
    assert devices > 1500
    rules = tmp_path / "rules.yml"
    # Problems wait one second: a first cycle claims and groups, a later one opens the tickets.
    rules.write_text("group_wait_s: 1\nreconcile_every_s: 3600\n")
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": province.url.render_as_string(hide_password=False),
        "MONITOR_SECRET_KEY": TEST_SECRET,
        "MONITOR_ALERT_RULES_FILE": str(rules),
        "MONITOR_DATA_DIR": str(tmp_path),
    }
    log = (tmp_path / "dispatch.log").open("wb")
    rng = random.Random(7)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "dispatch"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    try:
        killed_in_cycle = 0
        for _ in range(KILLS):  # each kill lands inside a cycle's transaction, somewhere along it
            process = start()
            deadline = time.monotonic() + 30
            while not _in_cycle(province) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.3))
            killed_in_cycle += _in_cycle(province)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert killed_in_cycle >= KILLS // 2, f"only {killed_in_cycle} of {KILLS} kills landed inside a cycle"
        process = start()
        deadline = time.monotonic() + 90
        while not _settled(province):
            assert process.poll() is None, (tmp_path / "dispatch.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "the storm was not dispatched within 90 s"
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

    with Session(province) as session:
        tickets = list(session.exec(select(Ticket).order_by(col(Ticket.id))))
        active = list(session.exec(select(AlertProblem).where(AlertProblem.status == "active")))
    keys = [t.problem_key for t in tickets]
    assert len(keys) == len(set(keys)), "one ticket per problem"
    assert all(t.status == "new" for t in tickets), "a first storm: no ticket resolved, reopened or replaced"
    assert sorted(keys) == sorted(p.key for p in active if p.ticket_code), "every active problem has its ticket"
    assert {p.ticket_code for p in active if p.ticket_code} == {t.code for t in tickets}
    assert all(k.startswith("district:") and k.endswith(":offline") for k in keys), keys
    assert len(keys) == 11, "the whole province dark: one problem and one ticket per district"
    numbers = sorted(int(re.fullmatch(r"LS-\d{4}-(\d{6})", t.code).group(1)) for t in tickets)  # type: ignore[union-attr]
    assert numbers == list(range(1, len(tickets) + 1)), "no ticket number lost to a killed transaction"
