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


def cron_trigger(expression: str) -> CronTrigger:
    """A five-field cron expression, read in Asia/Ho_Chi_Minh; InvalidInput when it is not one."""
    try:
        return CronTrigger.from_crontab(expression, timezone=LOCAL_ZONE)
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
