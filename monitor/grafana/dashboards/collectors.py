"""**Bộ thu thập** (collectors, for the operator): poll rates, errors, latency, lateness, the pool's shards,
scrape size, the processes themselves and the notifications."""

from __future__ import annotations

from monitor.grafana.builder import Json, Query, dashboard, stat, timeseries

RATE = "[$__rate_interval]"


def collectors() -> Json:
    """For the operator: are the collectors and the metrics themselves healthy?"""
    return dashboard(
        "fleet-collectors",
        "Bộ thu thập — Collectors",
        "Tốc độ hỏi, lỗi, độ trễ, trễ lịch và kích thước số liệu. Poll rates, errors, latency, lateness, scrape size.",
        [*_headline(), *_polls(), *_pool(), *_observations_and_scrapes(), *_processes(), *_notifications()],
        time_from="now-6h",
        refresh="30s",
    )


def _headline() -> list[Json]:
    """Collectors up and blind, devices polled, polls in flight, state changes pending, the metrics' build time."""
    return [
        stat("Bộ thu thập đang chạy — Collectors up", 'sum(up{job="fleet-collector"})'),
        stat("Mất mạng — Blind", "sum(fleet_collector_blind)", steps=[("green", None), ("red", 1)]),
        stat("Thiết bị được hỏi — Polled devices", "sum(fleet_collector_polled_devices)"),
        stat("Đang hỏi — Polls in flight", "sum(fleet_polls_in_flight)"),
        stat(
            "Chờ xử lý — State changes pending",
            "sum(fleet_state_changes_pending)",
            steps=[("green", None), ("orange", 1000)],
        ),
        stat(
            "Dựng số liệu — Metrics build",
            "max(fleet_exporter_build_seconds)",
            unit="s",
            steps=[("green", None), ("orange", 0.5), ("red", 2)],
        ),
    ]


def _pool() -> list[Json]:
    """The collectors' pool (PostgreSQL): its shards held and unheld (an unheld shard's devices are unknown), and
    how many devices each collector polls (about the same when the pool is balanced)."""
    return [
        timeseries(
            "Phần của đội thiết bị: có / không ai giữ — Pool shards held and unheld",
            [Query("sum by (state) (fleet_collector_pool_shards)", "{{state}}")],
        ),
        timeseries(
            "Thiết bị mỗi bộ thu thập hỏi — Devices polled per collector",
            [Query("sum by (instance) (fleet_collector_polled_devices)", "{{instance}}")],
        ),
    ]


def _polls() -> list[Json]:
    """Polls per second and failures by protocol, their latency, the scheduler's lateness and missed runs."""
    return [
        timeseries(
            "Tốc độ hỏi theo giao thức — Polls per second by protocol",
            [Query(f"sum by (protocol) (rate(fleet_polls_total{RATE}))", "{{protocol}}")],
            unit="ops",
        ),
        timeseries(
            "Lỗi theo loại — Failures by kind",
            [
                Query(
                    f'sum by (protocol, outcome) (rate(fleet_polls_total{{outcome!="ok"}}{RATE}))',
                    "{{protocol}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Độ trễ hỏi (p50, p95) — Poll latency",
            [
                Query(
                    f"histogram_quantile(0.5, sum by (protocol, le) (rate(fleet_poll_duration_seconds_bucket{RATE})))",
                    "{{protocol}} p50",
                ),
                Query("protocol:fleet_poll_duration_seconds:p95_5m", "{{protocol}} p95"),
            ],
            unit="s",
        ),
        timeseries(
            "Trễ lịch (p99) và lượt bỏ lỡ — Scheduler lateness and missed runs",
            [
                Query(
                    "histogram_quantile(0.99, sum by (instance, le) "
                    f"(rate(fleet_scheduler_lateness_seconds_bucket{RATE})))",
                    "{{instance}} p99",
                ),
                Query(
                    f"sum by (instance) (increase(fleet_scheduler_missed_runs_total{RATE}))",
                    "{{instance}} bỏ lỡ — missed",
                ),
            ],
            unit="s",
        ),
    ]


def _observations_and_scrapes() -> list[Json]:
    """Observations held while the database is away (and lost), samples per scrape, scrape size and duration."""
    return [
        timeseries(
            "Quan sát chờ CSDL và bị mất — Observations held for the database and lost",
            [
                Query("fleet_collector_observations_held", "{{instance}} chờ — held"),
                Query(f"increase(fleet_collector_observations_dropped_total{RATE})", "{{instance}} mất — dropped"),
            ],
        ),
        timeseries(
            "Số liệu mỗi lần thu — Samples per scrape",
            [Query('scrape_samples_scraped{job=~"fleet-.*"}', "{{job}} {{instance}}")],
        ),
        timeseries(
            "Kích thước và thời gian thu — Scrape size and duration",
            [
                Query("fleet_exporter_exposition_bytes", "{{instance}} {{encoding}}"),
                Query('scrape_duration_seconds{job=~"fleet-.*"}', "{{instance}} thời gian — seconds"),
            ],
            unit="bytes",
            overrides=[
                {"matcher": {"id": "byFrameRefID", "options": "B"}, "properties": [{"id": "unit", "value": "s"}]}
            ],
        ),
    ]


def _processes() -> list[Json]:
    """The CPU and resident memory of the service's processes."""
    return [
        timeseries(
            "CPU của tiến trình — Process CPU",
            [Query(f'rate(process_cpu_seconds_total{{job=~"fleet-.*"}}{RATE})', "{{job}} {{instance}}")],
            unit="percentunit",
        ),
        timeseries(
            "Bộ nhớ — Resident memory",
            [Query('process_resident_memory_bytes{job=~"fleet-.*"}', "{{job}} {{instance}}")],
            unit="bytes",
        ),
    ]


def _notifications() -> list[Json]:
    """Notifications sent and failed per second, and those pending or failed now, by channel."""
    return [
        timeseries(
            "Thông báo đã gửi và lỗi — Notifications sent and failed",
            [
                Query(
                    f"sum by (channel, outcome) (rate(fleet_notification_deliveries_total{RATE}))",
                    "{{channel}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Thông báo chờ gửi và lỗi — Notifications pending and failed",
            [
                Query(
                    'sum by (channel, status) (fleet_notification_deliveries{status!="sent"})',
                    "{{channel}} {{status}}",
                )
            ],
        ),
    ]


__all__ = ["collectors"]
