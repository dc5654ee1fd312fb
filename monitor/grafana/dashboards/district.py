"""**Huyện** (one district, `$district`): what is down, uptime by commune, tickets by status and age, time to
repair."""

from __future__ import annotations

from monitor.grafana.builder import (
    Json,
    Query,
    bars,
    dashboard,
    district_variable,
    stat,
    table,
    time_column,
    timeseries,
)
from monitor.grafana.dashboards.shared import COMMUNE_NAMES, UPTIME_STEPS

SELECTOR = 'district="$district"'


def district() -> Json:
    """For a district's officers: their devices and tickets."""
    return dashboard(
        "fleet-district",
        "Huyện — District",
        "Thiết bị và phiếu sửa chữa của một huyện (khu vực bảo trì). A district's devices and repair tickets.",
        [*_headline(), *_devices(), *_tickets(), *_trends()],
        variables=[district_variable(multi=False)],
        time_from="now-7d",
    )


def _headline() -> list[Json]:
    """Uptime now and over 30 days, devices down and in all, open tickets and those past SLA."""
    return [
        stat(
            "Thời gian hoạt động — Uptime now",
            f"district:fleet_device_up:avg{{{SELECTOR}}}",
            unit="percentunit",
            steps=UPTIME_STEPS,
        ),
        stat(
            "30 ngày — 30 days",
            f"district:fleet_device_up:avg_30d{{{SELECTOR}}}",
            unit="percentunit",
            steps=UPTIME_STEPS,
        ),
        stat(
            "Thiết bị mất kết nối — Devices down",
            f'sum(fleet_devices{{{SELECTOR},state="down"}})',
            steps=[("green", None), ("red", 1)],
        ),
        stat("Tổng số thiết bị — Devices", f"sum(fleet_devices{{{SELECTOR}}})"),
        stat("Phiếu đang mở — Open tickets", f"district:fleet_tickets_open:sum{{{SELECTOR}}}"),
        stat(
            "Phiếu quá hạn — Past SLA",
            f"district:fleet_tickets_sla_breached:sum{{{SELECTOR}}}",
            steps=[("green", None), ("red", 1)],
        ),
    ]


def _devices() -> list[Json]:
    """The devices down now and since when, and each commune's uptime."""
    return [
        table(
            "Thiết bị mất kết nối và từ khi nào — Devices down now, and since when",
            [Query(f"fleet_device_down_since_timestamp_seconds{{{SELECTOR}}} * 1000 * {COMMUNE_NAMES}", table=True)],
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
            [Query(f"commune:fleet_device_up:avg{{{SELECTOR}}} * {COMMUNE_NAMES}", table=True)],
            {"commune_name": "Xã — Commune", "Value": "Hoạt động — Up"},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Hoạt động — Up"},
                    "properties": [{"id": "unit", "value": "percentunit"}],
                }
            ],
            width=12,
        ),
    ]


def _tickets() -> list[Json]:
    """Open tickets by status and by age, and the time to repair over 30 days."""
    return [
        bars(
            "Phiếu theo trạng thái — Open tickets by status",
            [Query(f"sum by (status) (fleet_tickets_open{{{SELECTOR}}})", "{{status}}")],
            width=8,
        ),
        bars(
            "Phiếu theo tuổi — Open tickets by age",
            [Query(f"sum by (age) (fleet_tickets_open_by_age{{{SELECTOR}}})", "{{age}}")],
            width=8,
        ),
        bars(
            "Thời gian khắc phục, 30 ngày — Time to repair, 30 days",
            [
                Query(f"district:fleet_tickets_time_to_resolve_seconds:mean_30d{{{SELECTOR}}}", "Trung bình — mean"),
                Query(f"fleet_tickets_time_to_resolve_30d_seconds{{{SELECTOR}}}", "{{stat}}"),
            ],
            unit="s",
            width=8,
        ),
    ]


def _trends() -> list[Json]:
    """Uptime against the target, and open and past-SLA tickets, over time."""
    return [
        timeseries(
            "Thời gian hoạt động — Uptime",
            [
                Query(f"district:fleet_device_up:avg{{{SELECTOR}}}", "Huyện — District"),
                Query("fleet:uptime_target:ratio", "Mục tiêu — Target"),
            ],
            unit="percentunit",
            maximum=1,
        ),
        timeseries(
            "Phiếu đang mở và quá hạn — Open and past-SLA tickets",
            [
                Query(f"district:fleet_tickets_open:sum{{{SELECTOR}}}", "Đang mở — Open"),
                Query(f"district:fleet_tickets_sla_breached:sum{{{SELECTOR}}}", "Quá hạn — Past SLA"),
            ],
        ),
    ]


__all__ = ["district"]
