"""SLA clock arithmetic: targets, pauses, working hours, holidays, priority changes.

Times in the tables are written in local time (Asia/Ho_Chi_Minh, UTC+7) with `local(...)`, the way
an officer reads them; the functions get and return UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.i18n import LOCAL_ZONE as VIETNAM
from monitor.tickets.holidays import (
    HUNG_KINGS_DAY,
    LUNAR_NEW_YEAR,
    HolidayCalendar,
    vietnam_public_holidays,
)
from monitor.tickets.sla import (
    DEFAULT_TARGETS,
    Calendar,
    CalendarKind,
    ClockEvent,
    ContinuousCalendar,
    Pause,
    Priority,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    Targets,
    WorkingCalendar,
    add_business_time,
    business_time_between,
    due_at,
    elapsed,
)

ALWAYS = ContinuousCalendar()
WORK = WorkingCalendar()
WORKING_HOURS_POLICY = SlaPolicy(calendar=CalendarKind.WORKING_HOURS)
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
ACK = SlaTarget.ACKNOWLEDGE
RESOLVE = SlaTarget.RESOLVE


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time in Vietnam, as the UTC instant the functions take."""
    return datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# 2026-03-02 is a Monday, 2026-03-06 a Friday: a plain week with no holiday.


# --- business_time_between -------------------------------------------------------------------------

BETWEEN_CASES: list[tuple[str, datetime, datetime, Calendar, timedelta]] = [
    ("24x7 is the plain difference", utc(2026, 3, 2), utc(2026, 3, 3, 6), ALWAYS, 30 * H),
    ("24x7 counts weekends and nights", local(2026, 3, 6, 17), local(2026, 3, 9, 7), ALWAYS, 62 * H),
    ("a full working day", local(2026, 3, 2, 7, 30), local(2026, 3, 2, 17), WORK, 7.5 * H),
    ("the early hour before 07:30 does not count", local(2026, 3, 2, 6), local(2026, 3, 2, 12), WORK, 4 * H),
    ("the lunch break does not count", local(2026, 3, 2, 11), local(2026, 3, 2, 14), WORK, 1 * H),
    ("Friday evening to Monday morning", local(2026, 3, 6, 16), local(2026, 3, 9, 8), WORK, 1.5 * H),
    ("a whole week is 37.5 hours", local(2026, 3, 2), local(2026, 3, 9), WORK, 37.5 * H),
    ("inside the weekend nothing counts", local(2026, 3, 7, 8), local(2026, 3, 8, 16), WORK, timedelta(0)),
    ("30/4 and 1/5/2026 are off", local(2026, 4, 29, 7, 30), local(2026, 5, 4, 7, 30), WORK, 7.5 * H),
    ("Tết 2026 (16–20/02) is off", local(2026, 2, 13, 7, 30), local(2026, 2, 23, 7, 30), WORK, 7.5 * H),
    ("1/9 and 2/9/2026 are off", local(2026, 8, 31, 7, 30), local(2026, 9, 3, 7, 30), WORK, 7.5 * H),
    ("Hùng Kings' day 7/4/2025 is off", local(2025, 4, 4, 7, 30), local(2025, 4, 8, 7, 30), WORK, 7.5 * H),
    (
        "23:59:59 local is the local day, not the UTC one",
        utc(2026, 3, 5, 16, 59, 59),  # Thursday 23:59:59 local
        utc(2026, 3, 6, 1, 30),  # Friday 08:30 local
        WORK,
        1 * H,
    ),
    ("an empty interval", local(2026, 3, 2, 9), local(2026, 3, 2, 9), WORK, timedelta(0)),
    ("backwards is negative", local(2026, 3, 2, 17), local(2026, 3, 2, 7, 30), WORK, -7.5 * H),
    ("backwards is negative around the clock", utc(2026, 3, 2, 5), utc(2026, 3, 2, 1), ALWAYS, -4 * H),
]


@pytest.mark.parametrize(
    ("start", "end", "calendar", "expected"), [c[1:] for c in BETWEEN_CASES], ids=[c[0] for c in BETWEEN_CASES]
)
def test_business_time_between(start: datetime, end: datetime, calendar: Calendar, expected: timedelta) -> None:
    assert business_time_between(start, end, calendar) == expected


# --- add_business_time -----------------------------------------------------------------------------

ADD_CASES: list[tuple[str, datetime, timedelta, Calendar, datetime]] = [
    ("24x7 adds plainly", utc(2026, 3, 6, 9, 50), 8 * H, ALWAYS, utc(2026, 3, 6, 17, 50)),
    (
        "P1 ack from Friday 16:50 crosses the weekend",
        local(2026, 3, 6, 16, 50),
        30 * MIN,
        WORK,
        local(2026, 3, 9, 7, 50),
    ),
    (
        "P1 resolve from Friday 16:50 lands on Tuesday",
        local(2026, 3, 6, 16, 50),
        8 * H,
        WORK,
        local(2026, 3, 10, 7, 50),
    ),
    ("created on Sunday starts on Monday 07:30", local(2026, 3, 8, 10), 30 * MIN, WORK, local(2026, 3, 9, 8)),
    ("created at 12:00 starts after lunch", local(2026, 3, 2, 12), 30 * MIN, WORK, local(2026, 3, 2, 14)),
    ("created at 06:00 starts at 07:30", local(2026, 3, 2, 6), 1 * H, WORK, local(2026, 3, 2, 8, 30)),
    (
        "a target ending with the morning is due at 11:30",
        local(2026, 3, 2, 7, 30),
        4 * H,
        WORK,
        local(2026, 3, 2, 11, 30),
    ),
    ("created at 11:30 starts after lunch", local(2026, 3, 2, 11, 30), 1 * MIN, WORK, local(2026, 3, 2, 13, 31)),
    (
        "zero from a working instant is that instant",
        local(2026, 3, 2, 9, 15),
        timedelta(0),
        WORK,
        local(2026, 3, 2, 9, 15),
    ),
    (
        "zero from lunch is the next working instant",
        local(2026, 3, 2, 12),
        timedelta(0),
        WORK,
        local(2026, 3, 2, 13, 30),
    ),
    (
        "16:59:59 UTC is 23:59:59 local: next morning 07:30",
        utc(2026, 3, 5, 16, 59, 59),
        30 * MIN,
        WORK,
        local(2026, 3, 6, 8),
    ),
    ("17:00 UTC on Friday is Saturday 00:00 local", utc(2026, 3, 6, 17), 30 * MIN, WORK, local(2026, 3, 9, 8)),
    ("Sunday 23:00 UTC is already Monday 06:00 local", utc(2026, 3, 8, 23), 1 * H, WORK, local(2026, 3, 9, 8, 30)),
    ("30/4 and 1/5/2026 are skipped", local(2026, 4, 29, 16), 2 * H, WORK, local(2026, 5, 4, 8, 30)),
    ("Tết 2026 is skipped", local(2026, 2, 13, 16), 8 * H, WORK, local(2026, 2, 23, 16, 30)),
    (
        "Hùng Kings' day 2026 is a Sunday: no day off by default",
        local(2026, 4, 24, 16),
        2 * H,
        WORK,
        local(2026, 4, 27, 8, 30),
    ),
    (
        "a configured compensatory day (27/4/2026) is skipped",
        local(2026, 4, 24, 16),
        2 * H,
        WorkingCalendar(holidays=HolidayCalendar(extra=frozenset({date(2026, 4, 27)}))),
        local(2026, 4, 28, 8, 30),
    ),
    (
        "a removed holiday is worked",
        local(2026, 4, 29, 16),
        2 * H,
        WorkingCalendar(holidays=HolidayCalendar(removed=frozenset({date(2026, 4, 30)}))),
        local(2026, 4, 30, 8, 30),
    ),
    (
        "custom hours: Saturday mornings",
        local(2026, 3, 6, 16, 50),
        1 * H,
        WorkingCalendar(working_days=frozenset(range(6)), hours=((time(8), time(12)),)),
        local(2026, 3, 7, 9),
    ),
]


@pytest.mark.parametrize(
    ("start", "amount", "calendar", "expected"), [c[1:] for c in ADD_CASES], ids=[c[0] for c in ADD_CASES]
)
def test_add_business_time(start: datetime, amount: timedelta, calendar: Calendar, expected: datetime) -> None:
    due = add_business_time(start, amount, calendar)
    assert due == expected
    assert due.tzinfo is UTC


def test_add_business_time_accepts_any_aware_zone_and_answers_in_utc() -> None:
    start = datetime(2026, 3, 6, 16, 50, tzinfo=VIETNAM)
    due = add_business_time(start, 30 * MIN, WORK)
    assert due == local(2026, 3, 9, 7, 50)
    assert due.tzinfo is UTC
    assert add_business_time(start, H, ALWAYS).tzinfo is UTC


def test_add_business_time_refuses_a_negative_amount() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_time(utc(2026, 3, 2), -MIN, WORK)


def test_a_calendar_without_working_time_fails_loudly() -> None:
    every_day_off = HolidayCalendar(extra=frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(800)))
    with pytest.raises(ValueError, match="no working time"):
        add_business_time(utc(2026, 1, 1), H, WorkingCalendar(holidays=every_day_off))


# --- elapsed ---------------------------------------------------------------------------------------

created = local(2026, 3, 2, 8)  # Monday 08:00
ELAPSED_CASES: list[tuple[str, list[ClockEvent], datetime, Calendar, timedelta]] = [
    ("no history, no time", [], utc(2026, 3, 3), ALWAYS, timedelta(0)),
    ("running since creation", [ClockEvent(created, True)], created + 5 * H, ALWAYS, 5 * H),
    ("now before creation", [ClockEvent(created, True)], created - H, ALWAYS, timedelta(0)),
    (
        "a pause does not count",
        [ClockEvent(created, True), ClockEvent(created + H, False), ClockEvent(created + 4 * H, True)],
        created + 6 * H,
        ALWAYS,
        3 * H,
    ),
    (
        "still waiting",
        [ClockEvent(created, True), ClockEvent(created + H, False)],
        created + 6 * H,
        ALWAYS,
        1 * H,
    ),
    (
        "resolved: the clock stays stopped",
        [ClockEvent(created, True), ClockEvent(created + 2 * H, False)],
        created + 30 * H,
        ALWAYS,
        2 * H,
    ),
    (
        "events after now are ignored",
        [ClockEvent(created, True), ClockEvent(created + 2 * H, False), ClockEvent(created + 3 * H, True)],
        created + H,
        ALWAYS,
        1 * H,
    ),
    (
        "repeating the current state changes nothing",
        [
            ClockEvent(created, True),
            ClockEvent(created + H, True),
            ClockEvent(created + 2 * H, False),
            ClockEvent(created + 3 * H, False),
        ],
        created + 5 * H,
        ALWAYS,
        2 * H,
    ),
    (
        "working hours: a pause across a night",
        [ClockEvent(created, True), ClockEvent(local(2026, 3, 2, 16), False), ClockEvent(local(2026, 3, 3, 9), True)],
        local(2026, 3, 3, 10),
        WORK,
        (3.5 + 2.5 + 1) * H,  # 08:00–11:30, 13:30–16:00, then 09:00–10:00
    ),
]


@pytest.mark.parametrize(
    ("events", "now", "calendar", "expected"), [c[1:] for c in ELAPSED_CASES], ids=[c[0] for c in ELAPSED_CASES]
)
def test_elapsed(events: list[ClockEvent], now: datetime, calendar: Calendar, expected: timedelta) -> None:
    assert elapsed(events, now, calendar) == expected


def test_elapsed_takes_plain_tuples() -> None:
    assert elapsed([(created, True), (created + H, False)], created + 2 * H, ALWAYS) == H


def test_elapsed_refuses_events_out_of_order() -> None:
    with pytest.raises(ValueError, match="out of order"):
        elapsed([ClockEvent(created, True), ClockEvent(created - H, False)], created + H, ALWAYS)


# --- due_at ----------------------------------------------------------------------------------------

DUE_CASES: list[tuple[str, datetime, list[tuple[datetime, datetime]], timedelta, Calendar, datetime]] = [
    ("24x7 without pauses", utc(2026, 3, 2), [], 24 * H, ALWAYS, utc(2026, 3, 3)),
    (
        "24x7: a pause across a night shifts the due time by its length",
        utc(2026, 3, 2, 20),
        [(utc(2026, 3, 2, 22), utc(2026, 3, 3, 6))],
        24 * H,
        ALWAYS,
        utc(2026, 3, 4, 4),
    ),
    (
        "24x7: two pauses add up",
        utc(2026, 3, 2),
        [(utc(2026, 3, 2, 1), utc(2026, 3, 2, 2)), (utc(2026, 3, 2, 5), utc(2026, 3, 2, 8))],
        8 * H,
        ALWAYS,
        utc(2026, 3, 2, 12),
    ),
    (
        "24x7: a pause after the due time changes nothing",
        utc(2026, 3, 2),
        [(utc(2026, 3, 2, 9), utc(2026, 3, 2, 12))],
        8 * H,
        ALWAYS,
        utc(2026, 3, 2, 8),
    ),
    (
        "24x7: a pause starting exactly at the due time changes nothing",
        utc(2026, 3, 2),
        [(utc(2026, 3, 2, 8), utc(2026, 3, 2, 12))],
        8 * H,
        ALWAYS,
        utc(2026, 3, 2, 8),
    ),
    (
        "24x7: overlapping pauses count once, the part before creation not at all",
        utc(2026, 3, 2),
        [
            (utc(2026, 3, 1, 20), utc(2026, 3, 2, 1)),
            (utc(2026, 3, 2, 3), utc(2026, 3, 2, 5)),
            (utc(2026, 3, 2, 4), utc(2026, 3, 2, 6)),
        ],
        8 * H,
        ALWAYS,
        utc(2026, 3, 2, 12),
    ),
    (
        "working hours: a pause across a night",
        local(2026, 3, 10, 15),
        [(local(2026, 3, 10, 16), local(2026, 3, 11, 9))],
        2 * H,
        WORK,
        local(2026, 3, 11, 10),
    ),
    (
        "working hours: a pause across a weekend",
        local(2026, 3, 6, 10),
        [(local(2026, 3, 6, 14), local(2026, 3, 9, 9))],
        24 * H,
        WORK,
        local(2026, 3, 12, 8, 30),  # 2 h on Friday, 6 h Monday, 7.5 Tuesday, 7.5 Wednesday, 1 h Thursday
    ),
    (
        "working hours: the same ticket without the pause",
        local(2026, 3, 6, 10),
        [],
        24 * H,
        WORK,
        local(2026, 3, 11, 11, 30),
    ),
    (
        "working hours: a pause outside working time shifts nothing",
        local(2026, 3, 6, 10),
        [(local(2026, 3, 6, 18), local(2026, 3, 9, 7))],
        24 * H,
        WORK,
        local(2026, 3, 11, 11, 30),
    ),
]


@pytest.mark.parametrize(
    ("start", "pauses", "target", "calendar", "expected"), [c[1:] for c in DUE_CASES], ids=[c[0] for c in DUE_CASES]
)
def test_due_at(
    start: datetime, pauses: list[tuple[datetime, datetime]], target: timedelta, calendar: Calendar, expected: datetime
) -> None:
    assert due_at(start, pauses, target, calendar) == expected


@pytest.mark.parametrize(
    ("pauses", "target", "message"),
    [
        ([(utc(2026, 3, 2, 5), utc(2026, 3, 2, 4))], H, "before it starts"),
        ([], -H, "negative"),
    ],
)
def test_due_at_refuses_nonsense(pauses: list[tuple[datetime, datetime]], target: timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        due_at(utc(2026, 3, 2), pauses, target, ALWAYS)


# --- SlaClock --------------------------------------------------------------------------------------


def test_a_p1_created_friday_afternoon_is_due_after_the_weekend() -> None:
    clock = SlaClock(local(2026, 3, 6, 16, 50), Priority.P1, WORKING_HOURS_POLICY)
    assert clock.ack_due() == local(2026, 3, 9, 7, 50)
    assert clock.resolve_due() == local(2026, 3, 10, 7, 50)
    assert clock.remaining(local(2026, 3, 7, 12)) == 7 * H + 50 * MIN  # the weekend does not count
    assert not clock.is_breached(local(2026, 3, 9, 17))
    assert clock.is_breached(local(2026, 3, 9, 8), ACK)
    assert clock.is_breached(local(2026, 3, 10, 7, 51))


def test_the_due_time_itself_is_not_a_breach() -> None:
    clock = SlaClock(utc(2026, 3, 2), Priority.P2)
    assert not clock.is_breached(utc(2026, 3, 3))
    assert clock.is_breached(utc(2026, 3, 3, 0, 0, 1))


def test_past_the_due_time_in_working_hours_remaining_only_falls_in_working_time() -> None:
    clock = SlaClock(local(2026, 3, 2, 16, 30), Priority.P1, WORKING_HOURS_POLICY)
    assert clock.ack_due() == local(2026, 3, 2, 17)
    assert clock.is_breached(local(2026, 3, 2, 20), ACK)
    assert clock.remaining(local(2026, 3, 2, 20), ACK) == timedelta(0)
    assert clock.remaining(local(2026, 3, 3, 8, 30), ACK) == -H


def test_default_targets_per_priority() -> None:
    start = utc(2026, 3, 2)
    expected = {
        Priority.P1: (30 * MIN, 8 * H),
        Priority.P2: (2 * H, 24 * H),
        Priority.P3: (8 * H, 72 * H),
        Priority.P4: (24 * H, 7 * 24 * H),
    }
    for priority, (ack, resolve) in expected.items():
        clock = SlaClock(start, priority)
        assert (clock.target(ACK), clock.target(RESOLVE)) == (ack, resolve)
        assert (clock.ack_due(), clock.resolve_due()) == (start + ack, start + resolve)


def test_closed_pauses_shift_the_due_times() -> None:
    clock = SlaClock(
        utc(2026, 3, 2),
        Priority.P1,
        pauses=(Pause(utc(2026, 3, 2, 1), utc(2026, 3, 2, 3)), Pause(utc(2026, 3, 2, 4), utc(2026, 3, 2, 5))),
    )
    assert clock.ack_due() == utc(2026, 3, 2, 0, 30)  # acknowledged before the first pause
    assert clock.resolve_due() == utc(2026, 3, 2, 11)
    assert clock.elapsed(utc(2026, 3, 2, 6)) == 3 * H
    assert clock.remaining(utc(2026, 3, 2, 6)) == 5 * H


def test_while_waiting_the_due_time_is_unknown_and_nothing_runs() -> None:
    clock = SlaClock(utc(2026, 3, 2), Priority.P1, pauses=(Pause(utc(2026, 3, 2, 2)),))
    assert clock.is_paused
    assert clock.resolve_due() is None
    assert clock.remaining(utc(2026, 3, 2, 3)) == clock.remaining(utc(2026, 3, 9)) == 6 * H
    assert not clock.is_breached(utc(2026, 3, 9))


def test_a_target_missed_before_waiting_stays_missed() -> None:
    clock = SlaClock(utc(2026, 3, 2), Priority.P1, pauses=(Pause(utc(2026, 3, 2, 2)),))
    assert clock.ack_due() == utc(2026, 3, 2, 0, 30)
    assert clock.is_breached(utc(2026, 3, 2, 3), ACK)
    assert clock.remaining(utc(2026, 3, 2, 3), ACK) == -90 * MIN


def test_resuming_gives_the_due_time_back() -> None:
    waiting = SlaClock(utc(2026, 3, 2), Priority.P1, pauses=(Pause(utc(2026, 3, 2, 2)),))
    resumed = SlaClock(utc(2026, 3, 2), Priority.P1, pauses=(Pause(utc(2026, 3, 2, 2), utc(2026, 3, 2, 7)),))
    assert waiting.resolve_due() is None
    assert resumed.resolve_due() == utc(2026, 3, 2, 13)


def test_working_hours_pause_across_a_weekend() -> None:
    clock = SlaClock(
        local(2026, 3, 6, 10),
        Priority.P2,
        WORKING_HOURS_POLICY,
        pauses=(Pause(local(2026, 3, 6, 14), local(2026, 3, 9, 9)),),
    )
    assert clock.resolve_due() == local(2026, 3, 12, 8, 30)
    assert clock.elapsed(local(2026, 3, 9, 9)) == 2 * H


def test_tet_is_skipped_by_the_clock() -> None:
    clock = SlaClock(local(2026, 2, 13, 16), Priority.P3, WORKING_HOURS_POLICY)
    assert clock.ack_due() == local(2026, 2, 23, 16, 30)
    assert clock.elapsed(local(2026, 2, 22, 23)) == H


# Priority change: the new targets apply from creation, counting the time already elapsed.
PRIORITY_CHANGE_CASES: list[tuple[str, Priority, Priority, SlaPolicy, tuple[Pause, ...], SlaTarget, datetime]] = [
    (
        "raised P3 → P1: acknowledge from creation",
        Priority.P3,
        Priority.P1,
        SlaPolicy(),
        (),
        ACK,
        utc(2026, 3, 2, 0, 30),
    ),
    ("raised P3 → P1: resolve from creation", Priority.P3, Priority.P1, SlaPolicy(), (), RESOLVE, utc(2026, 3, 2, 8)),
    (
        "raised P3 → P1: pauses still count",
        Priority.P3,
        Priority.P1,
        SlaPolicy(),
        (Pause(utc(2026, 3, 2, 2), utc(2026, 3, 2, 3)),),
        RESOLVE,
        utc(2026, 3, 2, 9),
    ),
    ("lowered P1 → P4", Priority.P1, Priority.P4, SlaPolicy(), (), RESOLVE, utc(2026, 3, 9)),
    (
        "raised P4 → P2 in working hours: from 07:30, not 07:00",
        Priority.P4,
        Priority.P2,
        WORKING_HOURS_POLICY,
        (),
        ACK,
        local(2026, 3, 2, 9, 30),
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "policy", "pauses", "kind", "expected"),
    [c[1:] for c in PRIORITY_CHANGE_CASES],
    ids=[c[0] for c in PRIORITY_CHANGE_CASES],
)
def test_a_priority_change_applies_the_new_targets_from_creation(
    before: Priority, after: Priority, policy: SlaPolicy, pauses: tuple[Pause, ...], kind: SlaTarget, expected: datetime
) -> None:
    created_at = utc(2026, 3, 2)  # Monday 07:00 local
    changed = SlaClock(created_at, before, policy, pauses).with_priority(after)
    assert changed.priority is after
    assert changed.due(kind) == expected
    assert changed == SlaClock(created_at, after, policy, pauses)


def test_raising_the_priority_late_makes_the_ticket_overdue_at_once() -> None:
    clock = SlaClock(utc(2026, 3, 2), Priority.P3)
    now = utc(2026, 3, 2, 1)
    assert not clock.is_breached(now, ACK)
    raised = clock.with_priority(Priority.P1)
    assert raised.is_breached(now, ACK)
    assert raised.remaining(now, ACK) == -30 * MIN
    assert raised.remaining(now) == 7 * H


@pytest.mark.parametrize(
    ("pauses", "message"),
    [
        ((Pause(utc(2026, 3, 1)),), "before creation"),
        ((Pause(utc(2026, 3, 2, 1)), Pause(utc(2026, 3, 2, 2), utc(2026, 3, 2, 3))), "only the last"),
        ((Pause(utc(2026, 3, 2, 2), utc(2026, 3, 2, 1)),), "before it starts"),
        (
            (Pause(utc(2026, 3, 2, 1), utc(2026, 3, 2, 3)), Pause(utc(2026, 3, 2, 2), utc(2026, 3, 2, 4))),
            "previous pause",
        ),
    ],
)
def test_a_clock_refuses_an_impossible_pause_history(pauses: tuple[Pause, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SlaClock(utc(2026, 3, 2), Priority.P2, pauses=pauses)


def test_a_clock_normalises_its_instants_to_utc() -> None:
    clock = SlaClock(
        datetime(2026, 3, 2, 7, tzinfo=VIETNAM), Priority.P1, pauses=(Pause(datetime(2026, 3, 2, 8, tzinfo=VIETNAM)),)
    )
    assert clock.created_at.tzinfo is UTC
    assert clock.pauses[0].start.tzinfo is UTC
    assert clock.ack_due() == utc(2026, 3, 2, 0, 30)


# --- SlaPolicy and WorkingCalendar -----------------------------------------------------------------


def test_the_policy_accepts_the_plain_strings_of_a_settings_file() -> None:
    assert SlaPolicy(calendar="working_hours").clock_calendar == WORK  # type: ignore[arg-type]
    assert SlaPolicy(calendar="24x7").clock_calendar == ALWAYS  # type: ignore[arg-type]
    assert SlaPolicy().calendar is CalendarKind.TWENTY_FOUR_SEVEN


def test_the_policy_takes_its_own_targets() -> None:
    targets = {**DEFAULT_TARGETS, Priority.P1: Targets(15 * MIN, 4 * H)}
    policy = SlaPolicy(targets=targets)
    targets[Priority.P1] = Targets(H, H)  # the policy keeps its own copy
    assert policy.target(Priority.P1, ACK) == 15 * MIN
    assert SlaClock(utc(2026, 3, 2), Priority.P1, policy).resolve_due() == utc(2026, 3, 2, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": {Priority.P1: Targets(MIN, H)}}, "missing"),
        ({"targets": {**DEFAULT_TARGETS, Priority.P2: Targets(timedelta(0), H)}}, "positive"),
        ({"targets": {**DEFAULT_TARGETS, Priority.P2: Targets(2 * H, H)}}, "exceeds"),
        ({"calendar": "office"}, "office"),
    ],
)
def test_the_policy_refuses_unusable_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SlaPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"working_days": frozenset()}, "working days"),
        ({"working_days": frozenset({7})}, "working days"),
        ({"hours": ()}, "at least one"),
        ({"hours": ((time(12), time(8)),)}, "start must be before"),
        ({"hours": ((time(8), time(12)), (time(11), time(14)))}, "overlap"),
        ({"hours": ((time(8, tzinfo=UTC), time(12)),)}, "wall-clock"),
    ],
)
def test_the_working_calendar_refuses_impossible_hours(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(**kwargs)


@pytest.mark.parametrize(
    ("instant", "working", "next_working"),
    [
        (local(2026, 3, 2, 7, 30), True, local(2026, 3, 2, 7, 30)),
        (local(2026, 3, 2, 11, 30), False, local(2026, 3, 2, 13, 30)),
        (local(2026, 3, 2, 16, 59, 59), True, local(2026, 3, 2, 16, 59, 59)),
        (local(2026, 3, 2, 17), False, local(2026, 3, 3, 7, 30)),
        (local(2026, 3, 8, 9), False, local(2026, 3, 9, 7, 30)),
        (local(2026, 4, 30, 9), False, local(2026, 5, 4, 7, 30)),
    ],
)
def test_working_instants(instant: datetime, working: bool, next_working: datetime) -> None:
    assert WORK.is_working_instant(instant) is working
    assert WORK.next_working_instant(instant) == next_working


# --- naive datetimes are refused -------------------------------------------------------------------

NAIVE = datetime(2026, 3, 2, 8)  # noqa: DTZ001 (the point of the test)
AWARE = utc(2026, 3, 2, 8)
NAIVE_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("between start", lambda: business_time_between(NAIVE, AWARE, ALWAYS)),
    ("between end", lambda: business_time_between(AWARE, NAIVE, WORK)),
    ("add", lambda: add_business_time(NAIVE, H, ALWAYS)),
    ("elapsed now", lambda: elapsed([(AWARE, True)], NAIVE, ALWAYS)),
    ("elapsed event", lambda: elapsed([(NAIVE, True)], AWARE, ALWAYS)),
    ("due_at start", lambda: due_at(NAIVE, [], H, ALWAYS)),
    ("due_at pause", lambda: due_at(AWARE, [(NAIVE, AWARE)], H, ALWAYS)),
    ("clock creation", lambda: SlaClock(NAIVE, Priority.P1)),
    ("clock pause", lambda: SlaClock(AWARE, Priority.P1, pauses=(Pause(NAIVE),))),
    ("clock breach", lambda: SlaClock(AWARE, Priority.P1).is_breached(NAIVE)),
    ("clock remaining", lambda: SlaClock(AWARE, Priority.P1).remaining(NAIVE)),
    ("working instant", lambda: WORK.is_working_instant(NAIVE)),
]


@pytest.mark.parametrize("call", [c[1] for c in NAIVE_CALLS], ids=[c[0] for c in NAIVE_CALLS])
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# --- holidays --------------------------------------------------------------------------------------

TET_AND_HUNG_KINGS = [
    (2024, date(2024, 2, 10), date(2024, 4, 18)),
    (2025, date(2025, 1, 29), date(2025, 4, 7)),
    (2026, date(2026, 2, 17), date(2026, 4, 26)),
    (2027, date(2027, 2, 6), date(2027, 4, 16)),
    (2030, date(2030, 2, 2), date(2030, 4, 12)),  # Vietnam's Tết is a day before China's this year
]


@pytest.mark.parametrize(("year", "tet", "hung_kings"), TET_AND_HUNG_KINGS)
def test_lunar_holidays_of_known_years(year: int, tet: date, hung_kings: date) -> None:
    holidays = vietnam_public_holidays(year)
    assert {tet + timedelta(days=n) for n in range(-1, 4)} <= holidays
    assert tet - timedelta(days=2) not in holidays
    assert tet + timedelta(days=4) not in holidays
    assert hung_kings in holidays


def test_the_2026_holidays_in_full() -> None:
    assert sorted(vietnam_public_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 2, 16),
        date(2026, 2, 17),
        date(2026, 2, 18),
        date(2026, 2, 19),
        date(2026, 2, 20),
        date(2026, 4, 26),
        date(2026, 4, 30),
        date(2026, 5, 1),
        date(2026, 9, 1),
        date(2026, 9, 2),
    ]


@pytest.mark.parametrize("year", range(2020, 2036))
def test_every_year_of_the_table_has_eleven_statutory_days(year: int) -> None:
    assert len(vietnam_public_holidays(year)) == 11


def test_the_lunar_table_is_plausible() -> None:
    years = sorted(LUNAR_NEW_YEAR)
    assert years == sorted(HUNG_KINGS_DAY) == list(range(2020, 2036))
    for year in years:
        tet, hung_kings = LUNAR_NEW_YEAR[year], HUNG_KINGS_DAY[year]
        assert tet.year == hung_kings.year == year
        assert date(year, 1, 21) <= tet <= date(year, 2, 20)
        # 10th day of the 3rd month: two lunar months later, or three when a leap month comes between.
        assert (hung_kings - tet).days in {67, 68, 69, 96, 97, 98, 99}
    for year in years[1:]:
        assert (LUNAR_NEW_YEAR[year] - LUNAR_NEW_YEAR[year - 1]).days in {353, 354, 355, 383, 384, 385}


def test_years_outside_the_table_are_refused() -> None:
    with pytest.raises(ValueError, match="2036"):
        vietnam_public_holidays(2036)


def test_a_holiday_calendar_adds_and_removes_days() -> None:
    calendar = HolidayCalendar(extra=frozenset({date(2026, 4, 27)}), removed=frozenset({date(2026, 9, 1)}))
    assert calendar.is_holiday(date(2026, 4, 27))
    assert not calendar.is_holiday(date(2026, 9, 1))
    assert calendar.is_holiday(date(2026, 9, 2))
    assert calendar.holidays(2026) == vietnam_public_holidays(2026) - {date(2026, 9, 1)} | {date(2026, 4, 27)}
    assert vietnam_public_holidays(2026) is not vietnam_public_holidays(2026)  # callers may change their copy


def test_a_holiday_calendar_without_the_statutory_days() -> None:
    calendar = HolidayCalendar(extra=frozenset({date(2040, 1, 1)}), statutory=False)
    assert calendar.is_holiday(date(2040, 1, 1))
    assert not calendar.is_holiday(date(2026, 4, 30))
    assert calendar.holidays(2040) == {date(2040, 1, 1)}


def test_a_day_cannot_be_both_added_and_removed() -> None:
    with pytest.raises(ValueError, match="30/04/2026"):
        HolidayCalendar(extra=frozenset({date(2026, 4, 30)}), removed=frozenset({date(2026, 4, 30)}))


# --- properties ------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
instants = st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2034, 6, 30), timezones=st.just(UTC))  # noqa: DTZ001
working_instants = instants.map(WORK.next_working_instant)
amounts = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=300))
calendars = st.sampled_from([ALWAYS, WORK])
short = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4))


@st.composite
def pause_lists(draw: st.DrawFn, start: datetime) -> list[tuple[datetime, datetime]]:
    """Disjoint pauses in order after `start`."""
    pauses = []
    cursor = start
    for gap, length in draw(st.lists(st.tuples(short, short), max_size=5)):
        pauses.append((cursor + gap, cursor + gap + length))
        cursor += gap + length
    return pauses


@PROPERTY_SETTINGS
@given(start=instants, amount=amounts, calendar=calendars)
def test_counting_up_to_the_due_time_gives_back_the_amount(
    start: datetime, amount: timedelta, calendar: Calendar
) -> None:
    due = add_business_time(start, amount, calendar)
    assert due.tzinfo is UTC
    assert due >= start
    assert business_time_between(start, due, calendar) == amount


@PROPERTY_SETTINGS
@given(start=working_instants, amount=amounts)
def test_from_a_working_instant_the_due_time_is_the_earliest_possible(start: datetime, amount: timedelta) -> None:
    due = add_business_time(start, amount, WORK)
    assert business_time_between(start, due, WORK) == amount
    if amount > timedelta(0):
        assert business_time_between(start, due - timedelta(microseconds=1), WORK) < amount
    else:
        assert due == start


@PROPERTY_SETTINGS
@given(start=instants, first=amounts, second=amounts, calendar=calendars)
def test_due_times_grow_with_the_amount(
    start: datetime, first: timedelta, second: timedelta, calendar: Calendar
) -> None:
    smaller, larger = sorted((first, second))
    assert add_business_time(start, smaller, calendar) <= add_business_time(start, larger, calendar)


@PROPERTY_SETTINGS
@given(start=instants, delay=short, amount=amounts, calendar=calendars)
def test_due_times_grow_with_the_start(
    start: datetime, delay: timedelta, amount: timedelta, calendar: Calendar
) -> None:
    assert add_business_time(start, amount, calendar) <= add_business_time(start + delay, amount, calendar)


@PROPERTY_SETTINGS
@given(start=instants, first=short, second=short, calendar=calendars)
def test_counted_time_adds_up_and_never_exceeds_real_time(
    start: datetime, first: timedelta, second: timedelta, calendar: Calendar
) -> None:
    middle, end = start + first, start + first + second
    counted = business_time_between(start, end, calendar)
    assert counted == business_time_between(start, middle, calendar) + business_time_between(middle, end, calendar)
    assert timedelta(0) <= business_time_between(start, middle, calendar) <= counted <= end - start
    assert business_time_between(end, start, calendar) == -counted


@PROPERTY_SETTINGS
@given(data=st.data(), start=instants, target=amounts, calendar=calendars)
def test_pauses_never_shorten_a_due_time(
    data: st.DataObject, start: datetime, target: timedelta, calendar: Calendar
) -> None:
    pauses = data.draw(pause_lists(start))
    due = due_at(start, pauses, target, calendar)
    assert due >= due_at(start, [], target, calendar)
    if pauses:
        assert due >= due_at(start, pauses[:-1], target, calendar)


@PROPERTY_SETTINGS
@given(data=st.data(), start=instants, priority=st.sampled_from(Priority), kind=st.sampled_from(SlaTarget))
def test_the_clock_reaches_its_target_exactly_at_the_due_time(
    data: st.DataObject, start: datetime, priority: Priority, kind: SlaTarget
) -> None:
    policy = data.draw(st.sampled_from([SlaPolicy(), WORKING_HOURS_POLICY]))
    pauses = tuple(Pause(begin, end) for begin, end in data.draw(pause_lists(start)))
    clock = SlaClock(start, priority, policy, pauses)
    due = clock.due(kind)
    assert due is not None
    assert clock.elapsed(due) == clock.target(kind)
    assert clock.remaining(due, kind) == timedelta(0)
    assert not clock.is_breached(due, kind)
    assert clock.elapsed(due - timedelta(microseconds=1)) < clock.target(kind)
