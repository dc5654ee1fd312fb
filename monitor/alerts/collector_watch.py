"""A shard of the collectors' pool held by nobody is not silence (monitor.health.leases).

Every dispatcher (in `monitor serve` or `monitor dispatch`) looks at the pool's shards every lease period. A
shard nobody has held for longer than a lease after its last lease lapsed (two lease periods without a
collector: the time a live collector takes to take it over) is *unheld*:

- its devices become `unknown` (`HealthStore.mark_unwatched`): not `down`, the service's own trouble is
  never the devices'; their faults stay, so a problem and a ticket already open stay open;
- one province-wide `collector` problem (P1) says how many shards and devices nobody collects, and is resolved
  once every shard is held again (its devices then come back through what their collector hears). It opens,
  updates and resolves its ticket through the tickets' lifecycle, like every problem: a province ticket, with
  no district, for the province operator (administrators; leaders see it; no district's people do). Its
  "opened" and "resolved" notifications are queued in the same transaction, for the channels bound to no
  district.

Several dispatchers watch at once on PostgreSQL: each look runs under an advisory lock, so one of them opens the
problem and the others, once they get the lock, find it (the open-key unique indexes are the backstop). SQLite's
BEGIN IMMEDIATE makes the look the only writer.

On SQLite (no pool) or before any collector of the pool has started, there is nothing to watch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.choices import ProblemSource, ProblemStatus
from monitor.alerts.models import AlertProblem
from monitor.alerts.notify import ProblemEvent, ProblemEventKind, enqueue_many, event_from_problem
from monitor.config import Settings
from monitor.db import begin_exclusive, session_scope
from monitor.health.leases import unheld_shards
from monitor.health.store import HealthStore, policy_from_settings
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource
from monitor.tickets.lifecycle import ProblemReport, open_or_update_ticket, resolve_problem
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.policy import policy_from_settings as ticket_policy_from_settings

log = logging.getLogger(__name__)
KIND = "collector"
SCOPE_CODE = "collectors"
KEY = f"{ProblemScope.PROVINCE.value}:{SCOPE_CODE}:{KIND}"
WATCH_LOCK = 0x434F_4C57  # PostgreSQL advisory lock key of the watch ("COLW")


@dataclass(slots=True)
class WatchReport:
    """What one look at the pool found and did."""

    shard_count: int = 0
    unheld: list[int] = field(default_factory=list)
    made_unknown: int = 0
    opened: bool = False
    resolved: bool = False
    ticket_code: str | None = None


def _title(unheld: int, shard_count: int) -> str:
    return f"Không bộ thu thập nào giữ {unheld}/{shard_count} phần của đội thiết bị: thiết bị trong đó là “không rõ”"


def _report(problem: AlertProblem) -> ProblemReport:
    """The problem as the tickets' lifecycle takes it: a province problem, no commune, no device."""
    return ProblemReport(
        scope=ProblemScope.PROVINCE,
        scope_code=SCOPE_CODE,
        kind=KIND,
        title=problem.title[:200],
        priority=Priority(problem.priority),
        source=TicketSource.AUTO,
        occurred_at=problem.started_at,
        details=problem.details,
    )


def watch_shards(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    ticket_policy: TicketPolicy | None = None,
    notify: bool = True,
) -> WatchReport:
    """Look at the pool once: make the devices of unheld shards unknown; open, update or resolve the problem,
    its ticket and its notifications."""
    grace_s = settings.collector_lease_s
    shard_count, unheld = unheld_shards(engine, grace_s)
    report = WatchReport(shard_count, unheld)
    if not shard_count:
        return report
    if unheld:
        store = HealthStore(engine, policy_from_settings(settings))
        report.made_unknown = len(store.mark_unwatched(unheld, shard_count, grace_s, now))
    policy = ticket_policy or ticket_policy_from_settings(settings)
    events: list[ProblemEvent] = []
    with session_scope(engine) as session:
        begin_exclusive(session.connection(), WATCH_LOCK)  # one look at a time (the module docstring)
        problem = unheld_problem(session)
        details: dict[str, Any] = {"shards": unheld, "shard_count": shard_count}
        if unheld and problem is None:
            problem = AlertProblem(
                key=KEY,
                scope=ProblemScope.PROVINCE.value,
                scope_code=SCOPE_CODE,
                kind=KIND,
                source=ProblemSource.SERVICE.value,
                status=ProblemStatus.ACTIVE.value,
                priority=Priority.P1.value,
                title=_title(len(unheld), shard_count),
                started_at=now,
                activated_at=now,
                details=details,
                updated_at=now,
            )
            session.add(problem)
            session.flush()
            problem.ticket_code = open_or_update_ticket(
                _report(problem), session=session, now=now, policy=policy
            ).ticket.code
            events.append(event_from_problem(ProblemEventKind.OPENED, problem, at=now))
            report.opened = True
            log.error("no collector holds shards %s of %d: their devices are unknown", unheld, shard_count)
        elif unheld and problem is not None and (problem.details != details or problem.ticket_code is None):
            # The ticket follows (its details; opened if the problem predates province tickets), never reopened
            # twice: the lifecycle updates the open one.
            problem.details, problem.title, problem.updated_at = details, _title(len(unheld), shard_count), now
            problem.ticket_code = open_or_update_ticket(
                _report(problem), session=session, now=now, policy=policy
            ).ticket.code
        elif not unheld and problem is not None:
            problem.status, problem.resolved_at, problem.updated_at = ProblemStatus.RESOLVED.value, now, now
            session.flush()
            resolve_problem(KEY, session=session, recovered_at=now, policy=policy, note="every shard is held again")
            events.append(event_from_problem(ProblemEventKind.RESOLVED, problem, at=now))
            report.resolved = True
            log.warning("every shard of the collectors' pool is held again")
        if problem is not None:
            session.add(problem)
            report.ticket_code = problem.ticket_code
        if notify and events:
            # In the same transaction: a delivery exists exactly when its problem change does.
            enqueue_many(events, session=session, now=now)
    return report


def unheld_problem(session: Session) -> AlertProblem | None:
    """The open `collector` problem, if any (the overview shows it)."""
    return session.exec(
        select(AlertProblem).where(AlertProblem.key == KEY, col(AlertProblem.status) != ProblemStatus.RESOLVED.value)
    ).first()


__all__ = ["KEY", "KIND", "SCOPE_CODE", "WatchReport", "unheld_problem", "watch_shards"]
