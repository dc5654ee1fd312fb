"""The demo's year of history: plausible, and the same for the same seed (a month of it, to stay quick)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from monitor.auth.cast import seed_cast
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.i18n import local_date
from monitor.inventory.demo import seed_demo
from monitor.reports.backfill import backfill_year
from monitor.reports.review import ReviewPolicy, yearly_review
from monitor.reports.service import GroupBy, keep_up, uptime_report
from monitor.reports.sla import sla_report
from monitor.reports.training import coverage

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _demo(path: Path, seed: int) -> Engine:
    engine = make_engine(load_settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    with session_scope(engine) as session:
        seed_demo(session=session, seed=seed)
        seed_cast(session=session)
        backfill_year(session, seed=seed, now=NOW, days=30)
    keep_up(engine, NOW, lag_s=0)
    return engine


def _figures(engine: Engine) -> tuple[list[dict[str, object]], dict[str, object], tuple[int, int, int, int]]:
    first, last = local_date(NOW - timedelta(days=30)), local_date(NOW)
    with session_scope(engine) as session:
        uptime = uptime_report(session, first, last, now=NOW, by=GroupBy.DISTRICT)
        sla = sla_report(session, first, last, sources=["auto"])  # corrective work: planned tickets apart
        planned = yearly_review(session, first, last, now=NOW, districts=None, policy=ReviewPolicy()).maintenance_total
    return (
        [row.as_dict() for row in uptime.rows],
        sla.total.as_dict(),
        (planned.scheduled, planned.done, planned.done_on_time, planned.open_overdue),
    )


def test_the_same_seed_gives_the_same_history_and_it_is_plausible(tmp_path: Path) -> None:
    one, two, other = _demo(tmp_path / "a.db", 1), _demo(tmp_path / "b.db", 1), _demo(tmp_path / "c.db", 2)
    uptime, sla, planned = _figures(one)
    assert (uptime, sla, planned) == _figures(two)
    assert _figures(other) != (uptime, sla, planned)
    assert len(uptime) == 11
    for row in uptime:
        assert 0.95 < row["availability"] < 1.0, row  # type: ignore[operator]
        assert row["outages"] > 0 and row["down_s"] > 0  # type: ignore[operator]
    assert sla["opened"] > 50 and sla["resolved"] == sla["opened"]  # type: ignore[operator]
    assert 0 < sla["mtta_s"] < sla["mttr_s"]  # type: ignore[operator]
    scheduled, done, on_time, overdue = planned  # the inspections due in the month: most done, some not yet
    assert scheduled > 0 and 0 < on_time <= done < scheduled and done + overdue <= scheduled
    with session_scope(one) as session:
        trained = coverage(
            session=session, district_codes=None, first=local_date(NOW - timedelta(days=30)), last=local_date(NOW)
        )
        assert backfill_year(session, seed=1, now=NOW).tickets == 0  # once only
    assert trained.sessions >= 1
