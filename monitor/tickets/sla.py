"""SLA clocks of repair tickets: pure arithmetic over UTC datetimes, no I/O.

Each priority has two targets, time to acknowledge and time to resolve. A ticket's clock runs from its
creation, stops while the ticket waits (parts, access, weather) and, when the policy says so, counts
only the working hours of a Vietnamese public office (Asia/Ho_Chi_Minh, Monday to Friday, 07:30–11:30
and 13:30–17:00, public holidays off).

Every function here refuses naive datetimes (ValueError), accepts aware ones in any zone and returns
UTC-aware ones; working-hours arithmetic happens in the calendar's local zone.

Rules chosen:
- A due time is the earliest instant at which the counted time reaches the target: a target that ends
  exactly at 11:30 is due at 11:30, not at 13:30.
- Time is counted in half-open intervals: 07:30 is working time, 11:30 is not.
- A priority change applies the new priority's targets from the ticket's creation, counting the time
  already elapsed (due = created + new target + pauses), as Zammad and Jira Service Management do:
  raising a ticket to P1 after an hour makes it overdue at once, which is what an escalation means.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import NamedTuple, TypeAlias
from zoneinfo import ZoneInfo

from monitor.i18n import LOCAL_ZONE, format_date, format_time
from monitor.labels import LabelledEnum
from monitor.priority import Priority
from monitor.tickets.holidays import HolidayCalendar

# Public-office hours (giờ hành chính) used by most provincial and commune offices.
OFFICE_HOURS: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))
MONDAY_TO_FRIDAY = frozenset(range(5))
# A working calendar that finds no working time for this many days in a row is taken as broken,
# so that arithmetic fails loudly instead of looping (the longest real break, Tết, is about 9 days).
MAX_DAYS_WITHOUT_WORK = 366
ZERO = timedelta(0)


class CalendarKind(LabelledEnum):
    """Which time an SLA clock counts: every instant, or working hours only."""

    TWENTY_FOUR_SEVEN = "24x7", "Liên tục 24/7", "Around the clock (24x7)"
    WORKING_HOURS = "working_hours", "Giờ hành chính", "Working hours"


class SlaTarget(LabelledEnum):
    """The two SLA targets of a ticket."""

    ACKNOWLEDGE = "acknowledge", "Thời hạn tiếp nhận", "Time to acknowledge"
    RESOLVE = "resolve", "Thời hạn khắc phục", "Time to resolve"


class Targets(NamedTuple):
    """The counted time allowed to acknowledge and to resolve a ticket of one priority."""

    acknowledge: timedelta
    resolve: timedelta


DEFAULT_TARGETS: Mapping[Priority, Targets] = MappingProxyType(
    {
        Priority.P1: Targets(timedelta(minutes=30), timedelta(hours=8)),
        Priority.P2: Targets(timedelta(hours=2), timedelta(hours=24)),
        Priority.P3: Targets(timedelta(hours=8), timedelta(hours=72)),
        Priority.P4: Targets(timedelta(hours=24), timedelta(days=7)),
    }
)


class ClockEvent(NamedTuple):
    """A change of a ticket's clock: created or resumed (running), waiting or resolved (stopped)."""

    at: datetime
    running: bool


class Pause(NamedTuple):
    """A time the ticket spent waiting; `end` is None while it still waits."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContinuousCalendar:
    """Around the clock (24x7): every instant counts."""


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Working time: `hours` of each working day in `time_zone`, except holidays.

    `working_days` are ISO weekdays counted from Monday = 0; `hours` are sorted, disjoint intervals
    of one day, start included and end excluded.
    """

    time_zone: ZoneInfo = LOCAL_ZONE
    working_days: frozenset[int] = MONDAY_TO_FRIDAY
    hours: tuple[tuple[time, time], ...] = OFFICE_HOURS
    holidays: HolidayCalendar = field(default_factory=HolidayCalendar)

    def __post_init__(self) -> None:
        if not self.working_days or not self.working_days <= set(range(7)):
            raise ValueError(f"working days must be weekdays 0 (Monday) to 6, got {sorted(self.working_days)}")
        if not self.hours:
            raise ValueError("a working calendar needs at least one interval of working hours")
        previous_end: time | None = None
        for start, end in self.hours:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working hours are local wall-clock times: give them without a time zone")
            if not start < end:
                hours = f"{format_time(start)}–{format_time(end)}"
                raise ValueError(f"working hours {hours}: the start must be before the end")
            if previous_end is not None and start < previous_end:
                hours = f"{format_time(start)}–{format_time(end)}"
                raise ValueError(f"working hours {hours} overlap or are out of order")
            previous_end = end

    def is_working_day(self, day: date) -> bool:
        """Whether the local date `day` has working hours."""
        return day.weekday() in self.working_days and not self.holidays.is_holiday(day)

    def periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of the local date `day`, as UTC instants (empty on a day off)."""
        if not self.is_working_day(day):
            return []
        return [
            (
                datetime.combine(day, start, tzinfo=self.time_zone).astimezone(UTC),
                datetime.combine(day, end, tzinfo=self.time_zone).astimezone(UTC),
            )
            for start, end in self.hours
        ]

    def periods_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working periods that end after `instant`, in order, without end."""
        instant = as_utc(instant, "instant")
        day = instant.astimezone(self.time_zone).date()
        idle_days = 0
        while True:
            periods = [(start, end) for start, end in self.periods_on(day) if end > instant]
            idle_days = 0 if periods else idle_days + 1
            if idle_days > MAX_DAYS_WITHOUT_WORK:
                raise ValueError(f"no working time in the {MAX_DAYS_WITHOUT_WORK} days before {format_date(day)}")
            yield from periods
            day += timedelta(days=1)

    def is_working_instant(self, instant: datetime) -> bool:
        """Whether the clock runs at `instant`."""
        instant = as_utc(instant, "instant")
        start, _ = next(self.periods_from(instant))
        return start <= instant

    def next_working_instant(self, instant: datetime) -> datetime:
        """`instant` itself if it is working time, otherwise the start of the next working period."""
        instant = as_utc(instant, "instant")
        start, _ = next(self.periods_from(instant))
        return max(start, instant)


Calendar: TypeAlias = ContinuousCalendar | WorkingCalendar


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """The SLA targets per priority and which time the clocks count.

    `targets` must name every priority, with positive targets and acknowledge no later than resolve.
    `working_calendar` is used only when `calendar` is working hours.
    """

    targets: Mapping[Priority, Targets] = field(default_factory=lambda: DEFAULT_TARGETS)
    calendar: CalendarKind = CalendarKind.TWENTY_FOUR_SEVEN
    working_calendar: WorkingCalendar = field(default_factory=WorkingCalendar)

    def __post_init__(self) -> None:
        # Accept the plain strings of a settings file ("24x7", "working_hours").
        object.__setattr__(self, "calendar", CalendarKind(self.calendar))
        missing = [p.value for p in Priority if p not in self.targets]
        if missing:
            raise ValueError(f"SLA targets missing for priorities {', '.join(missing)}")
        for priority, (acknowledge, resolve) in self.targets.items():
            if acknowledge <= ZERO or resolve <= ZERO:
                raise ValueError(f"SLA targets of {priority.value} must be positive")
            if acknowledge > resolve:
                raise ValueError(f"SLA targets of {priority.value}: time to acknowledge exceeds time to resolve")
        # A read-only copy: the policy must not change under the clocks that use it.
        object.__setattr__(
            self, "targets", MappingProxyType({Priority(p): Targets(*t) for p, t in self.targets.items()})
        )

    @property
    def clock_calendar(self) -> Calendar:
        """The calendar the clocks of this policy count in."""
        if self.calendar is CalendarKind.WORKING_HOURS:
            return self.working_calendar
        return ContinuousCalendar()

    def target(self, priority: Priority, kind: SlaTarget) -> timedelta:
        """The counted time allowed for `kind` at `priority`."""
        targets = self.targets[priority]
        return targets.acknowledge if kind is SlaTarget.ACKNOWLEDGE else targets.resolve


def as_utc(instant: datetime, what: str = "datetime") -> datetime:
    """`instant` in UTC; a naive datetime is refused with ValueError, since its zone would be a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def business_time_between(start: datetime, end: datetime, calendar: Calendar) -> timedelta:
    """The time `calendar` counts from `start` to `end`; negative when `end` is before `start`.

    Around the clock this is the plain difference; in working hours only working periods count.
    """
    start, end = as_utc(start, "start"), as_utc(end, "end")
    if end < start:
        return -business_time_between(end, start, calendar)
    if isinstance(calendar, ContinuousCalendar):
        return end - start
    counted = ZERO
    for period_start, period_end in calendar.periods_from(start):
        if period_start >= end:
            break
        counted += min(period_end, end) - max(period_start, start)
    return counted


def add_business_time(start: datetime, amount: timedelta, calendar: Calendar) -> datetime:
    """The earliest instant at which `calendar` has counted `amount` since `start`: a due time.

    In working hours, a `start` outside working time starts the clock at the next working instant
    (so a zero `amount` gives that instant). A negative `amount` is refused with ValueError.
    """
    start = as_utc(start, "start")
    if amount < ZERO:
        raise ValueError(f"cannot add a negative amount of time ({amount})")
    if isinstance(calendar, ContinuousCalendar):
        return start + amount
    left = amount
    for period_start, period_end in calendar.periods_from(start):
        clock_start = max(period_start, start)
        if left <= period_end - clock_start:
            return clock_start + left
        left -= period_end - clock_start
    raise AssertionError("unreachable: periods_from never ends")  # pragma: no cover


def elapsed(clock_events: Iterable[tuple[datetime, bool]], now: datetime, calendar: Calendar) -> timedelta:
    """The time counted up to `now` by a clock that runs between its running and stopped events.

    `clock_events` are `(at, running)` pairs in time order: created and resumed run the clock, waiting
    and resolved stop it; repeating the current state changes nothing, and events after `now` are
    ignored. Events out of order are refused with ValueError.
    """
    now = as_utc(now, "now")
    counted = ZERO
    running_since: datetime | None = None
    previous: datetime | None = None
    for at, running in clock_events:
        at = as_utc(at, "clock event")
        if previous is not None and at < previous:
            raise ValueError(f"clock events out of order: {at.isoformat()} after {previous.isoformat()}")
        previous = at
        if at >= now:
            break
        if running and running_since is None:
            running_since = at
        elif not running and running_since is not None:
            counted += business_time_between(running_since, at, calendar)
            running_since = None
    if running_since is not None:
        counted += business_time_between(running_since, now, calendar)
    return counted


def due_at(
    start: datetime, pauses: Iterable[tuple[datetime, datetime]], target: timedelta, calendar: Calendar
) -> datetime:
    """When a clock started at `start` reaches `target`, the completed `pauses` not counting.

    Pauses may come in any order and overlap; the parts before `start` are ignored. A pause that
    ends before it starts, or a negative target, is refused with ValueError.
    """
    start = as_utc(start, "start")
    if target < ZERO:
        raise ValueError(f"an SLA target cannot be negative ({target})")
    intervals = sorted((as_utc(begin, "pause start"), as_utc(end, "pause end")) for begin, end in pauses)
    counted = ZERO
    cursor = start
    for begin, end in intervals:
        if end < begin:
            raise ValueError(f"pause ends ({end.isoformat()}) before it starts ({begin.isoformat()})")
        if end <= cursor:
            continue
        if begin > cursor:
            running = business_time_between(cursor, begin, calendar)
            if counted + running >= target:
                return add_business_time(cursor, target - counted, calendar)
            counted += running
        cursor = end
    return add_business_time(cursor, target - counted, calendar)


@dataclass(frozen=True, slots=True)
class SlaClock:
    """The SLA clocks of one ticket, derived from its creation, priority, pauses and policy.

    `pauses` are the ticket's waiting times so far, in order and disjoint, none before creation;
    only the last may be open (still waiting). Nothing is stored but these facts: due times and
    breaches are computed when asked, so they never drift from the history.

    Once the ticket is acknowledged or resolved, ask with `now` set to that instant.
    """

    created_at: datetime
    priority: Priority
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    pauses: tuple[Pause, ...] = ()

    def __post_init__(self) -> None:
        created_at = as_utc(self.created_at, "created_at")
        pauses: list[Pause] = []
        last = created_at
        for index, (start, end) in enumerate(self.pauses):
            start = as_utc(start, "pause start")
            end = None if end is None else as_utc(end, "pause end")
            if start < last:
                raise ValueError(f"pause starting {start.isoformat()} is before creation or the previous pause")
            if end is None and index != len(self.pauses) - 1:
                raise ValueError("only the last pause may still be open")
            if end is not None and end < start:
                raise ValueError(f"pause ends ({end.isoformat()}) before it starts ({start.isoformat()})")
            pauses.append(Pause(start, end))
            last = start if end is None else end
        object.__setattr__(self, "created_at", created_at)
        object.__setattr__(self, "priority", Priority(self.priority))
        object.__setattr__(self, "pauses", tuple(pauses))

    @property
    def is_paused(self) -> bool:
        """Whether the ticket is waiting now (its last pause is open)."""
        return bool(self.pauses) and self.pauses[-1].end is None

    def target(self, kind: SlaTarget) -> timedelta:
        """The counted time allowed for `kind` at the current priority."""
        return self.policy.target(self.priority, kind)

    def clock_events(self) -> list[ClockEvent]:
        """The clock's history: running from creation, stopped and resumed by each pause."""
        events = [ClockEvent(self.created_at, running=True)]
        for start, end in self.pauses:
            events.append(ClockEvent(start, running=False))
            if end is not None:
                events.append(ClockEvent(end, running=True))
        return events

    def elapsed(self, now: datetime) -> timedelta:
        """The time counted from creation to `now`, pauses excluded."""
        return elapsed(self.clock_events(), now, self.policy.clock_calendar)

    def due(self, kind: SlaTarget) -> datetime | None:
        """When `kind` falls due; None while the ticket waits without having reached it yet.

        While the clock is stopped the due time is not known: it moves with the end of the pause.
        """
        closed = [(start, end) for start, end in self.pauses if end is not None]
        due = due_at(self.created_at, closed, self.target(kind), self.policy.clock_calendar)
        if self.is_paused and due > self.pauses[-1].start:
            return None
        return due

    def ack_due(self) -> datetime | None:
        """When the ticket must be acknowledged (None while waiting, see `due`)."""
        return self.due(SlaTarget.ACKNOWLEDGE)

    def resolve_due(self) -> datetime | None:
        """When the ticket must be resolved (None while waiting, see `due`)."""
        return self.due(SlaTarget.RESOLVE)

    def is_breached(self, now: datetime, kind: SlaTarget = SlaTarget.RESOLVE) -> bool:
        """Whether `kind` was due before `now`."""
        due = self.due(kind)
        return due is not None and as_utc(now, "now") > due

    def remaining(self, now: datetime, kind: SlaTarget = SlaTarget.RESOLVE) -> timedelta:
        """Counted time left at `now` before `kind` is due; zero or negative once due.

        In working hours the figure is working time: it does not change overnight or while waiting,
        and past the due time it goes negative by the working time counted since.
        """
        return self.target(kind) - self.elapsed(now)

    def with_priority(self, priority: Priority) -> SlaClock:
        """The clock after a priority change: the new targets apply from creation, elapsed time counts."""
        return replace(self, priority=priority)
