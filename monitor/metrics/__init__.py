"""Prometheus metrics: the names, a fast text exposition, and the cached snapshot every process serves.

Who exports what (so that Prometheus never counts a device twice):

- the **web** process exports the fleet's current state and the tickets, read from the database at
  scrape time (`web.web_exporter`: `fleet`, `tickets`, `notifications`, rendered by the child process of
  `worker`); it is the only one that does;
- each **collector** process exports its own work (polls, latency, lateness, liveness, blindness) from
  memory (`collector`), on its own small HTTP server (`server`);
- every process adds prometheus-client's `process_*` and `python_*` metrics. In `monitor demo` the
  one process serves all of them on one `/metrics`.

    names        the families: name, type, help text (ALL_FAMILIES)
    exposition   label text, families and histograms as bytes; gzip made of concatenated pieces
    exporter     MetricsExporter: sources, the snapshot built off the event loop, scrape answers and tokens
    collector    a collector's own work          server    a collector's own /metrics server
    fleet, tickets, notifications                 the web process's sources, read at scrape time
    worker       DatabaseWorker: the web process's end of the child (`python -m monitor.metrics.child`)
    web          web_exporter: what the web process serves

Only this package imports prometheus_client (in `exporter`).
"""

from monitor.metrics.collector import CollectorSource, CollectorStats, collector_blocks, collector_exporter
from monitor.metrics.exporter import (
    CONTENT_TYPE,
    DEFAULT_MAX_AGE_S,
    UNAUTHORIZED_BODY,
    UNAUTHORIZED_HEADERS,
    Exposition,
    MetricsExporter,
    MetricsSource,
    Rendered,
    Renderer,
    ScrapeResponse,
    accepts_gzip,
    process_registry,
    scrape_allowed,
)
from monitor.metrics.exposition import (
    GZIP_LEVEL,
    Block,
    Segment,
    cumulative,
    deflate_blocks,
    escape,
    family_block,
    gzip_member,
    histogram_block,
    labels,
)
from monitor.metrics.fleet import FleetStateSource
from monitor.metrics.names import ALL_FAMILIES, Family
from monitor.metrics.notifications import NotificationSource
from monitor.metrics.server import MetricsServer, collector_metrics_port
from monitor.metrics.tickets import TicketMetricsSource
from monitor.metrics.web import web_exporter
from monitor.metrics.worker import DatabaseWorker, WorkerError

__all__ = [
    "ALL_FAMILIES",
    "CONTENT_TYPE",
    "DEFAULT_MAX_AGE_S",
    "GZIP_LEVEL",
    "UNAUTHORIZED_BODY",
    "UNAUTHORIZED_HEADERS",
    "Block",
    "CollectorSource",
    "CollectorStats",
    "DatabaseWorker",
    "Exposition",
    "Family",
    "FleetStateSource",
    "MetricsExporter",
    "MetricsServer",
    "MetricsSource",
    "NotificationSource",
    "Rendered",
    "Renderer",
    "ScrapeResponse",
    "Segment",
    "TicketMetricsSource",
    "WorkerError",
    "accepts_gzip",
    "collector_blocks",
    "collector_exporter",
    "collector_metrics_port",
    "cumulative",
    "deflate_blocks",
    "escape",
    "family_block",
    "gzip_member",
    "histogram_block",
    "labels",
    "process_registry",
    "scrape_allowed",
    "web_exporter",
]
