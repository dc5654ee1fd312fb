"""From state changes to problems and tickets, quietly: one device, a commune's uplink, a district's power,
a parent down, a maintenance window, flapping, a lost recovery — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.dispatcher import Dispatcher
from monitor.alerts.models import AlertProblem, MaintenanceWindow
from monitor.alerts.rules import AlertRules
from monitor.db import session_scope
from monitor.health.machine import HealthPolicy, Observation
from monitor.health.store import HealthStore
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.tickets.models import Ticket

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
QUICK = HealthPolicy(failures_to_down=1, successes_to_up=1)
RULES = AlertRules(group_wait=timedelta(seconds=60), district_min_devices=30, district_share=0.2)


@pytest.fixture
def dinh_lap(province: Engine) -> dict[str, Device]:
    """The 12 communes of Đình Lập (district 189) with the demo fleet, every device up at T0."""
    with session_scope(province) as session:
        communes = list(session.exec(select(Commune).where(Commune.district_code == "189").order_by(Commune.code)))
        apply_fleet_rows(generate_demo_rows(communes, seed=3, today=date(2026, 1, 1)), session=session)
    with Session(province) as session:
        devices = {d.code: d for d in session.exec(select(Device))}
    HealthStore(province, QUICK).apply([ok(d, T0) for d in devices.values()], T0)
    Dispatcher(province, rules=RULES).run_once(T0)
    return devices


def ok(device: Device, at: datetime, *faults: str) -> Observation:
    assert device.id is not None
    return Observation(device.id, at, "http", True, 0.01, {"uptime_s": 100}, frozenset(faults))


def dark(device: Device, at: datetime) -> Observation:
    assert device.id is not None
    return Observation(device.id, at, "http", False, None, error="timeout: no answer")


def observe(engine: Engine, observations: list[Observation]) -> None:
    HealthStore(engine, QUICK).apply(observations, observations[0].observed_at)


def problems(engine: Engine, status: str | None = None) -> list[AlertProblem]:
    with Session(engine) as session:
        query = select(AlertProblem).order_by(col(AlertProblem.id))
        if status:
            query = query.where(AlertProblem.status == status)
        return list(session.exec(query))


def open_tickets(engine: Engine) -> list[Ticket]:
    with Session(engine) as session:
        return list(session.exec(select(Ticket).where(col(Ticket.status).not_in(["resolved", "closed"]))))


def commune_devices(devices: dict[str, Device], commune: str) -> list[Device]:
    return [d for d in devices.values() if d.commune_code == commune]


def test_a_device_down_gets_one_ticket_in_its_districts_queue_after_the_grouping_wait(
    province: Engine, dinh_lap: dict[str, Device]
) -> None:
    cluster = dinh_lap["06613-CL01"]
    t1 = T0 + timedelta(minutes=1)
    observe(province, [dark(cluster, t1)])
    dispatcher = Dispatcher(province, rules=RULES)
    assert dispatcher.run_once(t1).opened == 0, "held for the grouping wait"
    assert [p.status for p in problems(province)] == ["pending"]
    report = dispatcher.run_once(t1 + timedelta(seconds=61))
    assert report.opened == 1 and len(report.tickets) == 1
    [ticket] = open_tickets(province)
    assert (ticket.district_code, ticket.problem_key) == ("189", "device:06613-CL01:offline")
    # duplicates and repeated cycles change nothing
    dispatcher.run_once(t1 + timedelta(seconds=120))
    assert len(open_tickets(province)) == 1

    t2 = t1 + timedelta(minutes=5)
    observe(province, [ok(cluster, t2)])
    report = dispatcher.run_once(t2)
    assert report.resolved == 1
    assert open_tickets(province) == []
    assert problems(province)[-1].status == "resolved"


def test_a_communes_uplink_failure_is_one_problem_and_one_ticket(province: Engine, dinh_lap: dict[str, Device]) -> None:
    members = commune_devices(dinh_lap, "06616")
    t1 = T0 + timedelta(minutes=1)
    observe(province, [dark(d, t1) for d in members])
    dispatcher = Dispatcher(province, rules=RULES)
    dispatcher.run_once(t1)
    report = dispatcher.run_once(t1 + timedelta(seconds=61))
    assert report.opened == 1 and report.grouped == 1
    [ticket] = open_tickets(province)
    assert ticket.problem_key == "commune:06616:offline"
    active = problems(province, "active")
    assert [p.key for p in active] == ["commune:06616:offline"]
    assert sorted(active[0].members) == sorted(d.code for d in members)
    assert {p.suppression_reason for p in problems(province, "suppressed")} == {"grouped"}

    # devices recovering one by one update the group; it resolves with the last one
    t2 = t1 + timedelta(minutes=10)
    observe(province, [ok(d, t2) for d in members[:-1]])
    dispatcher.run_once(t2)
    assert problems(province, "active")[0].members == [members[-1].code]
    observe(province, [ok(members[-1], t2 + timedelta(minutes=1))])
    dispatcher.run_once(t2 + timedelta(minutes=1))
    assert problems(province, "active") == [] and open_tickets(province) == []


def test_a_district_power_cut_is_grouped_not_hundreds_of_tickets(province: Engine, dinh_lap: dict[str, Device]) -> None:
    t1 = T0 + timedelta(minutes=1)
    observe(province, [ok(d, t1, "power_loss") for d in dinh_lap.values()])
    dispatcher = Dispatcher(province, rules=RULES)
    dispatcher.run_once(t1)
    dispatcher.run_once(t1 + timedelta(seconds=61))
    tickets = open_tickets(province)
    assert [t.problem_key for t in tickets] == ["district:189:power_loss"]
    assert len(dinh_lap) > 60
    later = t1 + timedelta(minutes=20)
    observe(province, [dark(d, later) for d in dinh_lap.values()])  # batteries drained: all dark
    dispatcher.run_once(later)
    dispatcher.run_once(later + timedelta(seconds=61))
    assert sorted(t.problem_key for t in open_tickets(province)) == ["district:189:offline", "district:189:power_loss"]


def test_a_device_behind_a_down_parent_has_no_problem_of_its_own(province: Engine, dinh_lap: dict[str, Device]) -> None:
    station, cluster = dinh_lap["06613-ST"], dinh_lap["06613-CL01"]
    rules = AlertRules(group_wait=timedelta(seconds=60), commune_share=0.95, district_min_devices=1000)
    t1 = T0 + timedelta(minutes=1)
    observe(province, [dark(station, t1), dark(cluster, t1)])
    dispatcher = Dispatcher(province, rules=rules)
    dispatcher.run_once(t1)
    dispatcher.run_once(t1 + timedelta(seconds=61))
    assert [t.problem_key for t in open_tickets(province)] == ["device:06613-ST:offline"]
    [child] = problems(province, "suppressed")
    assert (child.key, child.suppressed_by) == ("device:06613-CL01:offline", "device:06613-ST:offline")

    # the parent recovers, the child is still dark: judged again, it gets its own problem
    t2 = t1 + timedelta(minutes=5)
    observe(province, [ok(station, t2)])
    dispatcher.run_once(t2)
    dispatcher.run_once(t2 + timedelta(seconds=1))
    assert [t.problem_key for t in open_tickets(province)] == ["device:06613-CL01:offline"]


@pytest.mark.parametrize("scope", ["device", "kind"])
def test_a_maintenance_window_mutes_cycle_after_cycle_then_opens_at_its_end_if_still_down(
    province: Engine, dinh_lap: dict[str, Device], scope: str
) -> None:
    cluster = dinh_lap["06613-CL01"]
    with session_scope(province) as session:
        session.add(
            MaintenanceWindow(
                name="Thay loa" if scope == "device" else "Bảo dưỡng cụm loa",
                scope=scope,
                scope_code=cluster.code if scope == "device" else cluster.kind,
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
            )
        )
    t1 = T0 + timedelta(minutes=5)
    observe(province, [dark(cluster, t1)])
    dispatcher = Dispatcher(province, rules=RULES)
    dispatcher.run_once(t1)
    dispatcher.run_once(t1 + timedelta(minutes=2))
    assert open_tickets(province) == []
    [problem] = problems(province)
    assert (problem.status, problem.suppression_reason) == ("suppressed", "maintenance")
    first_update = problem.updated_at
    for minutes in (3, 4, 5):  # each cycle looks again and finds it still muted: nothing changes
        dispatcher.run_once(t1 + timedelta(minutes=minutes))
    [problem] = problems(province)
    assert (problem.status, problem.suppression_reason) == ("suppressed", "maintenance")
    assert problem.updated_at == first_update and open_tickets(province) == []
    end = T0 + timedelta(hours=1, seconds=1)
    dispatcher.run_once(end)
    dispatcher.run_once(end + timedelta(seconds=1))
    assert [t.problem_key for t in open_tickets(province)] == ["device:06613-CL01:offline"]


def test_faults_each_get_their_problem_and_resolve_when_cleared(province: Engine, dinh_lap: dict[str, Device]) -> None:
    cluster = dinh_lap["06613-CL01"]
    t1 = T0 + timedelta(minutes=1)
    observe(province, [ok(cluster, t1, "amplifier_fault", "low_signal")])
    dispatcher = Dispatcher(province, rules=RULES)
    dispatcher.run_once(t1)
    dispatcher.run_once(t1 + timedelta(seconds=61))
    assert sorted(p.kind for p in problems(province, "active")) == ["amplifier_fault", "low_signal"]
    assert [t.problem_key for t in open_tickets(province)] == ["device:06613-CL01:amplifier_fault"], (
        "low signal is watched, not ticketed"
    )
    observe(province, [ok(cluster, t1 + timedelta(minutes=5))])
    dispatcher.run_once(t1 + timedelta(minutes=5))
    assert problems(province, "active") == [] and open_tickets(province) == []


def test_a_lost_recovery_never_leaves_a_ticket_open(province: Engine, dinh_lap: dict[str, Device]) -> None:
    cluster = dinh_lap["06613-CL01"]
    t1 = T0 + timedelta(minutes=1)
    observe(province, [dark(cluster, t1)])
    dispatcher = Dispatcher(province, rules=RULES)
    dispatcher.run_once(t1)
    dispatcher.run_once(t1 + timedelta(seconds=61))
    assert len(open_tickets(province)) == 1
    with session_scope(province) as session:  # the recovery is lost: the problem vanished, the ticket stayed
        for problem in session.exec(select(AlertProblem)):
            problem.status = "resolved"
            session.add(problem)
    dispatcher.reconcile_tickets(t1 + timedelta(minutes=10))
    assert open_tickets(province) == []


def test_a_state_change_is_processed_once_even_with_two_dispatchers(
    province: Engine, dinh_lap: dict[str, Device]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    t1 = T0 + timedelta(minutes=1)
    observe(province, [dark(d, t1) for d in list(dinh_lap.values())[:20]])
    dispatchers = [Dispatcher(province, rules=RULES, name=f"d{i}") for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda d: d.run_once(t1), dispatchers))
    assert sum(r.claimed for r in reports) == 20
    keys = [p.key for p in problems(province)]
    assert len(keys) == len(set(keys)) == 20
