"""Health persisted: transitions and the outbox commit together; a restart resumes without false transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.db import session_scope
from monitor.health.machine import Observation
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.store import HealthStore, current_states
from monitor.inventory.models import Device
from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
HEADER = "code,name,kind,commune_code,parent_code,protocol,address,port,profile,interval_s\n"


@pytest.fixture
def fleet(province: Engine) -> dict[str, int]:
    rows = [
        (2, {"code": "P1", "name": "polled", "kind": "radio_cluster", "commune_code": "05971", "protocol": "http",
             "address": "http://127.1.0.1:18080/status", "profile": "vietloa-ip200-http", "interval_s": "60"}),
        (3, {"code": "H1", "name": "pushed", "kind": "bulletin_board", "commune_code": "05971",
             "protocol": "heartbeat", "address": "", "profile": "saobac-board-heartbeat", "interval_s": "60"}),
    ]  # fmt: skip
    with session_scope(province) as session:
        apply_fleet_rows(validate_fleet_rows(rows, session=session, source="test"), session=session)
    with Session(province) as session:
        return {d.code: d.id for d in session.exec(select(Device))}  # type: ignore[misc]


def ok(device_id: int, at: datetime, **readings: object) -> Observation:
    return Observation(device_id, at, "http", True, 0.01, readings or {"uptime_s": 10})


def failed(device_id: int, at: datetime) -> Observation:
    return Observation(device_id, at, "http", False, None, error="timeout: no answer in 5 s")


def changes(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(c.old_state, c.new_state) for c in session.exec(select(StateChange).order_by(col(StateChange.id)))]


def test_a_device_goes_up_then_down_after_three_failures_and_each_change_is_in_the_outbox(
    province: Engine, fleet: dict[str, int]
) -> None:
    store = HealthStore(province)
    device = fleet["P1"]
    store.apply([ok(device, T0)])
    for n in range(1, 3):
        assert store.apply([failed(device, T0 + timedelta(minutes=n))]) == []
    [down] = store.apply([failed(device, T0 + timedelta(minutes=3))])
    assert (down.device_id, down.transition.new.value) == (device, "down")
    assert changes(province) == [("unknown", "up"), ("up", "down")]
    with Session(province) as session:
        row = session.get(DeviceHealthRow, device)
        assert row is not None and row.state == "down" and "offline" in row.faults
        assert row.readings == {"uptime_s": 10}, "a failure keeps the last readings known"
        assert row.last_error is not None and row.last_error.startswith("timeout")


def test_a_restart_resumes_the_counters_without_false_transitions(province: Engine, fleet: dict[str, int]) -> None:
    device = fleet["P1"]
    HealthStore(province).apply([ok(device, T0), failed(device, T0 + timedelta(minutes=1))])
    HealthStore(province).apply([failed(device, T0 + timedelta(minutes=2))])  # "after a restart"
    assert HealthStore(province).apply([ok(device, T0 + timedelta(minutes=3))]) == []
    assert changes(province) == [("unknown", "up")]


def test_a_batch_of_many_devices_and_observations_is_judged_in_time_order(
    province: Engine, fleet: dict[str, int]
) -> None:
    device = fleet["P1"]
    batch = [failed(device, T0 + timedelta(minutes=n)) for n in (3, 1, 2)] + [ok(device, T0)]
    transitions = HealthStore(province).apply(batch)
    assert [t.transition.new.value for t in transitions] == ["up", "down"]


def test_observations_of_a_deleted_device_are_dropped(province: Engine, fleet: dict[str, int]) -> None:
    assert HealthStore(province).apply([ok(999_999, T0)]) == []
    assert current_states(province) == {}


def test_a_silent_push_device_goes_down_after_its_missed_heartbeats(province: Engine, fleet: dict[str, int]) -> None:
    store = HealthStore(province)
    device = fleet["H1"]
    store.apply([Observation(device, T0, "heartbeat", True, None, {"uptime_s": 1})])
    assert store.tick_silent(T0 + timedelta(seconds=60)) == []  # within interval + grace
    assert store.tick_silent(T0 + timedelta(seconds=91)) == []  # one missed heartbeat
    assert store.tick_silent(T0 + timedelta(seconds=151)) == []  # two
    [down] = store.tick_silent(T0 + timedelta(seconds=211))  # three: down
    assert down.transition.new.value == "down"
    assert store.tick_silent(T0 + timedelta(hours=5)) == [], "a down device is not ticked again"
    assert current_states(province)[device].value == "down"
    with Session(province) as session:
        row = session.get(DeviceHealthRow, device)
        assert row is not None and row.silence_deadline is None


def test_a_push_device_never_heard_is_watched_from_when_watching_began(province: Engine, fleet: dict[str, int]) -> None:
    store = HealthStore(province)
    device = fleet["H1"]
    store.start_watching([device], now=T0)
    store.start_watching([device], now=T0 + timedelta(hours=1))  # no effect: already watched
    transitions = store.tick_silent(T0 + timedelta(seconds=90 + 120 + 1))
    assert [t.transition.new.value for t in transitions] == ["down"]
    assert store.tick_silent(T0 + timedelta(seconds=20)) == []


def test_polled_devices_are_never_ticked(province: Engine, fleet: dict[str, int]) -> None:
    store = HealthStore(province)
    store.apply([ok(fleet["P1"], T0)])
    assert store.tick_silent(T0 + timedelta(days=1)) == []
