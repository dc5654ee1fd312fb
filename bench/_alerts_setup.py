"""What the dark-to-ticket paths of `bench_alerts.py` share: their intervals, their figures, small databases.

    settings, engine = migrated_sqlite(folder / "x.db")    # a fresh, migrated SQLite file
    devices = demo_district(engine)                         # Huyện Cao Lộc with the demo fleet (seed 1)

The virtual and Prometheus paths watch the same device (`watched_cluster`): an HTTP radio cluster behind its
station; the real-time path of ours polls one simulated cluster of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import Settings, load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from monitor.metrics import DEFAULT_MAX_AGE_S
from monitor.runtime import DISPATCH_EVERY_S
from monitor.tickets.models import Ticket

SECRET = "bench-secret-key-not-a-placeholder"
DISTRICT = "183"  # Huyện Cao Lộc
T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội


@dataclass(frozen=True)
class Timing:
    """The intervals of both paths (seconds)."""

    poll_s: float = 15.0
    failures: int = 3
    http_timeout_s: float = 5.0
    group_wait_s: float = 60.0
    dispatch_every_s: float = DISPATCH_EVERY_S
    flush_s: float = 0.5  # the collector's flush of observations to HealthStore.apply
    metrics_max_age_s: float = DEFAULT_MAX_AGE_S  # how old the web exporter's /metrics snapshot may be
    scrape_s: float = 15.0
    evaluation_s: float = 15.0
    for_s: float = 60.0
    am_group_wait_s: float = 30.0
    am_group_interval_s: float = 30.0

    def scaled(self, factor: float) -> Timing:
        """Every interval divided by `factor` (the confirmation count kept); polls and scrapes at least 1 s."""
        values = {
            name: max(1.0, value / factor) if name in ("poll_s", "scrape_s", "evaluation_s") else value / factor
            for name, value in asdict(self).items()
            if name != "failures"
        }
        return replace(self, **values)

    def ours_range_s(self) -> tuple[float, float]:
        """Dark to ticket on our path, by the phases of the poll and the dispatcher: best and worst case."""
        confirm = (self.failures - 1) * self.poll_s + self.http_timeout_s
        best = confirm + self.group_wait_s
        worst = self.poll_s + confirm + self.flush_s + 2 * self.dispatch_every_s + self.group_wait_s
        return best, worst

    def prometheus_range_s(self) -> tuple[float, float]:
        """Down in the database to ticket through Prometheus and Alertmanager: best and worst case."""
        best = self.for_s + self.am_group_wait_s
        worst = self.metrics_max_age_s + self.scrape_s + self.evaluation_s + best
        return best, worst


def seconds_after(later: datetime | None, earlier: datetime) -> float | None:
    """`later` - `earlier` in seconds; None when `later` is."""
    return None if later is None else (later - earlier).total_seconds()


@dataclass
class PathFigures:
    """Milestones of one path, in seconds after t0 (None: not reached)."""

    name: str
    milestones: dict[str, float | None] = field(default_factory=dict)
    ticket_s: float | None = None
    ticket: str | None = None
    error: str | None = None


# --- databases ------------------------------------------------------------------------------------


def migrated_sqlite(path: Path, **settings: Any) -> tuple[Settings, Engine]:
    """Settings and engine of a new SQLite file at `path`, migrated; `settings` override the defaults."""
    config = load_settings(database_url=f"sqlite:///{path}", secret_key=SECRET, data_dir=path.parent, **settings)
    engine = make_engine(config)
    upgrade(engine)
    return config, engine


def demo_district(engine: Engine) -> dict[str, Device]:
    """Cao Lộc's communes with the demo fleet (seed 1); devices by code."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(Commune.district_code == DISTRICT).order_by(Commune.code)))
        apply_fleet_rows(generate_demo_rows(communes, seed=1, today=date(2026, 1, 1)), session=session)
    with Session(engine) as session:
        return {d.code: d for d in session.exec(select(Device))}


def watched_cluster(devices: dict[str, Device]) -> Device:
    """The first HTTP radio cluster whose station is in the fleet: an ordinary device with a parent."""
    return next(d for code, d in sorted(devices.items()) if "-CL" in code and d.protocol == "http" and d.parent_id)


def all_up(engine: Engine, devices: dict[str, Device], at: datetime) -> None:
    """Every device judged up at `at` (one successful observation each)."""
    observations = [Observation(d.id or 0, at, "http", True, 0.02) for d in devices.values()]
    HealthStore(engine).apply(observations, at)


def ticket_of(engine: Engine, device_code: str, source: str) -> Ticket | None:
    """The first ticket of a device from `source` (`auto`: the dispatcher; `alertmanager`: the receiver)."""
    with Session(engine) as session:
        query = select(Ticket).where(Ticket.scope_code == device_code, Ticket.source == source)
        return session.exec(query.order_by(col(Ticket.id))).first()
