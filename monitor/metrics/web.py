"""What the web process serves on `/metrics`: the fleet's state, the tickets, its notifications and the process.

The web process is the only one that exports the fleet's state and the tickets (read from the database at
scrape time), so that Prometheus never counts a device twice; each collector exports only its own work
(`monitor.metrics.collector`).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from monitor.alerts.notify.worker import DeliveryStats
from monitor.metrics.exporter import DEFAULT_MAX_AGE_S, MetricsExporter, MetricsSource
from monitor.metrics.fleet import FleetStateSource
from monitor.metrics.notifications import NotificationSource
from monitor.metrics.tickets import TicketMetricsSource
from monitor.metrics.worker import DatabaseWorker


def web_exporter(
    engine: Engine,
    *,
    delivery_stats: DeliveryStats | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    isolate: bool = True,
) -> MetricsExporter:
    """What the web process serves: the fleet's state, the tickets, its notifications and the process metrics.

    The database families are rendered by a child process (`monitor.metrics.worker`) unless `isolate` is
    False or the database lives in this process's memory; then in a thread of this process.
    """
    in_memory = engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:")
    sources: list[MetricsSource]
    if isolate and not in_memory:
        sources = [DatabaseWorker(engine.url.render_as_string(hide_password=False))]
    else:
        sources = [FleetStateSource(engine), TicketMetricsSource(engine)]
    if delivery_stats is not None:
        sources.append(NotificationSource(delivery_stats, engine))
    return MetricsExporter(sources, max_age_s=max_age_s)


__all__ = ["web_exporter"]
