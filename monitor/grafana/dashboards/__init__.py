"""Grafana dashboards of the fleet, built from Python and committed as JSON in `dashboards/`.

Four dashboards, Vietnamese first: **Lãnh đạo** (leadership: the province's uptime now, over 30 and 365 days,
by district against the target, the plan's coverage, tickets and SLA), **Huyện** (one district, `$district`:
what is down, tickets by status and age, time to repair), **Vận hành** (technicians: what is down now and
since when, a map of devices coloured by state, faults, recent changes) and **Bộ thu thập** (collectors: poll
rates, errors, latency, lateness, scrape size).

They read one Prometheus data source of fixed uid (`grafana.DATASOURCE_UID`, provisioned by deploy/grafana/),
mostly through the recording rules of deploy/prometheus/rules/recording.yml. Every query is checked against a
real Prometheus by tests/test_prometheus.py; `monitor dashboards build` writes the JSON again after a change
here, and tests/test_dashboards.py fails while the committed JSON differs from what this module builds.
"""

from __future__ import annotations

import json
from pathlib import Path

from monitor.grafana import (
    Json,
    Query,
    bars,
    dashboard,
    district_variable,
    panel,
    render,
    stat,
    table,
    time_column,
    timeseries,
)

UPTIME_STEPS = [("red", None), ("orange", 0.9), ("green", 0.95)]  # 0.95: fleet:uptime_target:ratio's default
# --- the four dashboards -----------------------------------------------------------------------

COMMUNE_NAMES = "on (commune) group_left (commune_name, district_name) fleet_commune_info"
DISTRICT_NAMES = "on (district) group_left (district_name) fleet_district_info"


def leadership() -> Json:
    """For the province's leaders: uptime, coverage, tickets and SLA, trends."""
    return dashboard(
        "fleet-leadership",
        "Lãnh đạo tỉnh — Province leadership",
        "Thời gian hoạt động của hệ thống thông tin cơ sở, độ phủ theo kế hoạch, phiếu sửa chữa và SLA. "
        "Uptime of the grassroots information network, the plan's coverage, repair tickets and SLA.",
        [
            stat(
                "Thời gian hoạt động toàn tỉnh — Province uptime now",
                "province:fleet_device_up:avg",
                unit="percentunit",
                steps=UPTIME_STEPS,
                description="Share of judged devices up or degraded now.",
            ),
            stat(
                "30 ngày — Uptime, 30 days", "province:fleet_device_up:avg_30d", unit="percentunit", steps=UPTIME_STEPS
            ),
            stat(
                "365 ngày — Uptime, 365 days",
                "province:fleet_device_up:avg_365d",
                unit="percentunit",
                steps=UPTIME_STEPS,
            ),
            stat(
                "Mục tiêu — Target",
                "fleet:uptime_target:ratio",
                unit="percentunit",
                description="fleet:uptime_target:ratio in deploy/prometheus/rules/recording.yml",
            ),
            stat("Phiếu đang mở — Open tickets", "province:fleet_tickets_open:sum"),
            stat(
                "Đạt SLA, 30 ngày — SLA met, 30 days",
                "province:fleet_tickets_sla_met:ratio_30d",
                unit="percentunit",
                steps=[("red", None), ("orange", 0.8), ("green", 0.9)],
            ),
            bars(
                "Thời gian hoạt động 30 ngày theo huyện, so với mục tiêu — 30-day uptime by district vs target",
                [Query(f"district:fleet_device_up:avg_30d * {DISTRICT_NAMES}", "{{district_name}}")],
                unit="percentunit",
                minimum=0.8,
                maximum=1,
                steps=UPTIME_STEPS,
                height=10,
                description="Red below 90 %, orange below the 95 % target.",
            ),
            timeseries(
                "Xu hướng thời gian hoạt động — Uptime trend (1-day average)",
                [
                    Query("province:fleet_device_up:avg_1d", "Toàn tỉnh — Province"),
                    Query("fleet:uptime_target:ratio", "Mục tiêu — Target"),
                ],
                unit="percentunit",
                maximum=1,
            ),
            stat(
                "Xã có đài truyền thanh — Communes with a radio system",
                "sum(fleet_communes_with_radio_system) / sum(fleet_communes)",
                unit="percentunit",
                width=6,
                description="Communes with at least one broadcast system that is not broken.",
            ),
            stat(
                "Xã có đài ứng dụng CNTT - viễn thông — IT-telecom based",
                "sum(fleet_communes_with_ip_radio_system) / sum(fleet_communes)",
                unit="percentunit",
                width=6,
            ),
            stat(
                "Thời gian khắc phục trung bình, 30 ngày — Mean time to repair, 30 days",
                "province:fleet_tickets_time_to_resolve_seconds:mean_30d",
                unit="s",
                width=6,
            ),
            stat(
                "Phiếu quá hạn đang mở — Open tickets past SLA",
                "sum(fleet_tickets_sla_breached)",
                width=6,
                steps=[("green", None), ("orange", 1), ("red", 10)],
            ),
            bars(
                "Đài truyền thanh theo huyện — Radio systems by district",
                [
                    Query(
                        f"fleet_communes_with_ip_radio_system * {DISTRICT_NAMES}", "{{district_name}} — CNTT-VT / IP"
                    ),
                    Query(f"fleet_communes * {DISTRICT_NAMES}", "{{district_name}} — tổng số xã / communes"),
                ],
                height=10,
            ),
            timeseries(
                "Phiếu đang mở theo mức ưu tiên — Open tickets by priority",
                [Query("sum by (priority) (fleet_tickets_open)", "{{priority}}")],
            ),
            bars(
                "Đạt SLA 30 ngày theo huyện — SLA met by district, 30 days",
                [Query(f"district:fleet_tickets_sla_met:ratio_30d * {DISTRICT_NAMES}", "{{district_name}}")],
                unit="percentunit",
                maximum=1,
                steps=[("red", None), ("orange", 0.8), ("green", 0.9)],
                width=24,
            ),
        ],
        time_from="now-30d",
        refresh="5m",
    )


def district() -> Json:
    """For a district's officers: their devices and tickets."""
    selector = 'district="$district"'
    return dashboard(
        "fleet-district",
        "Huyện — District",
        "Thiết bị và phiếu sửa chữa của một huyện (khu vực bảo trì). A district's devices and repair tickets.",
        [
            stat(
                "Thời gian hoạt động — Uptime now",
                f"district:fleet_device_up:avg{{{selector}}}",
                unit="percentunit",
                steps=UPTIME_STEPS,
            ),
            stat(
                "30 ngày — 30 days",
                f"district:fleet_device_up:avg_30d{{{selector}}}",
                unit="percentunit",
                steps=UPTIME_STEPS,
            ),
            stat(
                "Thiết bị mất kết nối — Devices down",
                f'sum(fleet_devices{{{selector},state="down"}})',
                steps=[("green", None), ("red", 1)],
            ),
            stat("Tổng số thiết bị — Devices", f"sum(fleet_devices{{{selector}}})"),
            stat("Phiếu đang mở — Open tickets", f"district:fleet_tickets_open:sum{{{selector}}}"),
            stat(
                "Phiếu quá hạn — Past SLA",
                f"district:fleet_tickets_sla_breached:sum{{{selector}}}",
                steps=[("green", None), ("red", 1)],
            ),
            table(
                "Thiết bị mất kết nối và từ khi nào — Devices down now, and since when",
                [
                    Query(
                        f"fleet_device_down_since_timestamp_seconds{{{selector}}} * 1000 * {COMMUNE_NAMES}", table=True
                    )
                ],
                {
                    "device": "Thiết bị — Device",
                    "kind": "Loại — Kind",
                    "commune_name": "Xã — Commune",
                    "Value": "Mất kết nối từ — Down since",
                },
                overrides=[time_column("Mất kết nối từ — Down since")],
                width=12,
            ),
            table(
                "Thời gian hoạt động theo xã — Uptime by commune",
                [Query(f"commune:fleet_device_up:avg{{{selector}}} * {COMMUNE_NAMES}", table=True)],
                {"commune_name": "Xã — Commune", "Value": "Hoạt động — Up"},
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "Hoạt động — Up"},
                        "properties": [{"id": "unit", "value": "percentunit"}],
                    }
                ],
                width=12,
            ),
            bars(
                "Phiếu theo trạng thái — Open tickets by status",
                [Query(f"sum by (status) (fleet_tickets_open{{{selector}}})", "{{status}}")],
                width=8,
            ),
            bars(
                "Phiếu theo tuổi — Open tickets by age",
                [Query(f"sum by (age) (fleet_tickets_open_by_age{{{selector}}})", "{{age}}")],
                width=8,
            ),
            bars(
                "Thời gian khắc phục, 30 ngày — Time to repair, 30 days",
                [
                    Query(
                        f"district:fleet_tickets_time_to_resolve_seconds:mean_30d{{{selector}}}", "Trung bình — mean"
                    ),
                    Query(f"fleet_tickets_time_to_resolve_30d_seconds{{{selector}}}", "{{stat}}"),
                ],
                unit="s",
                width=8,
            ),
            timeseries(
                "Thời gian hoạt động — Uptime",
                [
                    Query(f"district:fleet_device_up:avg{{{selector}}}", "Huyện — District"),
                    Query("fleet:uptime_target:ratio", "Mục tiêu — Target"),
                ],
                unit="percentunit",
                maximum=1,
            ),
            timeseries(
                "Phiếu đang mở và quá hạn — Open and past-SLA tickets",
                [
                    Query(f"district:fleet_tickets_open:sum{{{selector}}}", "Đang mở — Open"),
                    Query(f"district:fleet_tickets_sla_breached:sum{{{selector}}}", "Quá hạn — Past SLA"),
                ],
            ),
        ],
        variables=[district_variable(multi=False)],
        time_from="now-7d",
    )


def operations() -> Json:
    """For technicians: what is down now, where, since when; faults; recent changes."""
    selector = 'district=~"$district"'
    state_count = f'sum(fleet_devices{{{selector},state="%s"}})'
    return dashboard(
        "fleet-operations",
        "Vận hành — Operations",
        "Thiết bị nào đang hỏng, ở đâu, từ khi nào. What is down now, where and since when.",
        [
            stat("Mất kết nối — Down", state_count % "down", steps=[("green", None), ("red", 1)]),
            stat("Suy giảm — Degraded", state_count % "degraded", steps=[("green", None), ("orange", 1)]),
            stat("Bảo trì — Maintenance", state_count % "maintenance", steps=[("blue", None)]),
            stat("Chưa rõ — Unknown", state_count % "unknown", steps=[("text", None)]),
            stat("Lỗi đang có — Active faults", f"count(fleet_device_fault{{{selector}}}) or vector(0)"),
            stat(
                "Chập chờn — Flapping",
                f"count(fleet_device_flapping{{{selector}}}) or vector(0)",
                steps=[("green", None), ("orange", 1)],
            ),
            table(
                "Đang mất kết nối — What is down now",
                [
                    Query(
                        f"fleet_device_down_since_timestamp_seconds{{{selector}}} * 1000 * {COMMUNE_NAMES}", table=True
                    ),
                    Query(
                        f"fleet_device_last_seen_timestamp_seconds{{{selector}}} * 1000 "
                        f"and on (device) (fleet_device_up{{{selector}}} == 0)",
                        table=True,
                    ),
                ],
                {
                    "device": "Thiết bị — Device",
                    "kind": "Loại — Kind",
                    "commune_name": "Xã — Commune",
                    "district_name": "Huyện — District",
                    "Value #A": "Mất kết nối từ — Down since",
                    "Value #B": "Thấy lần cuối — Last seen",
                },
                overrides=[time_column("Mất kết nối từ — Down since"), time_column("Thấy lần cuối — Last seen")],
                width=12,
                height=12,
            ),
            panel(
                "geomap",
                "Bản đồ thiết bị — Devices on the map",
                [
                    Query(
                        f"fleet_device_up{{{selector}}} * on (device) group_left (lat, lon) fleet_device_info",
                        table=True,
                    ),
                    Query(f"fleet_device_info{{{selector}}} unless on (device) fleet_device_up", table=True),
                ],
                width=12,
                height=12,
                steps=[("red", None), ("green", 1)],
                description="Xanh: hoạt động; đỏ: mất kết nối; xám: chưa rõ hoặc bảo trì. "
                "Green: up; red: down; grey: unknown or in maintenance.",
                options={
                    "view": {"id": "coords", "lat": 21.85, "lon": 106.75, "zoom": 8.5, "allLayers": True},
                    "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
                    "basemap": {"type": "default", "name": "Nền — Basemap", "config": {}},
                    "tooltip": {"mode": "details"},
                    "layers": [
                        _markers("Chưa rõ, bảo trì — Unknown, maintenance", "B", {"fixed": "text"}),
                        _markers("Trạng thái — State", "A", {"field": "Value", "fixed": "green"}),
                    ],
                },
                transformations=[
                    {
                        "id": "convertFieldType",
                        "options": {
                            "fields": {},
                            "conversions": [
                                {"targetField": "lat", "destinationType": "number"},
                                {"targetField": "lon", "destinationType": "number"},
                            ],
                        },
                    }
                ],
            ),
            table(
                "Lỗi đang có — Active faults",
                [Query(f"fleet_device_fault{{{selector}}} * {COMMUNE_NAMES}", table=True)],
                {
                    "device": "Thiết bị — Device",
                    "fault": "Lỗi — Fault",
                    "commune_name": "Xã — Commune",
                    "district_name": "Huyện — District",
                },
                width=12,
            ),
            bars(
                "Lỗi theo loại — Faults by kind",
                [Query(f"sum by (fault) (fleet_device_fault{{{selector}}})", "{{fault}}")],
                height=10,
            ),
            table(
                "Thay đổi trạng thái trong 1 giờ — Devices that changed in the last hour",
                [Query(f"changes(fleet_device_up{{{selector}}}[1h]) > 0", table=True)],
                {
                    "device": "Thiết bị — Device",
                    "kind": "Loại — Kind",
                    "commune": "Mã xã — Commune code",
                    "Value": "Số lần đổi — Changes",
                },
                width=12,
            ),
            table(
                "Không liên lạc quá 10 phút — Not heard for over 10 minutes",
                [Query(f"(time() - fleet_device_last_seen_timestamp_seconds{{{selector}}}) > 600", table=True)],
                {
                    "device": "Thiết bị — Device",
                    "kind": "Loại — Kind",
                    "commune": "Mã xã — Commune code",
                    "Value": "Im lặng — Silent for",
                },
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "Im lặng — Silent for"},
                        "properties": [{"id": "unit", "value": "s"}],
                    }
                ],
                width=12,
            ),
            timeseries(
                "Thiết bị mất kết nối theo huyện — Devices down by district",
                [
                    Query(
                        f'sum by (district) (fleet_devices{{{selector},state="down"}}) * {DISTRICT_NAMES}',
                        "{{district_name}}",
                    )
                ],
                width=24,
            ),
        ],
        variables=[district_variable(multi=True)],
        time_from="now-6h",
        refresh="30s",
    )


def _markers(name: str, ref: str, color: Json) -> Json:
    return {
        "type": "markers",
        "name": name,
        "filterData": {"id": "byRefId", "options": ref},
        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
        "tooltip": True,
        "config": {
            "showLegend": True,
            "style": {
                "color": color,
                "opacity": 0.8,
                "size": {"fixed": 5, "min": 2, "max": 15},
                "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
            },
        },
    }


def collectors() -> Json:
    """For the operator: are the collectors and the metrics themselves healthy?"""
    rate = "[$__rate_interval]"
    return dashboard(
        "fleet-collectors",
        "Bộ thu thập — Collectors",
        "Tốc độ hỏi, lỗi, độ trễ, trễ lịch và kích thước số liệu. Poll rates, errors, latency, lateness, scrape size.",
        [
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
            timeseries(
                "Tốc độ hỏi theo giao thức — Polls per second by protocol",
                [Query(f"sum by (protocol) (rate(fleet_polls_total{rate}))", "{{protocol}}")],
                unit="ops",
            ),
            timeseries(
                "Lỗi theo loại — Failures by kind",
                [
                    Query(
                        f'sum by (protocol, outcome) (rate(fleet_polls_total{{outcome!="ok"}}{rate}))',
                        "{{protocol}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            timeseries(
                "Độ trễ hỏi (p50, p95) — Poll latency",
                [
                    Query(
                        "histogram_quantile(0.5, sum by (protocol, le) "
                        f"(rate(fleet_poll_duration_seconds_bucket{rate})))",
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
                        f"histogram_quantile(0.99, sum by (instance, le) "
                        f"(rate(fleet_scheduler_lateness_seconds_bucket{rate})))",
                        "{{instance}} p99",
                    ),
                    Query(
                        f"sum by (instance) (increase(fleet_scheduler_missed_runs_total{rate}))",
                        "{{instance}} bỏ lỡ — missed",
                    ),
                ],
                unit="s",
            ),
            timeseries(
                "Quan sát chờ CSDL và bị mất — Observations held for the database and lost",
                [
                    Query("fleet_collector_observations_held", "{{instance}} chờ — held"),
                    Query(
                        f"increase(fleet_collector_observations_dropped_total{rate})",
                        "{{instance}} mất — dropped",
                    ),
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
            timeseries(
                "CPU của tiến trình — Process CPU",
                [Query(f'rate(process_cpu_seconds_total{{job=~"fleet-.*"}}{rate})', "{{job}} {{instance}}")],
                unit="percentunit",
            ),
            timeseries(
                "Bộ nhớ — Resident memory",
                [Query('process_resident_memory_bytes{job=~"fleet-.*"}', "{{job}} {{instance}}")],
                unit="bytes",
            ),
            timeseries(
                "Thông báo đã gửi và lỗi — Notifications sent and failed",
                [
                    Query(
                        f"sum by (channel, outcome) (rate(fleet_notification_deliveries_total{rate}))",
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
        ],
        time_from="now-6h",
        refresh="30s",
    )


def all_dashboards() -> dict[str, Json]:
    """Every dashboard by its file name in `dashboards/`."""
    return {
        "leadership.json": leadership(),
        "district.json": district(),
        "operations.json": operations(),
        "collectors.json": collectors(),
    }


def write_dashboards(folder: Path) -> list[Path]:
    """Write every dashboard's JSON into `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in all_dashboards().items():
        path = folder / name
        path.write_text(render(content), encoding="utf-8")
        written.append(path)
    return written


def read_dashboards(folder: Path) -> dict[str, Json]:
    """The dashboards saved in `folder` (*.json), by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


__all__ = ["all_dashboards", "read_dashboards", "write_dashboards"]
