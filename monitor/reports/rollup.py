"""Daily roll-ups: the spans added up per local day, commune and kind of device, for fast reports.

A day is rolled up once it has ended (plus `report_rollup_lag_s`) and no change dated before its end is
still waiting to be laid into spans. Only active devices count, each from the start of its install day
(or its creation in the service, whichever is later). Roll-ups keep the true states: maintenance windows
are laid over them when a report is asked for, so a window entered afterwards needs no rebuild.

`roll_up` computes every day that is due and not listed yet, in ranges of consecutive days, in one pass
over the spans of a range: a span's first and last partial days are added directly and the whole days
between them through a difference array, so a year is as cheap as a day per span. `rebuild` starts over.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from monitor.reports.spans import CHANGES, DAILY, DAYS, DEVICES, SPANS, seed_spans
from monitor.reports.timeline import DAY_S, STATES, StateSeconds, day_start, local_day, period_bounds

log = logging.getLogger(__name__)

Group = tuple[str, str]  # (commune_code, kind)


@dataclass(frozen=True, slots=True)
class CountedDevice:
    """A device as the reports count it: where it stands, what it is, and from when it counts."""

    id: int
    commune_code: str
    kind: str
    counts_from: datetime
    created_at: datetime


def counts_from(installed_on: date | None, created_at: datetime) -> datetime:
    """A device counts from the start of its install day, but never before the service knew it."""
    return created_at if installed_on is None else max(created_at, day_start(installed_on))


def counted_devices(connection: Connection, *conditions: Any) -> dict[int, CountedDevice]:
    """The active devices (matching `conditions` on the devices table), by id."""
    rows = connection.execute(
        sa.select(
            DEVICES.c.id, DEVICES.c.commune_code, DEVICES.c.kind, DEVICES.c.installed_on, DEVICES.c.created_at
        ).where(DEVICES.c.active.is_(True), *conditions)
    )
    return {
        row.id: CountedDevice(
            row.id, row.commune_code, row.kind, counts_from(row.installed_on, row.created_at), row.created_at
        )
        for row in rows
    }


def spans_between(connection: Connection, start: datetime, end: datetime, *conditions: Any) -> Iterator[Any]:
    """Spans overlapping [start, end) (device_id, state, started_at, ended_at), streamed."""
    query = sa.select(SPANS.c.device_id, SPANS.c.state, SPANS.c.started_at, SPANS.c.ended_at).where(
        SPANS.c.started_at < end, sa.or_(SPANS.c.ended_at.is_(None), SPANS.c.ended_at > start), *conditions
    )
    yield from connection.execute(query.execution_options(yield_per=5000))


def due_until(connection: Connection, now: datetime, lag_s: float) -> date | None:
    """The last day that may be rolled up now: ended `lag_s` ago, and no change before its end still pending."""
    last = local_day(now - timedelta(seconds=lag_s)) - timedelta(days=1)
    oldest_pending = connection.execute(
        sa.select(sa.func.min(CHANGES.c.at)).where(CHANGES.c.spanned_at.is_(None))
    ).scalar()
    if oldest_pending is not None:
        last = min(last, local_day(oldest_pending) - timedelta(days=1))
    return last


def first_day(connection: Connection) -> date | None:
    """The first day any span covers."""
    start = connection.execute(sa.select(sa.func.min(SPANS.c.started_at))).scalar()
    return None if start is None else local_day(start)


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def roll_up(session: Session, now: datetime, *, lag_s: float = 300.0, max_days: int = 400) -> int:
    """Roll up the due days not listed yet (at most `max_days` in one call); how many were written.

    The caller holds the reports' lock (`spans.take_lock`) and commits."""
    connection = session.connection()
    seed_spans(session)
    last = due_until(connection, now, lag_s)
    first = first_day(connection)
    if first is None or last is None or last < first:
        return 0
    listed = {
        row.day for row in connection.execute(sa.select(DAYS.c.day).where(DAYS.c.day >= first, DAYS.c.day <= last))
    }
    missing = [day for day in _dates(first, last) if day not in listed][:max_days]
    for range_first, range_last in _ranges(missing):
        write_days(connection, range_first, range_last, now)
    return len(missing)


def _dates(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def compute_days(
    connection: Connection, first: date, last: date
) -> dict[tuple[date, str, str], tuple[StateSeconds, int]]:
    """Seconds by state and devices counted, per (day, commune, kind), for the days [first, last]."""
    start, end = period_bounds(first, last)
    devices = counted_devices(connection, DEVICES.c.created_at < end)
    count = (last - first).days + 1
    partial: dict[tuple[date, str, str], StateSeconds] = defaultdict(StateSeconds)
    # whole days: difference arrays per (group, state), and per group for the devices counted
    whole: dict[tuple[Group, str], list[float]] = defaultdict(lambda: [0.0] * (count + 1))
    present: dict[Group, list[int]] = defaultdict(lambda: [0] * (count + 1))
    seen: dict[int, tuple[int, int]] = {}
    for span in spans_between(connection, start, end):
        device = devices.get(span.device_id)
        if device is None:
            continue
        lo = max(span.started_at, start, device.counts_from)
        hi = end if span.ended_at is None else min(span.ended_at, end)
        if hi <= lo:
            continue
        group = (device.commune_code, device.kind)
        first_index = (local_day(lo) - first).days
        last_index = (local_day(hi - timedelta(microseconds=1)) - first).days
        low, high = seen.get(device.id, (first_index, last_index))
        seen[device.id] = (min(low, first_index), max(high, last_index))
        if first_index == last_index:
            partial[(first + timedelta(days=first_index), *group)].add(span.state, (hi - lo).total_seconds())
            continue
        first_end = day_start(first + timedelta(days=first_index + 1))
        partial[(first + timedelta(days=first_index), *group)].add(span.state, (first_end - lo).total_seconds())
        last_start = day_start(first + timedelta(days=last_index))
        partial[(first + timedelta(days=last_index), *group)].add(span.state, (hi - last_start).total_seconds())
        if last_index - first_index > 1:
            diff = whole[(group, span.state if span.state in STATES else "unknown")]
            diff[first_index + 1] += DAY_S
            diff[last_index] -= DAY_S
    for device_id, (low, high) in seen.items():
        device = devices[device_id]
        marks = present[(device.commune_code, device.kind)]
        marks[low] += 1
        marks[high + 1] -= 1
    out: dict[tuple[date, str, str], tuple[StateSeconds, int]] = {}
    groups = {(c, k) for (_, c, k) in partial} | {g for g, _ in whole} | set(present)
    for group in groups:
        running = {state: 0.0 for state in STATES}
        diffs = {state: whole.get((group, state)) for state in STATES}
        marks = present.get(group, [0] * (count + 1))
        devices_running = 0
        for index in range(count):
            day = first + timedelta(days=index)
            seconds = StateSeconds()
            for state in STATES:
                steps = diffs[state]
                if steps is not None:
                    running[state] += steps[index]
                seconds.add(state, running[state])
            extra = partial.get((day, *group))
            if extra is not None:
                seconds.merge(extra)
            devices_running += marks[index]
            if seconds.total_s > 0 or devices_running:
                out[(day, *group)] = (seconds, devices_running)
    return out


def write_days(connection: Connection, first: date, last: date, now: datetime) -> None:
    """Compute and store the roll-up rows of [first, last], and list the days as rolled."""
    rows = compute_days(connection, first, last)
    connection.execute(DAILY.delete().where(DAILY.c.day >= first, DAILY.c.day <= last))
    connection.execute(DAYS.delete().where(DAYS.c.day >= first, DAYS.c.day <= last))
    if rows:
        connection.execute(
            DAILY.insert(),
            [
                {
                    "day": day,
                    "commune_code": commune,
                    "kind": kind,
                    "up_s": seconds.up_s,
                    "degraded_s": seconds.degraded_s,
                    "down_s": seconds.down_s,
                    "unknown_s": seconds.unknown_s,
                    "maintenance_s": seconds.maintenance_s,
                    "devices": devices,
                }
                for (day, commune, kind), (seconds, devices) in rows.items()
            ],
        )
    connection.execute(DAYS.insert(), [{"day": day, "rolled_at": now} for day in _dates(first, last)])
    log.info("uptime rolled up for %s to %s (%d rows)", first, last, len(rows))


def rebuild(session: Session, now: datetime, *, lag_s: float = 300.0) -> int:
    """Forget every roll-up and compute them again from the spans; the days written."""
    connection = session.connection()
    connection.execute(DAILY.delete())
    connection.execute(DAYS.delete())
    return roll_up(session, now, lag_s=lag_s, max_days=100_000)
