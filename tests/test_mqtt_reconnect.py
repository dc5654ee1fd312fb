"""The MQTT broker restarted or unreachable (issue 14): the collector hears again, and blames no device for it.

A real Mosquitto, a real `Collector` on SQLite and the simulator's MQTT clusters (one heartbeat a second,
grace 2 s, down after 2 missed: a device silent 4 s is down). The broker is stopped for 5 s, longer than
that, then started again on the same port; or it is not there at all when the collector starts.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.mqtt import KEEPALIVE_SLACK_S, MqttListener
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.collectors.target import PollTarget
from monitor.config import Settings, load_settings
from monitor.db import make_engine, session_scope, utcnow
from monitor.health.machine import DeviceHealth
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.choices import Protocol
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from monitor.metrics import CollectorStats, collector_blocks
from monitor.simulator import Simulator
from monitor.simulator.source import devices_from_inventory
from tests.conftest import TEST_SECRET
from tests.peers import Peer, free_port, start_mosquitto

needs_mosquitto = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")

INTERVAL_S = 1
GRACE_S = 2.0
WINDOW_S = INTERVAL_S + GRACE_S + INTERVAL_S  # silence that takes a device down (2 missed heartbeats)
OUTAGE_S = 5.0  # longer than the window: without the excuse every MQTT device would go down
SILENT = "06613-CL11"  # an MQTT cluster that goes offline as the broker goes away, and stays so


@dataclass
class Fleet:
    """The devices of the test: code -> id, by protocol."""

    mqtt: dict[str, int]
    heartbeat: dict[str, int]


@dataclass
class Run:
    """What a scenario saw, for the tests to judge."""

    fleet: Fleet
    started_at: datetime  # just before the collector started (its silence clocks start after this...)
    running_at: datetime  # ...and before this: once its start returned (seconds later on a busy machine)
    away: list[tuple[datetime, datetime]]  # the listener's own account of the time it could not hear
    connections: int
    attempts_failed: int
    outages: int
    events: dict[tuple[str, str], int]
    health: dict[int, DeviceHealth]
    rows: dict[int, DeviceHealthRow]
    downs: dict[int, StateChange]
    warnings: list[str]
    exposition: str
    tasks_alive: bool
    during_outage: dict[str, int] = field(default_factory=dict)


class Recorder(logging.Handler):
    """The listener's log lines, WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _settings(folder: Path, template: Path) -> Settings:
    shutil.copyfile(template, folder / "monitor.db")
    return load_settings(
        database_url=f"sqlite:///{folder / 'monitor.db'}",
        secret_key=TEST_SECRET,
        data_dir=folder,
        heartbeat_grace_s=GRACE_S,
        failures_to_down=2,
        successes_to_up=1,
        mqtt_keepalive_s=2,
        mqtt_backoff_initial_s=0.1,
        mqtt_backoff_max_s=0.4,
    )


def _fleet(engine: Engine) -> Fleet:
    """Commune 06613's push devices of the demo fleet (8 MQTT clusters, 2 HTTP heartbeat devices), every second."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(col(Commune.code) == "06613")))
        rows = [
            replace(row, parent_code=None, interval_s=INTERVAL_S)
            for row in generate_demo_rows(communes, seed=5, today=date(2026, 1, 1))
            if row.protocol in (Protocol.MQTT, Protocol.HEARTBEAT)
        ]
        apply_fleet_rows(rows, session=session)
        devices = list(session.exec(select(Device)))
    fleet = Fleet(
        mqtt={d.code: d.id or 0 for d in devices if d.protocol == Protocol.MQTT},
        heartbeat={d.code: d.id or 0 for d in devices if d.protocol == Protocol.HEARTBEAT},
    )
    assert SILENT in fleet.mqtt and len(fleet.mqtt) >= 5 and fleet.heartbeat, fleet
    return fleet


def _rows(engine: Engine) -> dict[int, DeviceHealthRow]:
    with Session(engine) as session:
        return {row.device_id: row for row in session.exec(select(DeviceHealthRow))}


def _all_up(engine: Engine, device_ids: Iterable[int]) -> bool:
    rows = _rows(engine)
    return all(i in rows and rows[i].state == "up" for i in device_ids)


def _downs(engine: Engine) -> dict[int, StateChange]:
    with Session(engine) as session:
        changes = session.exec(select(StateChange).where(StateChange.new_state == "down").order_by(col(StateChange.id)))
        return {c.device_id: c for c in changes}


async def _until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.1)


async def _start(settings: Settings, engine: Engine, url: str) -> tuple[Simulator, Collector, datetime, datetime]:
    """The simulated fleet, then the collector: with the instants just before and just after the collector's start."""
    simulator = Simulator(
        await asyncio.to_thread(devices_from_inventory, settings),
        seed=5,
        snmp_port=0,
        snmp_v3_port=0,
        mqtt_url=url,
        control_port=0,
    )
    await simulator.start()
    assert simulator.mqtt is not None
    simulator.mqtt.backoff_max_s = 0.3  # the devices come back quickly too: the test is about the collector
    collector = Collector(
        settings, engine, registry=load_profiles(), mqtt_url=url, refresh_s=3600, tick_s=0.25, flush_s=0.1
    )
    started_at = utcnow()
    await collector.start()
    return simulator, collector, started_at, utcnow()


def _finish(
    collector: Collector, engine: Engine, fleet: Fleet, started: tuple[datetime, datetime], recorder: Recorder
) -> Run:
    listener = collector.mqtt
    assert listener is not None
    rows = _rows(engine)
    return Run(
        fleet=fleet,
        started_at=started[0],
        running_at=started[1],
        away=listener.away_periods(),
        connections=listener.connections,
        attempts_failed=listener.attempts_failed,
        outages=listener.outages,
        events=collector.counters.events(),
        health={i: DeviceHealth.from_dict(r.data) for i, r in rows.items()},
        rows=rows,
        downs=_downs(engine),
        warnings=list(recorder.lines),
        exposition=b"".join(b.text for b in collector_blocks(CollectorStats.of(collector))).decode(),
        tasks_alive=all(not task.done() for task in collector._tasks),
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    logger = logging.getLogger("monitor.collectors.mqtt")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# --- the broker restarted ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Run]:
    """One run: the fleet up, SILENT goes offline, the broker stops for OUTAGE_S and comes back, until SILENT is down
    and every other device was heard again."""
    folder = tmp_path_factory.mktemp("restart")
    settings = _settings(folder, sqlite_template)
    engine = make_engine(settings)
    fleet = _fleet(engine)
    healthy = {i for c, i in fleet.mqtt.items() if c != SILENT}
    handler = Recorder()
    logging.getLogger("monitor.collectors.mqtt").addHandler(handler)

    async def scenario() -> Run:
        broker: Peer = await asyncio.to_thread(start_mosquitto, folder / "broker")
        port = broker.port
        simulator, collector, *started = await _start(settings, engine, f"mqtt://127.0.0.1:{port}")
        listener = collector.mqtt
        assert listener is not None
        seen: dict[str, int] = {}
        try:
            await _until(lambda: _all_up(engine, fleet.mqtt.values()), 5, "every MQTT device up")
            simulator.inject(SILENT, "offline")
            await asyncio.to_thread(broker.stop)
            stopped = time.monotonic()
            await _until(lambda: not listener.connected.is_set(), 3, "the listener notices the broker is gone")
            await asyncio.sleep(OUTAGE_S - (time.monotonic() - stopped))
            seen["mqtt_downs_during_outage"] = len(set(_downs(engine)) & set(fleet.mqtt.values()))
            broker = await asyncio.to_thread(start_mosquitto, folder / "broker", port=port)
            await asyncio.wait_for(listener.connected.wait(), 3)
            back = utcnow()
            silent_id = fleet.mqtt[SILENT]
            await _until(lambda: silent_id in _downs(engine), WINDOW_S + 2, "the silent device goes down")
            await _until(
                lambda: all((_rows(engine)[i].last_seen or back) > back for i in healthy),
                3,
                "heartbeats of every other device applied after the return",
            )
            await asyncio.sleep(0.5)
            run = _finish(collector, engine, fleet, (started[0], started[1]), handler)
            run.during_outage = seen
            return run
        finally:
            await collector.stop(timeout_s=2.0)
            await simulator.stop()
            await asyncio.to_thread(broker.stop)

    try:
        yield asyncio.run(scenario())
    finally:
        logging.getLogger("monitor.collectors.mqtt").removeHandler(handler)
        engine.dispose()


@needs_mosquitto
def test_the_listener_reconnects_by_itself_and_subscribes_again_after_a_broker_restart(restart: Run) -> None:
    start_gap, outage = restart.away
    assert restart.connections == 2 and restart.outages == 1
    assert restart.events[("mqtt", "reconnected")] == 1
    assert OUTAGE_S - 0.5 <= (outage[1] - outage[0]).total_seconds() <= OUTAGE_S + 2.0, outage
    assert (start_gap[1] - start_gap[0]).total_seconds() < 1.0, "the first subscription came at once"
    # Subscribed again: the heartbeats published after the return reached health.
    healthy = [i for c, i in restart.fleet.mqtt.items() if c != SILENT]
    assert all((restart.rows[i].last_seen or outage[0]) > outage[1] for i in healthy)
    # One line when the broker went away, one when it was back: not one per attempt.
    assert len(restart.warnings) == 2, restart.warnings
    assert "lost (" in restart.warnings[0] and "back after" in restart.warnings[1]
    assert 'fleet_collector_stalls_total{cause="mqtt_broker"} 1' in restart.exposition
    assert 'fleet_collector_events_total{protocol="mqtt",event="reconnected"} 1' in restart.exposition
    assert restart.tasks_alive


@needs_mosquitto
def test_no_mqtt_device_goes_down_or_misses_a_heartbeat_because_of_the_broker_outage(restart: Run) -> None:
    assert restart.during_outage["mqtt_downs_during_outage"] == 0
    healthy = {c: i for c, i in restart.fleet.mqtt.items() if c != SILENT}
    assert not set(healthy.values()) & set(restart.downs), "only the really silent device went down"
    for code, device_id in healthy.items():
        health = restart.health[device_id]
        assert restart.rows[device_id].state == "up", code
        assert health.silence_counted_until is None and health.consecutive_failures == 0, (code, health)


@needs_mosquitto
def test_a_device_silent_after_the_return_goes_down_on_time_its_deadline_moved_by_the_outage(restart: Run) -> None:
    silent = restart.fleet.mqtt[SILENT]
    down = restart.downs[silent]
    last_heard = restart.health[silent].last_seen
    away_from, back_at = restart.away[-1]
    assert last_heard is not None and last_heard <= away_from
    # Its silence is counted up to the outage, not in it, and again from the return.
    expected = last_heard + timedelta(seconds=WINDOW_S) + (back_at - away_from)
    assert down.at > back_at
    assert expected - timedelta(seconds=0.05) <= down.at <= expected + timedelta(seconds=0.5), (down.at, expected)
    assert (down.created_at - down.at).total_seconds() < 1.0, "declared within a second of its deadline"


@needs_mosquitto
def test_http_heartbeats_are_judged_as_usual_while_the_mqtt_broker_is_away(restart: Run) -> None:
    away_from, back_at = restart.away[-1]
    for device_id in restart.fleet.heartbeat.values():  # never heard: silent from the collector's start
        down = restart.downs[device_id]
        assert away_from < down.at < back_at, "judged during the MQTT outage"
        assert (down.at - restart.started_at).total_seconds() >= WINDOW_S, down.at
        assert (down.at - restart.running_at).total_seconds() <= WINDOW_S + 1.0, down.at


# --- the broker unreachable from the start ------------------------------------------------------------

UNREACHABLE_S = 5.0  # longer than the window again


@needs_mosquitto
def test_a_broker_unreachable_from_the_start_is_retried_with_backoff_and_its_absence_blamed_on_no_device(
    tmp_path: Path, sqlite_template: Path, recorder: Recorder
) -> None:
    settings = _settings(tmp_path, sqlite_template)
    engine = make_engine(settings)
    fleet = _fleet(engine)
    port = free_port()  # nothing listens there yet

    async def scenario() -> tuple[Run, int]:
        simulator, collector, *started = await _start(settings, engine, f"mqtt://127.0.0.1:{port}")
        listener = collector.mqtt
        assert listener is not None
        broker: Peer | None = None
        try:
            await asyncio.sleep(UNREACHABLE_S)
            attempts_while_away = listener.attempts_failed
            assert not listener.connected.is_set()
            broker = await asyncio.to_thread(start_mosquitto, tmp_path / "broker", port=port)
            await asyncio.wait_for(listener.connected.wait(), 3)
            back = utcnow()
            await _until(
                lambda: all((_rows(engine)[i].last_seen or back) > back for i in fleet.mqtt.values()),
                3,
                "heartbeats of every MQTT device applied once the broker is there",
            )
            await asyncio.sleep(0.5)
            return _finish(collector, engine, fleet, (started[0], started[1]), recorder), attempts_while_away
        finally:
            await collector.stop(timeout_s=2.0)
            await simulator.stop()
            if broker is not None:
                await asyncio.to_thread(broker.stop)

    run, attempts = asyncio.run(scenario())
    engine.dispose()
    for code, device_id in fleet.mqtt.items():  # watched since the start, heard only once the broker came
        health = run.health[device_id]
        assert device_id not in run.downs and run.rows[device_id].state == "up", code
        assert health.silence_counted_until is None, (code, health)
    # Backoff 0.1 s doubling to 0.4 s, halved at most by jitter: about 14 to 26 attempts in 5 s, not a busy loop.
    assert 8 <= attempts <= 30, attempts
    assert run.connections == 1 and run.outages == 1 and run.tasks_alive
    assert ("mqtt", "reconnected") not in run.events  # a first connection is no reconnection
    assert len(run.warnings) == 2 and "unreachable (" in run.warnings[0] and "back after" in run.warnings[1]
    (start_gap,) = run.away
    assert start_gap[1] - start_gap[0] >= timedelta(seconds=UNREACHABLE_S)
    for device_id in fleet.heartbeat.values():  # the HTTP heartbeat devices were judged meanwhile
        assert (run.downs[device_id].at - run.started_at).total_seconds() >= WINDOW_S
        assert (run.downs[device_id].at - run.running_at).total_seconds() <= WINDOW_S + 1.0


# --- the listener's own account, without a broker ---------------------------------------------------------


def _nobody(_topic: str) -> PollTarget | None:
    return None


def test_silence_is_counted_only_as_far_as_the_listener_can_vouch_for_its_connection() -> None:
    now = [datetime(2026, 11, 26, 2, 0, tzinfo=UTC)]
    t0 = now[0]

    def at(seconds: float) -> datetime:
        now[0] = t0 + timedelta(seconds=seconds)
        return now[0]

    listener = MqttListener(
        "mqtt://127.0.0.1:1", "#", _nobody, load_profiles(), lambda _o: None, keepalive_s=5, clock=lambda: now[0]
    )
    assert listener.heard_until(t0) is None  # not subscribed yet
    listener._back(0)  # subscribed at t0
    assert listener.heard_until(at(3)) == t0  # only the subscription proves the connection so far
    listener.last_message_at = at(10)
    assert listener.heard_until(at(11)) == t0 + timedelta(seconds=10)
    # Nothing heard since: a dead connection would have been noticed by now (2 keepalives + slack).
    assert listener.heard_until(at(30)) == at(30) - timedelta(seconds=2 * 5 + KEEPALIVE_SLACK_S)
    listener._lost(RuntimeError("connection lost"))
    assert listener.heard_until(now[0]) is None
    at(40)
    listener._back(3)
    assert listener.away_periods()[-1] == (t0 + timedelta(seconds=30 - 12), t0 + timedelta(seconds=40))
    assert listener.outages == 1 and listener.connections == 2


def test_the_backoff_doubles_up_to_its_cap_with_jitter_and_never_overflows() -> None:
    listener = MqttListener("mqtt://127.0.0.1:1", "#", _nobody, load_profiles(), lambda _o: None)
    delays = [listener.backoff_delay(n) for n in range(1, 12)]
    assert 0.25 <= delays[0] <= 0.5 and 4.0 <= delays[4] <= 8.0
    assert all(15.0 <= d <= 30.0 for d in delays[7:])
    assert 15.0 <= listener.backoff_delay(100_000) <= 30.0  # a broker away for days: still a number


# --- a collector restarted after a gap (or the pool's push role taken over) -----------------------------


@needs_mosquitto
def test_the_gap_while_no_collector_listened_is_not_counted_against_mqtt_devices(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A collector stops (crashes, or the pool's holder of shard 0 dies); the next one starts OUTAGE_S later.
    The devices kept publishing to a broker nobody listened to: their silence in the gap is not theirs."""
    settings = _settings(tmp_path, sqlite_template)
    engine = make_engine(settings)
    fleet = _fleet(engine)

    async def scenario() -> tuple[list[tuple[datetime, datetime]], set[int]]:
        broker = await asyncio.to_thread(start_mosquitto, tmp_path / "broker")
        url = f"mqtt://127.0.0.1:{broker.port}"
        simulator, first, *_ = await _start(settings, engine, url)
        try:
            await _until(lambda: _all_up(engine, fleet.mqtt.values()), 5, "every MQTT device up")
            await first.stop(timeout_s=2.0)
            stopped = utcnow()
            await asyncio.sleep(OUTAGE_S)  # nobody listens; the devices keep publishing
            second = Collector(
                settings, engine, registry=load_profiles(), mqtt_url=url, refresh_s=3600, tick_s=0.25, flush_s=0.1
            )
            await second.start()
            try:
                listener = second.mqtt
                assert listener is not None
                await asyncio.wait_for(listener.connected.wait(), 3)
                back = utcnow()
                await _until(
                    lambda: all((_rows(engine)[i].last_seen or back) > back for i in fleet.mqtt.values()),
                    3,
                    "every MQTT device heard by the second collector",
                )
                await asyncio.sleep(1.0)  # ticks run every 0.25 s meanwhile
                away = listener.away_periods()
                assert away[0][0] <= stopped, "the gap is excused from the last heartbeat saved"
                return away, set(_downs(engine)) & set(fleet.mqtt.values())
            finally:
                await second.stop(timeout_s=2.0)
        finally:
            await simulator.stop()
            await asyncio.to_thread(broker.stop)

    away, downs = asyncio.run(scenario())
    engine.dispose()
    assert downs == set(), "MQTT devices blamed for the time no collector listened"
    assert (away[0][1] - away[0][0]).total_seconds() >= OUTAGE_S
