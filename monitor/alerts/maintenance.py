"""Maintenance windows: when is one open, and what does it cover (pure, apart from loading them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session, col, select

from monitor.alerts.decide import Subject
from monitor.alerts.models import MaintenanceWindow
from monitor.errors import InvalidInput, Problem
from monitor.i18n import LOCAL_ZONE

SCOPES = ("device", "commune", "district", "kind")


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """The day-of-week field of cron (0 or 7 Sunday, 1 Monday … 6 Saturday) in APScheduler's names.

    APScheduler 3 reads numbers in that field from Monday = 0, so `0 2 * * 0` would run on Mondays:
    numbers are turned into names, which both read alike. Names and `*` pass as they are.
    """
    if not any(c.isdigit() for c in field) or field in ("*", "?"):
        return field
    days: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        if any(c.isalpha() for c in base):
            raise ValueError(f"write day-of-week as numbers or as names, not both: {field!r}")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            first, last = 0, 6
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = int(first_text), int(last_text)
        else:
            first = last = int(base)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step > 0):
            raise ValueError(f"day-of-week out of 0-7: {item!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A five-field cron expression (standard cron: day-of-week 0 is Sunday), read in Asia/Ho_Chi_Minh;
    InvalidInput when it is not one."""
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
        minute, hour, day, month, weekday = fields
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_weekdays(weekday), timezone=LOCAL_ZONE
        )
    except ValueError as exc:
        raise InvalidInput("bad cron expression", [Problem("cron", f"{expression!r}: {exc}")]) from exc


def is_open(window: MaintenanceWindow, now: datetime) -> bool:
    """Whether the window mutes problems at `now`."""
    if not window.active or now < window.starts_at or (window.ends_at is not None and now >= window.ends_at):
        return False
    if window.cron is None:
        return True
    duration = timedelta(seconds=window.duration_s or 0)
    # The latest occurrence that started at most `duration` ago, if any.
    first = cron_trigger(window.cron).get_next_fire_time(None, now - duration)
    return first is not None and first <= now


def occurrences(window: MaintenanceWindow, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """When the window was (or will be) open within [start, end), as sorted intervals, whether or not it
    is still active: an ended window keeps its history up to its `ends_at`."""
    lo, hi = max(start, window.starts_at), end if window.ends_at is None else min(end, window.ends_at)
    if hi <= lo:
        return []
    if window.cron is None:
        return [(lo, hi)]
    duration = timedelta(seconds=window.duration_s or 0)
    trigger = cron_trigger(window.cron)
    out = []
    fire = trigger.get_next_fire_time(None, max(window.starts_at, lo - duration))
    while fire is not None and fire < hi:
        if fire + duration > lo:
            out.append((max(fire, lo), min(fire + duration, hi)))
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return out


def covers(window: MaintenanceWindow, subject: Subject) -> bool:
    """Whether the window's scope includes the subject."""
    value = {
        "device": subject.device_code,
        "commune": subject.commune_code,
        "district": subject.district_code,
        "kind": subject.kind,
    }.get(window.scope)
    return value is not None and value == window.scope_code


def open_windows(now: datetime, *, session: Session) -> list[MaintenanceWindow]:
    """The windows open at `now`."""
    candidates = session.exec(
        select(MaintenanceWindow).where(col(MaintenanceWindow.active).is_(True), MaintenanceWindow.starts_at <= now)
    )
    return [w for w in candidates if is_open(w, now)]


def muting(windows: Sequence[MaintenanceWindow], subjects: Iterable[Subject]) -> MaintenanceWindow | None:
    """The first window that covers any of the subjects (a group problem is muted when its place is)."""
    for subject in subjects:
        for window in windows:
            if covers(window, subject):
                return window
    return None


def validate_window(window: MaintenanceWindow) -> None:
    """Refuse a window that cannot work, listing every problem."""
    problems = []
    if window.scope not in SCOPES:
        problems.append(Problem("scope", f"one of {', '.join(SCOPES)}"))
    if not window.scope_code:
        problems.append(Problem("scope_code", "required"))
    if window.cron is None and window.ends_at is None:
        problems.append(Problem("ends_at", "a one-off window needs its end"))
    if window.ends_at is not None and window.ends_at <= window.starts_at:
        problems.append(Problem("ends_at", "must be after starts_at"))
    if window.cron is not None:
        if not window.duration_s or window.duration_s <= 0:
            problems.append(Problem("duration_s", "a recurring window needs the length of each occurrence"))
        try:
            cron_trigger(window.cron)
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput("maintenance window refused", problems)
