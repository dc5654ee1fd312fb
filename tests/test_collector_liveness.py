"""The collector never blames devices for its own stalls (issue 10, section 2).

Unit tests of the measures (loop lag, write stalls, slot lateness, the ingest watch, excused silence in the
pure machine), then a real run on SQLite: the simulated fleet over loopback (HTTP polls, MQTT through an
embedded broker, HTTP heartbeats to the real web app), the collector's event loop or its database held for
three heartbeat intervals: no device that was fine goes down, while a device really offline does.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.liveness import IngestWatch, Liveness
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings, load_settings
from monitor.db import make_engine, session_scope
from monitor.health.machine import DeviceHealth, HealthPolicy, Observation, next_silence_deadline, tick
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.choices import Protocol
from monitor.inventory.demo import demo_token, generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.tokens import hash_token
from monitor.inventory.units import init_province, load_units
from monitor.metrics import CollectorStats, collector_blocks
from monitor.simulator import Simulator
from monitor.simulator.source import devices_from_inventory
from tests.conftest import TEST_SECRET
from tests.peers import free_port

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.mono - 1000.0)

    def advance(self, seconds: float) -> None:
        self.mono += seconds


def failed(at: datetime, latency_s: float | None = 1.0) -> Observation:
    return Observation(1, at, "http", False, latency_s, error="timeout: no answer")


# --- the measures --------------------------------------------------------------------------------


def test_a_held_loop_is_seen_while_it_resumes_and_dated_when_the_lag_task_wakes() -> None:
    clock = FakeTime()
    liveness = Liveness(clock.wall, stall_s=2.0, period_s=0.25, settle_s=1.0, monotonic=clock.monotonic)
    clock.advance(0.25)
    liveness.beat()
    assert liveness.lag_s == 0.0 and not liveness.stalled
    before = clock.wall()
    clock.advance(30.0)  # the loop is held 30 s
    assert liveness.check(), "seen at once by whoever runs first on resuming"
    assert liveness.discounts(failed(before)), "a poll in flight when it stalled"
    liveness.beat()
    assert not liveness.stalled
    assert liveness.lag_s == pytest.approx(29.75)
    assert liveness.stall_count["loop"] == 1 and liveness.stalled_seconds["loop"] == pytest.approx(30.0)
    [(start, end)] = liveness.excused()
    assert start == before and end == clock.wall()
    assert liveness.discounts(failed(end + timedelta(seconds=0.5))), "still settling"
    assert not liveness.discounts(failed(end + timedelta(seconds=2))), "after it: the device's own failure"
    assert not liveness.discounts(failed(before - timedelta(seconds=5))), "before it"
    assert not liveness.discounts(failed(end + timedelta(seconds=3), latency_s=None))
    ok = Observation(1, before, "http", True, 0.01)
    assert not liveness.discounts(ok), "a success is always a fact"


def test_a_short_pause_is_no_stall_and_late_slots_are_one() -> None:
    clock = FakeTime()
    liveness = Liveness(clock.wall, stall_s=2.0, period_s=0.25, monotonic=clock.monotonic)
    clock.advance(1.5)
    liveness.beat()
    assert liveness.lag_s == pytest.approx(1.25) and liveness.excused() == []
    liveness.late(0.5)
    assert liveness.excused() == []
    liveness.late(12.0)
    [(start, end)] = liveness.excused()
    assert (end - start).total_seconds() == pytest.approx(12.0) and liveness.stall_count["schedule"] == 1
    liveness.late(11.5)  # the next slot of the same stall: the same stall
    assert len(liveness.excused()) == 1 and liveness.stall_count["schedule"] == 1


def test_writes_failing_longer_than_the_threshold_are_a_database_stall(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeTime()
    # The loop's own threshold far away: only the writes are looked at here (the fake clock moves without beats).
    liveness = Liveness(clock.wall, stall_s=100.0, write_stall_s=10.0, monotonic=clock.monotonic)
    liveness.write_begin()
    liveness.write_done(flush=True)
    assert liveness.excused() == [] and liveness.last_flush_at == clock.wall()
    began = clock.wall()
    liveness.write_begin()  # then fails: the database is locked
    clock.advance(5.0)
    liveness.write_begin()  # the retry fails too
    assert not liveness.check(), "a busy wait is not yet a stall"
    clock.advance(7.0)
    with caplog.at_level(logging.WARNING, logger="monitor.collectors.liveness"):
        assert liveness.check() and liveness.stalled
        assert not liveness.discounts(failed(began)), "polls do not need the database"
        liveness.write_done(flush=True)
    assert not liveness.stalled
    assert liveness.excused() == [(began, clock.wall())]
    assert liveness.stalled_seconds["database"] == pytest.approx(12.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("collector stalled: nothing could be saved for 12 s")
    assert messages[1].startswith("collector stalled for 12.0 s (the database could not be written")


async def _held_loop(liveness: Liveness, hold_s: float) -> float:
    task = asyncio.create_task(liveness.run())
    await asyncio.sleep(0.1)
    time.sleep(hold_s)  # noqa: ASYNC251 - the point: the loop is held
    await asyncio.sleep(0.1)
    task.cancel()
    return liveness.max_lag_s


def test_the_lag_task_measures_a_real_held_loop() -> None:
    liveness = Liveness(lambda: datetime.now(UTC), stall_s=0.3, period_s=0.02)
    max_lag = asyncio.run(_held_loop(liveness, 0.6))
    assert 0.5 < max_lag < 1.0
    assert liveness.stall_count["loop"] == 1


def test_excused_periods_are_taken_out_of_a_push_devices_silence() -> None:
    policy = HealthPolicy(failures_to_down=3, heartbeat_grace_s=30)
    heard = DeviceHealth.initial(T0)
    heard, _ = tick(heard, T0, 60, policy)  # nothing to count
    from monitor.health.machine import observe

    heard, _ = observe(heard, Observation(1, T0, "mqtt", True), policy)
    stall = [(T0 + timedelta(seconds=10), T0 + timedelta(seconds=310))]
    assert next_silence_deadline(heard, 60, policy) == T0 + timedelta(seconds=90)
    assert next_silence_deadline(heard, 60, policy, stall) == T0 + timedelta(seconds=390)
    later = T0 + timedelta(seconds=360)
    _down, changes = tick(heard, later, 60, policy)
    assert [c.new.value for c in changes] == ["down"], "without the excuse: five missed heartbeats"
    same, changes = tick(heard, later, 60, policy, stall)
    assert changes == [] and same.consecutive_failures == 0
    # Still silent after it: counted from the stretched deadlines, each dated in real time.
    after, changes = tick(heard, T0 + timedelta(seconds=451), 60, policy, stall)
    assert changes == [] and after.consecutive_failures == 2
    assert after.silence_counted_until == T0 + timedelta(seconds=450)
    final, changes = tick(after, T0 + timedelta(seconds=452), 60, policy, stall)
    assert final.consecutive_failures == 2, "each missed heartbeat once"
    _gone, changes = tick(final, T0 + timedelta(seconds=600), 60, policy, stall)
    assert [(c.new.value, c.at) for c in changes] == [("down", T0 + timedelta(seconds=510))]


def test_the_ingest_watch_blames_a_fleet_wide_silence_on_the_ingest(caplog: pytest.LogCaptureFixture) -> None:
    watch = IngestWatch("heartbeat", minimum_devices=20, grace_s=30)
    at = T0
    assert watch.judge(at, at, None, 50, 60) == (at, None)
    with caplog.at_level(logging.WARNING, logger="monitor.collectors.liveness"):
        cap, gap = watch.judge(at + timedelta(seconds=60), at, None, 50, 60)
        assert (cap, gap) == (at, None) and not watch.silent, "60 s: an ordinary gap"
        cap, gap = watch.judge(at + timedelta(seconds=300), at, None, 50, 60)
        assert cap == at and gap is None and watch.silent, "nobody through for 5 min: the ingest"
        back = at + timedelta(seconds=310)
        cap, gap = watch.judge(at + timedelta(seconds=320), at + timedelta(seconds=318), back, 50, 60)
    assert cap == at + timedelta(seconds=318) and not watch.silent
    assert gap is not None and (gap.start, gap.end) == (at, back) and watch.gap_count == 1
    assert "heartbeat ingest silent: none of 50 devices" in caplog.text
    assert "heartbeat ingest heard again after 310 s" in caplog.text
    # Too few devices to judge: no cap, no gap.
    small = IngestWatch("mqtt", minimum_devices=20)
    assert small.judge(at, at, None, 3, 60) == (None, None)
    assert small.judge(at + timedelta(hours=1), at, None, 3, 60) == (None, None)


# --- a real run ----------------------------------------------------------------------------------

INTERVAL_S = 2  # every device: polled or pushing every 2 s; grace 1 s; down after 2 failures
HOLD_S = 6.0  # three heartbeat intervals: enough to take every push device down without the guard


def _fleet(engine: Engine, ports: dict[str, int]) -> dict[str, tuple[int, str]]:
    """Two communes of the demo fleet on this test's ports, every device every INTERVAL_S: code -> (id, protocol)."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(col(Commune.code).in_(["06613", "06616"]))))
        rows = []
        for row in generate_demo_rows(communes, seed=5, today=date(2026, 1, 1)):
            if row.protocol is Protocol.HTTP:
                rows.append(replace(row, address=row.address.replace(":18080/", f":{ports['http']}/")))
            elif row.protocol is Protocol.SNMP and row.port == 16161:
                rows.append(replace(row, port=ports["snmp"]))
            elif row.protocol in (Protocol.MQTT, Protocol.HEARTBEAT):
                rows.append(row)
        apply_fleet_rows([replace(r, interval_s=INTERVAL_S) for r in rows], session=session)
        devices = list(session.exec(select(Device)))
        for device in devices:
            device.token_hash = hash_token(demo_token(5, device.code))
            session.add(device)
        return {d.code: (d.id or 0, d.protocol) for d in devices}


def _states(engine: Engine) -> dict[int, str]:
    with Session(engine) as session:
        return {row.device_id: row.state for row in session.exec(select(DeviceHealthRow))}


def _downs(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return {c.device_id for c in session.exec(select(StateChange).where(StateChange.new_state == "down"))}


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'monitor.db'}",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        http_timeout_s=1.0,
        snmp_timeout_s=0.5,
        snmp_retries=0,
        heartbeat_grace_s=1.0,
        failures_to_down=2,
        successes_to_up=1,
        sqlite_busy_timeout_ms=500,
        collector_stall_s=1.0,
        collector_write_stall_s=2.0,
    )


@pytest.mark.parametrize("held", ["loop", "database"])
def test_a_collector_held_for_three_heartbeat_intervals_declares_no_device_down(
    held: str, tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "monitor.db")
    settings = _settings(tmp_path)
    engine = make_engine(settings)
    ports = {name: free_port() for name in ("http", "snmp", "mqtt", "web")}
    fleet = _fleet(engine, ports)
    by_protocol = {
        p: sorted(c for c, (_i, q) in fleet.items() if q == p) for p in ("http", "snmp", "mqtt", "heartbeat")
    }
    assert all(by_protocol.values()), by_protocol
    controls = {by_protocol["http"][0], by_protocol["mqtt"][0], by_protocol["heartbeat"][0]}
    control_ids = {fleet[c][0] for c in controls}

    exposition: list[str] = []

    async def scenario() -> dict[str, float]:
        from monitor.collectors.mqtt import EmbeddedBroker
        from monitor.web.app import create_app

        broker = EmbeddedBroker(port=ports["mqtt"])
        await broker.start()
        simulator = Simulator(
            await asyncio.to_thread(devices_from_inventory, settings),
            seed=5,
            http_port=ports["http"],
            snmp_port=ports["snmp"],
            snmp_v3_port=0,
            mqtt_url=broker.url,
            service_url=f"http://127.0.0.1:{ports['web']}",
            control_port=0,
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=ports["web"], log_level="error")
        )
        web = asyncio.create_task(server.serve())
        collector = Collector(
            settings, engine, registry=load_profiles(), mqtt_url=broker.url, refresh_s=3600, tick_s=0.5, flush_s=0.2
        )
        await simulator.start()
        await collector.start()
        times: dict[str, float] = {}
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                states = _states(engine)
                if len(states) == len(fleet) and all(s in ("up", "degraded") for s in states.values()):
                    break
            assert all(s in ("up", "degraded") for s in _states(engine).values()), _states(engine)
            await asyncio.sleep(1.0)  # a few rounds of heartbeats counted normally
            for code in controls:
                simulator.inject(code, "offline")
            began = time.monotonic()
            if held == "loop":
                time.sleep(HOLD_S)  # noqa: ASYNC251 - the collector's (and the demo's) loop is held
            else:
                lock = sqlite3.connect(tmp_path / "monitor.db", timeout=5, isolation_level=None)
                lock.execute("BEGIN IMMEDIATE")
                await asyncio.sleep(HOLD_S)
                lock.execute("ROLLBACK")
                lock.close()
            times["held"] = time.monotonic() - began
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not control_ids <= _downs(engine):  # noqa: ASYNC110 - the database
                await asyncio.sleep(0.2)
            times["controls_down"] = time.monotonic() - began - times["held"]
            await asyncio.sleep(1.0)  # and nothing else follows them
            times["stall_s"] = sum(collector.liveness.stalled_seconds.values())
            exposition.append(b"".join(b.text for b in collector_blocks(CollectorStats.of(collector))).decode())
        finally:
            await collector.stop(timeout_s=2.0)
            await simulator.stop()
            server.should_exit = True
            await asyncio.wait_for(web, 10)
            await broker.stop()
        return times

    with caplog.at_level(logging.WARNING):
        times = asyncio.run(scenario())
    downs = _downs(engine)
    states = _states(engine)
    text = exposition[0]
    engine.dispose()
    assert control_ids <= downs, f"the really offline devices go down once the collector is healthy: {times}"
    assert downs == control_ids, {c for c, (i, _p) in fleet.items() if i in downs - control_ids}
    assert all(states[i] in ("up", "degraded") for c, (i, _p) in fleet.items() if c not in controls)
    assert times["stall_s"] >= HOLD_S - 1.0, times
    said = {"loop": "the event loop was blocked", "database": "the database could not be written"}[held]
    assert "collector stalled for " in caplog.text and said in caplog.text
    assert f'fleet_collector_stalls_total{{cause="{held}"}} 1' in text
    print(f"held {times['held']:.1f} s: controls down {times['controls_down']:.1f} s after")


def test_stop_with_the_database_locked_returns_within_its_deadline_and_says_what_was_lost(
    tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "monitor.db")
    settings = _settings(tmp_path).model_copy(update={"sqlite_busy_timeout_ms": 3000})
    engine = make_engine(settings)
    fleet = _fleet(engine, {"http": free_port(), "snmp": free_port()})
    collector = Collector(settings, engine, registry=load_profiles(), refresh_s=3600, flush_s=3600)

    async def scenario() -> float:
        for device_id, _protocol in fleet.values():
            collector.deliver(Observation(device_id, datetime.now(UTC), "http", True, 0.01))
        lock = sqlite3.connect(tmp_path / "monitor.db", timeout=5, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        try:
            await collector.stop(timeout_s=1.0)
            return time.monotonic() - began
        finally:
            lock.execute("ROLLBACK")
            lock.close()

    with caplog.at_level(logging.ERROR, logger="monitor.collectors.runner"):
        took = asyncio.run(scenario())
    engine.dispose()
    assert took < 1.5, f"stop() took {took:.1f} s with a 1 s deadline"
    assert f"collector stopping: {len(fleet)} observations could not be saved within 1.0 s" in caplog.text
    assert collector.observations_dropped == len(fleet)
