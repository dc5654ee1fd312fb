"""**Lãnh đạo** (leadership): the province's uptime now, over 30 and 365 days, by district against the target,
the plan's coverage, tickets and SLA."""

from __future__ import annotations

from monitor.grafana.builder import Json, Query, bars, dashboard, stat, timeseries
from monitor.grafana.dashboards.shared import DISTRICT_NAMES, UPTIME_STEPS

SLA_STEPS = [("red", None), ("orange", 0.8), ("green", 0.9)]


def leadership() -> Json:
    """For the province's leaders: uptime, coverage, tickets and SLA, trends."""
    return dashboard(
        "fleet-leadership",
        "Lãnh đạo tỉnh — Province leadership",
        "Thời gian hoạt động của hệ thống thông tin cơ sở, độ phủ theo kế hoạch, phiếu sửa chữa và SLA. "
        "Uptime of the grassroots information network, the plan's coverage, repair tickets and SLA.",
        [*_headline(), *_uptime(), *_coverage_and_repairs(), *_radio_systems_and_tickets(), _sla_by_district()],
        time_from="now-30d",
        refresh="5m",
    )


def _headline() -> list[Json]:
    """Uptime now, over 30 and 365 days, the target, open tickets and the SLA met."""
    return [
        stat(
            "Thời gian hoạt động toàn tỉnh — Province uptime now",
            "province:fleet_device_up:avg",
            unit="percentunit",
            steps=UPTIME_STEPS,
            description="Share of judged devices up or degraded now.",
        ),
        stat("30 ngày — Uptime, 30 days", "province:fleet_device_up:avg_30d", unit="percentunit", steps=UPTIME_STEPS),
        stat(
            "365 ngày — Uptime, 365 days", "province:fleet_device_up:avg_365d", unit="percentunit", steps=UPTIME_STEPS
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
            steps=SLA_STEPS,
        ),
    ]


def _uptime() -> list[Json]:
    """Each district's 30-day uptime against the target, and the province's trend."""
    return [
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
    ]


def _coverage_and_repairs() -> list[Json]:
    """The plan's coverage (communes with a radio system, an IP one), time to repair, tickets past SLA."""
    return [
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
    ]


def _radio_systems_and_tickets() -> list[Json]:
    """Radio systems by district, and open tickets by priority over time."""
    return [
        bars(
            "Đài truyền thanh theo huyện — Radio systems by district",
            [
                Query(f"fleet_communes_with_ip_radio_system * {DISTRICT_NAMES}", "{{district_name}} — CNTT-VT / IP"),
                Query(f"fleet_communes * {DISTRICT_NAMES}", "{{district_name}} — tổng số xã / communes"),
            ],
            height=10,
        ),
        timeseries(
            "Phiếu đang mở theo mức ưu tiên — Open tickets by priority",
            [Query("sum by (priority) (fleet_tickets_open)", "{{priority}}")],
        ),
    ]


def _sla_by_district() -> Json:
    """The SLA met over 30 days, district by district (the whole width)."""
    return bars(
        "Đạt SLA 30 ngày theo huyện — SLA met by district, 30 days",
        [Query(f"district:fleet_tickets_sla_met:ratio_30d * {DISTRICT_NAMES}", "{{district_name}}")],
        unit="percentunit",
        maximum=1,
        steps=SLA_STEPS,
        width=24,
    )


__all__ = ["leadership"]
