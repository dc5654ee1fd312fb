"""Uptime from the state history: histories built by hand, with answers known to the second.

Each case runs on SQLite and PostgreSQL: the changes are written as the health store writes them, laid into
spans, rolled up by day, and the report is asked for before and after the roll-up (the two must agree).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from monitor.alerts.models import MaintenanceWindow
from monitor.health.models import StateChange
from monitor.i18n import LOCAL_ZONE
from monitor.inventory.models import Device
from monitor.reports.models import StateSpan, UptimeDaily
from monitor.reports.rollup import rebuild, roll_up
from monitor.reports.spans import fold_changes
from monitor.reports.timeline import STATES, Span, device_figures, period_bounds, split_by_day
from monitor.reports.uptime import GroupBy, uptime_report

H = 3600.0
CAO_LOC, DINH_LAP = "183", "189"
TOWN = "06187"  # Thị trấn Cao Lộc
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=LOCAL_ZONE)


def local(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A time of March 2026 in Asia/Ho_Chi_Minh."""
    return datetime(2026, 3, day, hour, minute, tzinfo=LOCAL_ZONE)


def add_device(session: Session, code: str, *, commune: str = TOWN, installed_on: date | None = None) -> int:
    device = Device(
        code=code,
        name=f"Cụm loa {code}",
        kind="radio_cluster",
        commune_code=commune,
        profile="vietloa-ip200-http",
        protocol="http",
        installed_on=installed_on,
        created_at=datetime(2026, 1, 1, tzinfo=LOCAL_ZONE).astimezone(UTC),
    )
    session.add(device)
    session.flush()
    assert device.id is not None
    return device.id


def change(session: Session, device_id: int, old: str, new: str, at: datetime) -> None:
    session.add(StateChange(device_id=device_id, old_state=old, new_state=new, at=at.astimezone(UTC), reason="test"))
    session.flush()


def fold(session: Session, now: datetime = NOW) -> None:
    fold_changes(session, now.astimezone(UTC))
    session.flush()


def history_a(session: Session) -> int:
    """Up from 08:00 on 1 March; down 22:00 on the 2nd to 02:00 on the 3rd (across local midnight);
    degraded 12:00-13:00 on the 5th."""
    device = add_device(session, "06187-CL01", installed_on=date(2026, 1, 1))
    change(session, device, "unknown", "up", local(1, 8))
    change(session, device, "up", "down", local(2, 22))
    change(session, device, "down", "up", local(3, 2))
    change(session, device, "up", "degraded", local(5, 12))
    change(session, device, "degraded", "up", local(5, 13))
    return device


def report(session: Session, **options: object) -> dict[str, object]:
    options.setdefault("by", GroupBy.DEVICE)
    result = uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), **options)  # type: ignore[arg-type]
    assert len(result.rows) == 1, result.rows
    return result.rows[0].as_dict()


def test_a_history_gives_its_seconds_exactly(session: Session) -> None:
    history_a(session)
    fold(session)
    row = report(session)
    assert (row["unknown_s"], row["down_s"], row["degraded_s"], row["maintenance_s"]) == (8 * H, 4 * H, 1 * H, 0)
    assert row["up_s"] == 5 * 24 * H - 13 * H
    assert row["availability"] == pytest.approx(108 / 112)
    assert (row["outages"], row["longest_outage_s"]) == (1, 4 * H)
    assert row["mtbf_s"] == 108 * H


def test_maintenance_takes_its_time_out_of_availability_and_is_listed(session: Session) -> None:
    history_a(session)
    session.add(
        MaintenanceWindow(
            name="Thay bộ khuếch đại",
            scope="district",
            scope_code=CAO_LOC,
            starts_at=local(3, 0).astimezone(UTC),
            ends_at=local(3, 1).astimezone(UTC),
        )
    )
    fold(session)
    row = report(session)
    assert (row["down_s"], row["maintenance_s"]) == (3 * H, 1 * H)
    assert row["availability"] == pytest.approx(108 / 111)
    assert (row["outages"], row["longest_outage_s"]) == (1, 3 * H)
    kept = report(session, exclude_maintenance=False)
    assert (kept["down_s"], kept["maintenance_s"]) == (4 * H, 0)
    by_district = uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC))
    assert by_district.maintenance[0]["name"] == "Thay bộ khuếch đại" and by_district.maintenance[0]["devices"] == 1
    assert by_district.rows[0].as_dict()["maintenance_s"] == 1 * H


def test_a_device_counts_from_its_install_day_and_never_heard_is_unknown_not_down(session: Session) -> None:
    add_device(session, "06187-CL02", installed_on=date(2026, 3, 4))
    roll_up(session, NOW.astimezone(UTC))  # gives the silent device its unknown span
    row = report(session)
    assert row["unknown_s"] == 48 * H and row["down_s"] == 0
    assert row["availability"] is None and row["outages"] == 0


def test_days_split_at_local_midnight(session: Session) -> None:
    device = history_a(session)
    fold(session)
    spans = [
        Span(s.state, s.started_at, s.ended_at)
        for s in session.exec(select(StateSpan).where(StateSpan.device_id == device))
    ]
    by_day = split_by_day(spans, date(2026, 3, 1), date(2026, 3, 5))
    assert (by_day[date(2026, 3, 2)].up_s, by_day[date(2026, 3, 2)].down_s) == (22 * H, 2 * H)
    assert (by_day[date(2026, 3, 3)].down_s, by_day[date(2026, 3, 3)].up_s) == (2 * H, 22 * H)
    roll_up(session, NOW.astimezone(UTC))
    daily = {r.day: r for r in session.exec(select(UptimeDaily).where(UptimeDaily.commune_code == TOWN))}
    assert (daily[date(2026, 3, 2)].down_s, daily[date(2026, 3, 3)].down_s) == (2 * H, 2 * H)
    assert daily[date(2026, 3, 1)].unknown_s == 8 * H and daily[date(2026, 3, 1)].devices == 1


def test_the_roll_ups_give_what_the_raw_history_gives(session: Session) -> None:
    history_a(session)
    add_device(session, "06187-CL02", installed_on=date(2026, 3, 4))
    other = add_device(session, "06613-CL01", commune="06613")
    change(session, other, "unknown", "down", local(1, 5, 30))
    change(session, other, "down", "up", local(4, 23, 59))
    fold(session)
    groupings = (GroupBy.DISTRICT, GroupBy.COMMUNE, GroupBy.KIND, GroupBy.PROVINCE)
    live = {
        by: uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), by=by)
        for by in groupings
    }
    assert all(result.rolled_days == 0 for result in live.values())
    roll_up(session, NOW.astimezone(UTC))
    for by in groupings:
        rolled = uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), by=by)
        assert rolled.rolled_days == 5
        assert [r.as_dict() for r in rolled.rows] == [r.as_dict() for r in live[by].rows]
    province = uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), by=GroupBy.PROVINCE)
    assert province.total.figures.devices == 3
    assert province.total.figures.outages.count == 2


def test_a_district_report_holds_its_district_alone(session: Session) -> None:
    history_a(session)
    other = add_device(session, "06613-CL01", commune="06613")
    change(session, other, "unknown", "down", local(1, 5))
    fold(session)
    roll_up(session, NOW.astimezone(UTC))
    mine = uptime_report(session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), districts=[CAO_LOC])
    assert [row.key for row in mine.rows] == [CAO_LOC]
    assert mine.total.figures.devices == 1 and mine.total.figures.seconds.down_s == 4 * H
    devices = uptime_report(
        session, date(2026, 3, 1), date(2026, 3, 5), now=NOW.astimezone(UTC), districts=[DINH_LAP], by=GroupBy.DEVICE
    )
    assert [row.key for row in devices.rows] == ["06613-CL01"]


def test_a_late_change_reopens_the_rolled_days_it_falls_in(session: Session) -> None:
    device = history_a(session)
    fold(session)
    assert roll_up(session, NOW.astimezone(UTC)) > 0
    before = uptime_report(session, date(2026, 3, 1), date(2026, 3, 9), now=NOW.astimezone(UTC)).total.as_dict()
    change(session, device, "up", "down", local(8, 10))  # written late, dated two days ago
    change(session, device, "down", "up", local(8, 11))
    result = fold_changes(session, NOW.astimezone(UTC))
    assert result.days_reopened >= 1
    roll_up(session, NOW.astimezone(UTC))
    after = uptime_report(session, date(2026, 3, 1), date(2026, 3, 9), now=NOW.astimezone(UTC)).total.as_dict()
    assert after["down_s"] == before["down_s"] + H  # type: ignore[operator]
    rebuild(session, NOW.astimezone(UTC))
    again = uptime_report(session, date(2026, 3, 1), date(2026, 3, 9), now=NOW.astimezone(UTC)).total.as_dict()
    assert again == after


def test_today_counts_up_to_now(session: Session) -> None:
    device = add_device(session, "06187-CL03", installed_on=date(2026, 1, 1))
    change(session, device, "unknown", "up", local(10, 0))
    fold(session)
    roll_up(session, NOW.astimezone(UTC))
    row = uptime_report(session, date(2026, 3, 10), date(2026, 3, 10), now=NOW.astimezone(UTC), by=GroupBy.DEVICE)
    assert row.rows[0].as_dict()["up_s"] == 12 * H


# --- the pure core, over random histories --------------------------------------------------------

START = datetime(2026, 3, 1, tzinfo=LOCAL_ZONE).astimezone(UTC)


@st.composite
def histories(draw: st.DrawFn) -> list[Span]:
    steps = draw(st.lists(st.tuples(st.sampled_from(STATES), st.integers(1, 3 * 86_400)), min_size=1, max_size=12))
    spans, at = [], START - timedelta(seconds=draw(st.integers(0, 86_400)))
    for index, (state, seconds) in enumerate(steps):
        end = None if index == len(steps) - 1 else at + timedelta(seconds=seconds)
        spans.append(Span(state, at, end))
        at = end or at
    return spans


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(1, 9), st.integers(0, 23 * 3600))
def test_splitting_a_period_gives_the_totals_of_the_whole(spans: list[Span], cut_day: int, offset_s: int) -> None:
    start, end = period_bounds(date(2026, 3, 1), date(2026, 3, 10))
    cut = start + timedelta(days=cut_day, seconds=offset_s)
    whole = device_figures(spans, start, end)
    left, right = device_figures(spans, start, cut), device_figures(spans, cut, end)
    for state in STATES:
        assert whole.seconds.get(state) == pytest.approx(left.seconds.get(state) + right.seconds.get(state))
    assert whole.seconds.total_s == pytest.approx((end - start).total_seconds())
    by_day = split_by_day(spans, date(2026, 3, 1), date(2026, 3, 10))
    for state in STATES:
        assert sum(day.get(state) for day in by_day.values()) == pytest.approx(whole.seconds.get(state))
