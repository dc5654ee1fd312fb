"""Tickets for Prometheus, read from the database at scrape time (the web process's metrics).

Open tickets by district, priority and status; those marked as past their SLA (by the tickets'
escalation job); open tickets by age since creation; and, over the tickets resolved in the last 30 days,
how many met their SLA and how long they took from creation to resolution (wall-clock time, waits
included). Every district, priority and open status is exported, with zeros, so that sums and
dashboards never miss a series. About 30 series per district.

A province ticket (a collector's or Prometheus's problem) has no district: its series carry
`district="province"`, always exported like a district's. Not "": an empty label is the same as no label, and
a dashboard's `by (district)` would show it as a nameless row; no district's code is "province".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import utcnow
from monitor.inventory.models import District
from monitor.metrics.exporter import Renderer
from monitor.metrics.exposition import Block, family_block, labels
from monitor.metrics.names import (
    TICKETS_OPEN,
    TICKETS_OPEN_BY_AGE,
    TICKETS_RESOLUTION_30D,
    TICKETS_RESOLVED_30D,
    TICKETS_SLA_BREACHED,
    TICKETS_TIME_TO_RESOLVE_30D,
)
from monitor.priority import Priority
from monitor.tickets.choices import OPEN_STATUS_SQL, OPEN_STATUSES, TicketStatus
from monitor.tickets.models import Ticket

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
DISTRICT_TABLE = District.__table__  # type: ignore[attr-defined]
AGE_BANDS = (("0-1d", 1), ("1-3d", 3), ("3-7d", 7))
AGE_OLDEST = "7d+"
RESOLVED_WINDOW = timedelta(days=30)
#: The `district` label of the province's own tickets (no district; see the module docstring).
PROVINCE = "province"


def _district(code: str | None) -> str:
    return PROVINCE if code is None else code


class TicketMetricsSource:
    """Open tickets, SLA breaches, ages, and the tickets resolved in the last 30 days, by district."""

    name = "tickets"

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def capture(self) -> Renderer:
        return self.render

    def render(self) -> list[Block]:
        now = self.clock()
        with self.engine.connect() as connection, connection.begin():
            districts = [*sorted(connection.execute(sa.select(DISTRICT_TABLE.c.code)).scalars()), PROVINCE]
            open_ = sa.text(OPEN_STATUS_SQL)
            counts = {
                (_district(d), p, s): n
                for d, p, s, n in connection.execute(
                    sa.select(TICKETS.c.district_code, TICKETS.c.priority, TICKETS.c.status, sa.func.count())
                    .where(open_)
                    .group_by(TICKETS.c.district_code, TICKETS.c.priority, TICKETS.c.status)
                )
            }
            breached = {
                (_district(d), p): n
                for d, p, n in connection.execute(
                    sa.select(TICKETS.c.district_code, TICKETS.c.priority, sa.func.count())
                    .where(open_, TICKETS.c.sla_breached.is_(True))
                    .group_by(TICKETS.c.district_code, TICKETS.c.priority)
                )
            }
            band = sa.case(
                *[(TICKETS.c.created_at >= now - timedelta(days=days), name) for name, days in AGE_BANDS],
                else_=AGE_OLDEST,
            )
            ages = {
                (_district(d), b): n
                for d, b, n in connection.execute(
                    sa.select(TICKETS.c.district_code, band, sa.func.count())
                    .where(open_)
                    .group_by(TICKETS.c.district_code, band)
                )
            }
            resolved = list(
                connection.execute(
                    sa.select(
                        TICKETS.c.district_code,
                        TICKETS.c.priority,
                        TICKETS.c.sla_breached,
                        TICKETS.c.created_at,
                        TICKETS.c.resolved_at,
                    ).where(
                        TICKETS.c.status.in_([TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value]),
                        TICKETS.c.resolved_at >= now - RESOLVED_WINDOW,
                    )
                )
            )
        return _ticket_blocks(districts, counts, breached, ages, resolved)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def _ticket_blocks(
    districts: list[str],
    counts: dict[tuple[str, str, str], int],
    breached: dict[tuple[str, str], int],
    ages: dict[tuple[str, str], int],
    resolved: Sequence[Any],
) -> list[Block]:
    priorities = [p.value for p in Priority]
    statuses = sorted(s.value for s in OPEN_STATUSES)
    resolved_counts: Counter[tuple[str, str, str]] = Counter()
    durations: dict[str, list[float]] = {d: [] for d in districts}
    for code, priority, was_breached, created_at, resolved_at in resolved:
        district = _district(code)
        resolved_counts[(district, priority, "breached" if was_breached else "met")] += 1
        durations.setdefault(district, []).append(max(0.0, (resolved_at - created_at).total_seconds()))
    stats = []
    for district in districts:
        values = sorted(durations[district])
        if values:
            stats += [(labels([("district", district), ("stat", name)]), _quantile(values, q)) for name, q in _STATS]
    band_names = [name for name, _days in AGE_BANDS] + [AGE_OLDEST]
    return [
        family_block(
            TICKETS_OPEN,
            [
                (labels([("district", d), ("priority", p), ("status", s)]), counts.get((d, p, s), 0))
                for d in districts
                for p in priorities
                for s in statuses
            ],
        ),
        family_block(
            TICKETS_SLA_BREACHED,
            [
                (labels([("district", d), ("priority", p)]), breached.get((d, p), 0))
                for d in districts
                for p in priorities
            ],
        ),
        family_block(
            TICKETS_OPEN_BY_AGE,
            [(labels([("district", d), ("age", b)]), ages.get((d, b), 0)) for d in districts for b in band_names],
        ),
        family_block(
            TICKETS_RESOLVED_30D,
            [
                (labels([("district", d), ("priority", p), ("sla", s)]), resolved_counts[(d, p, s)])
                for d in districts
                for p in priorities
                for s in ("met", "breached")
            ],
        ),
        family_block(
            TICKETS_RESOLUTION_30D, [(labels([("district", d)]), float(sum(durations[d]))) for d in districts]
        ),
        family_block(TICKETS_TIME_TO_RESOLVE_30D, stats),
    ]


_STATS = (("p50", 0.5), ("p90", 0.9))


__all__ = ["TicketMetricsSource"]
