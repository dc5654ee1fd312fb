"""A shard of the collectors' pool held by nobody is not silence (monitor.health.leases).

Every dispatcher (in `monitor serve` or `monitor dispatch`) looks at the pool's shards every lease period. A
shard nobody has held for longer than a lease after its last lease lapsed (two lease periods without a
collector: the time a live collector takes to take it over) is *unheld*:

- its devices become `unknown` (`HealthStore.mark_unwatched`): not `down`, the service's own trouble is
  never the devices'; their faults stay, so a problem and a ticket already open stay open;
- one province-wide `collector` problem says how many shards and devices nobody collects, and is resolved
  once every shard is held again (its devices then come back through what their collector hears).

On SQLite (no pool) or before any collector of the pool has started, there is nothing to watch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.choices import ProblemSource, ProblemStatus
from monitor.alerts.models import AlertProblem
from monitor.config import Settings
from monitor.db import session_scope
from monitor.health.leases import unheld_shards
from monitor.health.store import HealthStore, policy_from_settings
from monitor.priority import Priority

log = logging.getLogger(__name__)
KIND = "collector"
KEY = f"province:collectors:{KIND}"


@dataclass(slots=True)
class WatchReport:
    """What one look at the pool found and did."""

    shard_count: int = 0
    unheld: list[int] = field(default_factory=list)
    made_unknown: int = 0
    opened: bool = False
    resolved: bool = False


def _title(unheld: int, shard_count: int) -> str:
    return f"Không bộ thu thập nào giữ {unheld}/{shard_count} phần của đội thiết bị: thiết bị trong đó là “không rõ”"


def watch_shards(engine: Engine, settings: Settings, now: datetime) -> WatchReport:
    """Look at the pool once: make the devices of unheld shards unknown, open, update or resolve the problem."""
    grace_s = settings.collector_lease_s
    shard_count, unheld = unheld_shards(engine, grace_s)
    report = WatchReport(shard_count, unheld)
    if not shard_count:
        return report
    if unheld:
        store = HealthStore(engine, policy_from_settings(settings))
        report.made_unknown = len(store.mark_unwatched(unheld, shard_count, grace_s, now))
    with session_scope(engine) as session:
        problem = session.exec(
            select(AlertProblem).where(
                AlertProblem.key == KEY, col(AlertProblem.status) != ProblemStatus.RESOLVED.value
            )
        ).first()
        details = {"shards": unheld, "shard_count": shard_count}
        if unheld and problem is None:
            session.add(
                AlertProblem(
                    key=KEY,
                    scope="province",
                    scope_code="collectors",
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
            )
            report.opened = True
            log.error("no collector holds shards %s of %d: their devices are unknown", unheld, shard_count)
        elif unheld and problem is not None and problem.details != details:
            problem.details, problem.title, problem.updated_at = details, _title(len(unheld), shard_count), now
            session.add(problem)
        elif not unheld and problem is not None:
            problem.status, problem.resolved_at, problem.updated_at = ProblemStatus.RESOLVED.value, now, now
            session.add(problem)
            report.resolved = True
            log.warning("every shard of the collectors' pool is held again")
    return report


def unheld_problem(session: Session) -> AlertProblem | None:
    """The open `collector` problem, if any (the overview shows it)."""
    return session.exec(
        select(AlertProblem).where(AlertProblem.key == KEY, col(AlertProblem.status) != ProblemStatus.RESOLVED.value)
    ).first()


__all__ = ["KEY", "KIND", "WatchReport", "unheld_problem", "watch_shards"]
