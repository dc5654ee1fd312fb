"""The overview: what the signed-in person's fleet looks like now, gathered for the `/` page and for
`GET /api/v1/overview` alike (the page calls nothing the API does not).

Fleet state now by district, what is down now and for how long, open tickets by priority with SLA breaches,
uptime over the last 7 and 30 days from the state history (the same figures as the uptime report), and the
plan's coverage (communes with a radio system, the share IT-telecom based, against the targets). Everything
is scoped by `district_codes` (None: the province), as every list is.

The uptime figures move by the day (whole days come from the daily roll-ups): they are kept a minute per scope
in this process, so that the page people refresh all day does not sum a month of history each time. The whole
overview of a scope is shared for a few seconds (`max_age_s`, the setting `web_overview_max_age_s`): everyone
of a district, and every open page's poll, reads the same figures, and at a province's size (100,000 devices)
building them costs more than the page around them; `Overview.now` says when they were built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.alerts.collector_watch import unheld_problem
from monitor.db import utcnow
from monitor.health.queries import DeviceFilter, DeviceRow, DistrictSummary, list_devices, list_districts
from monitor.health.states import DeviceState
from monitor.i18n import local_date
from monitor.priority import Priority
from monitor.reports.annual import TARGET_IP_2025, TARGET_IP_2030, PlanCoverage, plan_coverage
from monitor.reports.uptime import GroupBy, uptime_report
from monitor.tickets.choices import OPEN_STATUSES
from monitor.tickets.models import Ticket

log = logging.getLogger(__name__)
DOWN_SHOWN = 20
UPTIME_TTL_S = 60.0


@dataclass(slots=True)
class TicketCounts:
    """Open tickets, and how many of them are past their SLA."""

    open: int = 0
    breached: int = 0


@dataclass(slots=True)
class DistrictLine:
    """One district on the overview: its devices by state, open tickets, and uptime."""

    summary: DistrictSummary
    tickets: TicketCounts = field(default_factory=TicketCounts)
    availability_7d: float | None = None
    availability_30d: float | None = None


@dataclass(frozen=True, slots=True)
class CollectorGap:
    """Shards of the collectors' pool held by nobody: their devices are unknown (monitor.alerts.collector_watch)."""

    unheld: int
    shard_count: int
    since: datetime


@dataclass(slots=True)
class Overview:
    now: datetime
    districts: list[DistrictLine]
    devices_by_state: dict[str, int]
    down_now: list[DeviceRow]
    down_total: int
    tickets_by_priority: dict[str, TicketCounts]
    tickets: TicketCounts
    availability_7d: float | None
    availability_30d: float | None
    coverage: PlanCoverage
    collectors: CollectorGap | None = None
    target_ip_2025: float = TARGET_IP_2025
    target_ip_2030: float = TARGET_IP_2030


def _ticket_counts(
    session: Session, district_codes: Collection[str] | None
) -> tuple[dict[str, TicketCounts], dict[str, TicketCounts]]:
    """Open tickets by priority and by district, with their breaches (one grouped query).

    Province tickets (no district) are in the priorities' counts of a province-wide reader (administrators,
    leaders) and in no district's line; a district's reader never counts them (`IN` leaves NULL out).
    """
    query = (
        select(
            col(Ticket.district_code),
            col(Ticket.priority),
            sa.func.count(),
            sa.func.sum(sa.case((col(Ticket.sla_breached), 1), else_=0)),
        )
        .where(col(Ticket.status).in_([s.value for s in OPEN_STATUSES]))
        .group_by(col(Ticket.district_code), col(Ticket.priority))
    )
    if district_codes is not None:
        query = query.where(col(Ticket.district_code).in_(list(district_codes)))
    by_priority = {p.value: TicketCounts() for p in Priority}
    by_district: dict[str, TicketCounts] = {}
    for district, priority, count, breached in session.exec(query).all():
        counted = [by_priority.setdefault(priority, TicketCounts())]
        if district is not None:  # a province ticket (no district) counts in the province's totals only
            counted.append(by_district.setdefault(district, TicketCounts()))
        for counts in counted:
            counts.open += int(count)
            counts.breached += int(breached or 0)
    return by_priority, by_district


_uptime_cache: dict[tuple[frozenset[str] | None, date, int], tuple[float, dict[str, float | None]]] = {}
_uptime_lock = threading.Lock()


def _availability(
    session: Session, district_codes: Collection[str] | None, now: datetime, days: int
) -> dict[str, float | None]:
    """Availability by district over the last `days` local days up to now (key "" for them all)."""
    scope = None if district_codes is None else frozenset(district_codes)
    today = local_date(now)
    key = (scope, today, days)
    with _uptime_lock:
        cached = _uptime_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < UPTIME_TTL_S:
        return cached[1]
    report = uptime_report(
        session, today - timedelta(days=days - 1), today, now=now, by=GroupBy.DISTRICT, districts=scope
    )
    figures = {row.key: row.figures.seconds.availability for row in report.rows}
    figures[""] = report.total.figures.seconds.availability
    with _uptime_lock:
        if len(_uptime_cache) > 256:  # a handful of scopes in practice: forget everything rather than grow
            _uptime_cache.clear()
        _uptime_cache[key] = (time.monotonic(), figures)
    return figures


_overview_cache: dict[frozenset[str] | None, tuple[float, Overview]] = {}
_refreshing: set[frozenset[str] | None] = set()
STALE_SERVED_FOR = 12  # times max_age_s: an older overview is rebuilt before answering, not served


def overview(
    session: Session, *, district_codes: Collection[str] | None, now: datetime, max_age_s: float = 0.0
) -> Overview:
    """The overview of `district_codes` (None: the province) at `now`, or one built for the same scope at most
    `max_age_s` seconds ago.

    Once older than that, the one built last is still answered while a thread builds the next (one at a
    time per scope): at a province's size a build takes a second or more, and every request of the scope
    would otherwise wait behind it. Past `STALE_SERVED_FOR` times `max_age_s` it is built before answering.
    """
    scope = None if district_codes is None else frozenset(district_codes)
    if max_age_s > 0:
        with _uptime_lock:
            cached = _overview_cache.get(scope)
            age = time.monotonic() - cached[0] if cached is not None else None
            refresh = age is not None and max_age_s <= age < max_age_s * STALE_SERVED_FOR and scope not in _refreshing
            if refresh:
                _refreshing.add(scope)
        if cached is not None and age is not None and age < max_age_s:
            return cached[1]
        if cached is not None and refresh:
            threading.Thread(
                target=_refresh, args=(session.get_bind(), scope), name="overview-refresh", daemon=True
            ).start()
            return cached[1]
        if cached is not None and age is not None and age < max_age_s * STALE_SERVED_FOR:
            return cached[1]  # being rebuilt by another request's thread
    built = _build(session, scope, now)
    if max_age_s > 0:
        _keep(scope, built)
    return built


def _keep(scope: frozenset[str] | None, built: Overview) -> None:
    with _uptime_lock:
        if len(_overview_cache) > 256:
            _overview_cache.clear()
        _overview_cache[scope] = (time.monotonic(), built)


def _refresh(bind: Any, scope: frozenset[str] | None) -> None:
    try:
        with Session(bind) as session:
            _keep(scope, _build(session, scope, utcnow()))
    except Exception:  # the next request builds it itself (and says what failed)
        log.exception("rebuilding the overview of %s failed", "the province" if scope is None else sorted(scope))
    finally:
        with _uptime_lock:
            _refreshing.discard(scope)


def _build(session: Session, scope: frozenset[str] | None, now: datetime) -> Overview:
    summaries = list_districts(session=session, district_codes=scope)
    by_priority, by_district = _ticket_counts(session, scope)
    week, month = _availability(session, scope, now, 7), _availability(session, scope, now, 30)
    lines = [
        DistrictLine(
            summary,
            by_district.get(summary.district.code, TicketCounts()),
            week.get(summary.district.code),
            month.get(summary.district.code),
        )
        for summary in summaries
    ]
    states = {state.value: 0 for state in DeviceState}
    for summary in summaries:
        for state, count in summary.devices_by_state.items():
            states[state] = states.get(state, 0) + count
    down, down_total = list_devices(
        DeviceFilter(state=DeviceState.DOWN, active=True, longest_first=True),
        session=session,
        limit=DOWN_SHOWN,
        district_codes=scope,
    )
    coverage = plan_coverage(session, None if scope is None else sorted(scope))[None]
    total = TicketCounts(sum(c.open for c in by_priority.values()), sum(c.breached for c in by_priority.values()))
    gap = unheld_problem(session)
    collectors = None
    if gap is not None:
        details = gap.details or {}
        collectors = CollectorGap(len(details.get("shards", [])), int(details.get("shard_count", 0)), gap.started_at)
    return Overview(
        now=now,
        districts=lines,
        devices_by_state=states,
        down_now=down,
        down_total=down_total,
        tickets_by_priority=by_priority,
        tickets=total,
        availability_7d=week.get(""),
        availability_30d=month.get(""),
        coverage=coverage,
        collectors=collectors,
    )
