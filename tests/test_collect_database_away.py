"""A collector whose PostgreSQL goes away and comes back: it keeps running, holds what it heard, loses no
confirmation, and counts what it had to drop. A real PostgreSQL server, stopped in the middle (`immediate`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from monitor.collectors import runner
from monitor.collectors.errors import DatabaseAway, FailureKind
from monitor.collectors.mapping import failed_observation
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.health.machine import Observation
from monitor.health.models import DeviceHealthRow
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from monitor.metrics import CollectorStats, collector_blocks
from tests.conftest import TEST_SECRET
from tests.postgres import PostgresServer

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_a_collector_holds_its_observations_while_postgresql_is_away_and_loses_no_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own server, to stop: not under pytest's tmp folder, which is private to root (the server runs as postgres).
    base = Path(tempfile.mkdtemp(prefix="monitor-test-pg-away-"))
    server = PostgresServer(base).start()
    try:
        settings = load_settings(database_url=server.url(), secret_key=TEST_SECRET, data_dir=tmp_path)
        engine = make_engine(settings)
        upgrade(engine)
        with session_scope(engine) as session:
            init_province(session, load_units("lang-son", "2020"))
            communes = list(session.exec(select(Commune).where(Commune.code == "06613")))
            apply_fleet_rows(generate_demo_rows(communes, seed=5, today=T0.date()), session=session)
            ids = {d.code: d.id for d in session.exec(select(Device))}
        assert len(ids) >= 4
        victim = sorted(ids)[0]
        collector = Collector(settings, engine, registry=load_profiles(), refresh_s=3600, flush_s=3600)

        def hear(round_: int) -> None:
            at = T0 + timedelta(minutes=round_)
            for code, device_id in ids.items():
                if code == victim and round_ > 0:
                    collector.deliver(failed_observation(device_id, at, "http", FailureKind.TIMEOUT, "no answer"))
                else:
                    collector.deliver(Observation(device_id, at, "http", True, 0.01))

        async def scenario() -> None:
            hear(0)
            assert await collector.flush() == len(ids)
            server.stop()  # the database goes away, connections cut
            hear(1)
            with pytest.raises(DatabaseAway):
                await collector.flush()
            hear(2)
            with pytest.raises(DatabaseAway):
                await collector.flush()
            assert collector.observations_held == 2 * len(ids) and collector.observations_dropped == 0
            server.start_again()
            hear(3)
            assert await collector.flush() == 3 * len(ids), "the held rounds are saved with the new one"

        asyncio.run(scenario())
        with Session(engine) as session:
            state = session.get(DeviceHealthRow, ids[victim])
            assert state is not None and state.state == "down", "three failures, two heard while it was away"
        assert collector.observations_held == 0 and collector.observations_dropped == 0

        # Away for longer than it can hold: the oldest are dropped, and counted.
        monkeypatch.setattr(runner, "MAX_HELD", len(ids) + 1)

        async def long_outage() -> None:
            server.stop()
            for round_ in (4, 5):
                hear(round_)
                with pytest.raises(DatabaseAway):
                    await collector.flush()
            server.start_again()
            assert await collector.flush() == len(ids) + 1

        asyncio.run(long_outage())
        assert collector.observations_dropped == len(ids) - 1
        text = b"".join(block.text for block in collector_blocks(CollectorStats.of(collector))).decode()
        assert f"fleet_collector_observations_dropped_total {len(ids) - 1}" in text
        assert "fleet_collector_observations_held 0" in text
        engine.dispose()
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped if the test failed mid-outage
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_job_that_keeps_failing_says_so_once_then_now_and_then(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    enough = asyncio.Event()

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 22:
            enough.set()
        if calls <= 20:  # as the collector's flush raises it: from the driver's error
            raise DatabaseAway("the database is away") from OperationalError("BEGIN", {}, Exception("locked"))

    async def scenario() -> None:
        collector = object.__new__(Collector)  # only _every is exercised: no database, no sockets
        task = asyncio.create_task(Collector._every(collector, 0.001, work, "saving observations"))
        await asyncio.wait_for(enough.wait(), 10)
        task.cancel()

    with caplog.at_level(logging.INFO, logger="monitor.collectors.runner"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    # The database away is the weather, not a bug: one line, no traceback (monitor.failures)
    assert messages[0] == "saving observations failed; retrying every 0.001 s: the database is away"
    assert caplog.records[0].exc_info is None
    assert messages[1:] == ["saving observations works again after 20 failures"], "not one line per retry"
