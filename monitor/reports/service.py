"""The reports' front: what the CLI, the API and the background job call.

keep_up(engine, now)        lay pending state changes into spans, roll up the finished days (one process at a time)
rebuild_rollups(engine, now) forget every roll-up and compute them again from the spans
uptime_report(...)          the figures (see `uptime`), by device, commune, district, kind or province
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import session_scope
from monitor.reports.rollup import rebuild, roll_up
from monitor.reports.spans import CHANGES, fold_changes, take_lock
from monitor.reports.uptime import METHOD_EN, METHOD_VI, GroupBy, UptimeReport, UptimeRow, check_period, uptime_report

__all__ = [
    "METHOD_EN",
    "METHOD_VI",
    "GroupBy",
    "KeepUpResult",
    "UptimeReport",
    "UptimeRow",
    "catch_up",
    "check_period",
    "keep_up",
    "rebuild_rollups",
    "uptime_report",
]


@dataclass(frozen=True, slots=True)
class KeepUpResult:
    """One turn of the job: changes laid, days rolled up; `skipped` when another process held the lock."""

    changes: int = 0
    days: int = 0
    skipped: bool = False


def keep_up(
    engine: Engine, now: datetime, *, lag_s: float = 300.0, batch: int = 20_000, max_batches: int = 50
) -> KeepUpResult:
    """Lay every pending change into spans (in batches, each its own transaction), then roll up the due days."""
    changes = 0
    for _ in range(max_batches):
        with session_scope(engine) as session:
            if not take_lock(session.connection()):
                return KeepUpResult(changes=changes, skipped=True)
            done = fold_changes(session, now, limit=batch).changes
        changes += done
        if done < batch:
            break
    with session_scope(engine) as session:
        if not take_lock(session.connection()):
            return KeepUpResult(changes=changes, skipped=True)
        days = roll_up(session, now, lag_s=lag_s)
    return KeepUpResult(changes=changes, days=days)


def catch_up(engine: Engine, now: datetime) -> int:
    """Lay the pending state changes into spans now, so a report shows the last minute too; how many.

    Costs one indexed read when nothing is pending (the usual case: the background job keeps up)."""
    with session_scope(engine) as session:
        pending = (
            session.connection().execute(sa.select(CHANGES.c.id).where(CHANGES.c.spanned_at.is_(None)).limit(1)).first()
        )
    if pending is None:
        return 0
    changes = 0
    for _ in range(50):
        with session_scope(engine) as session:
            if not take_lock(session.connection()):
                break
            done = fold_changes(session, now).changes
        changes += done
        if done == 0:
            break
    return changes


def rebuild_rollups(engine: Engine, now: datetime, *, lag_s: float = 300.0) -> int:
    """Compute every roll-up again from the spans (after a restore, or a change of rules); the days written."""
    keep_up(engine, now, lag_s=lag_s)
    with session_scope(engine) as session:
        take_lock(session.connection())
        return rebuild(session, now, lag_s=lag_s)
