"""The state history laid flat: `state_changes` folded into `state_spans`, one row per state period.

`fold_changes` takes the changes not laid yet (`spanned_at IS NULL`, in id order), closes each device's
open span at the change and opens the next; a device's first change also lays the span before it (from
the device's creation, in the change's old state). A change dated inside a day already rolled up (a
collector that flushes late) un-lists the days from it on, so the next roll-up computes them again.

One folder at a time: PostgreSQL takes a transaction-level advisory lock (another folder skips its turn),
SQLite's write lock is taken up front. Several processes may run the job; the spans stay one per period.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from monitor.db import begin_write
from monitor.health.models import StateChange
from monitor.inventory.models import Device
from monitor.reports.models import StateSpan, UptimeDaily, UptimeDay
from monitor.reports.timeline import day_start, local_day

log = logging.getLogger(__name__)

CHANGES = StateChange.__table__  # type: ignore[attr-defined]
SPANS = StateSpan.__table__  # type: ignore[attr-defined]
DEVICES = Device.__table__  # type: ignore[attr-defined]
DAILY = UptimeDaily.__table__  # type: ignore[attr-defined]
DAYS = UptimeDay.__table__  # type: ignore[attr-defined]
_LOCK_KEY = 0x5EA7_0001  # pg_advisory_xact_lock key of the reports' fold and roll-up
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class FoldResult:
    """What one fold did: changes laid, spans written, rolled-up days un-listed for a late change."""

    changes: int = 0
    spans: int = 0
    days_reopened: int = 0


def take_lock(connection: Connection) -> bool:
    """Whether this transaction may fold and roll up now (False: another process is at it)."""
    if connection.dialect.name == "postgresql":
        return bool(connection.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}).scalar())
    begin_write(connection)
    return True


def fold_changes(session: Session, now: datetime, *, limit: int = 20_000) -> FoldResult:
    """Lay up to `limit` pending state changes into spans; the caller commits (with the lock taken)."""
    connection = session.connection()
    pending = connection.execute(
        sa.select(CHANGES.c.id, CHANGES.c.device_id, CHANGES.c.old_state, CHANGES.c.new_state, CHANGES.c.at)
        .where(CHANGES.c.spanned_at.is_(None))
        .order_by(CHANGES.c.id)
        .limit(limit)
    ).all()
    if not pending:
        return FoldResult()
    by_device: dict[int, list[Any]] = defaultdict(list)
    for row in pending:
        by_device[row.device_id].append(row)
    device_ids = sorted(by_device)
    open_spans: dict[int, tuple[int, str, datetime]] = {}
    created: dict[int, datetime] = {}
    for start in range(0, len(device_ids), _CHUNK):
        chunk = device_ids[start : start + _CHUNK]
        for span in connection.execute(
            sa.select(SPANS.c.id, SPANS.c.device_id, SPANS.c.state, SPANS.c.started_at).where(
                SPANS.c.device_id.in_(chunk), SPANS.c.ended_at.is_(None)
            )
        ):
            open_spans[span.device_id] = (span.id, span.state, span.started_at)
        for device in connection.execute(sa.select(DEVICES.c.id, DEVICES.c.created_at).where(DEVICES.c.id.in_(chunk))):
            created[device.id] = device.created_at

    ends: list[dict[str, object]] = []  # the open span of a device ends at its next change
    inserts: list[dict[str, object]] = []
    earliest_late: datetime | None = None
    rolled_until = _rolled_until(connection)
    for device_id, changes in by_device.items():
        if device_id not in created:  # the device was deleted meanwhile: its changes went with it
            continue
        changes.sort(key=lambda change: (change.at, change.id))
        current = open_spans.get(device_id)
        periods: list[tuple[str, datetime]] = [] if current is None else [(current[1], current[2])]
        for change in changes:
            at = change.at
            if periods and at < periods[-1][1]:
                log.warning(
                    "state change %s of device %s is older than its last span: laid at its start", change.id, device_id
                )
                at = periods[-1][1]
            if rolled_until is not None and at < rolled_until:
                earliest_late = at if earliest_late is None else min(earliest_late, at)
            if not periods:  # the device's first change: before it, the device was in its old state
                periods.append((change.old_state, min(created[device_id], at)))
            if change.new_state != periods[-1][0]:
                periods.append((change.new_state, at))
        first_new = 0
        if current is not None:
            if len(periods) == 1:
                continue
            ends.append({"span_id": current[0], "end": periods[1][1]})
            first_new = 1
        for index in range(first_new, len(periods)):
            state, started = periods[index]
            ended = periods[index + 1][1] if index + 1 < len(periods) else None
            inserts.append({"device_id": device_id, "state": state, "started_at": started, "ended_at": ended})

    if ends:  # before the inserts: a device has at most one open span
        connection.execute(
            SPANS.update().where(SPANS.c.id == sa.bindparam("span_id")).values(ended_at=sa.bindparam("end")), ends
        )
    if inserts:
        connection.execute(SPANS.insert(), inserts)
    ids = [row.id for row in pending]
    for start in range(0, len(ids), _CHUNK):
        connection.execute(CHANGES.update().where(CHANGES.c.id.in_(ids[start : start + _CHUNK])).values(spanned_at=now))
    reopened = reopen_days_from(session, local_day(earliest_late)) if earliest_late is not None else 0
    return FoldResult(changes=len(pending), spans=len(inserts), days_reopened=reopened)


def _rolled_until(connection: Connection) -> datetime | None:
    """The end of the last rolled-up day, if any (a change before it is late)."""
    last = connection.execute(sa.select(sa.func.max(DAYS.c.day))).scalar()
    return None if last is None else day_start(last + timedelta(days=1))


def reopen_days_from(session: Session, first: date) -> int:
    """Un-list the rolled-up days from `first` on, so that the next roll-up computes them again."""
    connection = session.connection()
    removed = connection.execute(DAYS.delete().where(DAYS.c.day >= first)).rowcount
    connection.execute(DAILY.delete().where(DAILY.c.day >= first))
    if removed:
        log.info("a late state change reopened %d rolled-up days from %s", removed, first)
    return int(removed or 0)


def seed_spans(session: Session) -> int:
    """Give every device without any span an open `unknown` one from its creation: never heard is unknown."""
    connection = session.connection()
    missing = sa.select(DEVICES.c.id, sa.literal("unknown"), DEVICES.c.created_at).where(
        ~sa.exists().where(SPANS.c.device_id == DEVICES.c.id)
    )
    result = connection.execute(SPANS.insert().from_select(["device_id", "state", "started_at"], missing))
    return int(result.rowcount or 0)
