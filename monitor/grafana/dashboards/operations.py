"""**Vận hành** (operations, for technicians): what is down now and since when, a map of devices coloured by
state, faults, recent changes."""

from __future__ import annotations

from monitor.grafana.builder import (
    Json,
    Query,
    bars,
    dashboard,
    district_variable,
    panel,
    stat,
    table,
    time_column,
    timeseries,
)
from monitor.grafana.dashboards.shared import COMMUNE_NAMES, DISTRICT_NAMES

SELECTOR = 'district=~"$district"'


def operations() -> Json:
    """For technicians: what is down now, where, since when; faults; recent changes."""
    return dashboard(
        "fleet-operations",
        "Vận hành — Operations",
        "Thiết bị nào đang hỏng, ở đâu, từ khi nào. What is down now, where and since when.",
        [*_counts(), _down_now(), _map(), *_faults(), *_recent_changes(), _down_by_district()],
        variables=[district_variable(multi=True)],
        time_from="now-6h",
        refresh="30s",
    )


def _counts() -> list[Json]:
    """Devices by state (down, degraded, in maintenance, unknown), active faults, flapping devices."""
    state_count = f'sum(fleet_devices{{{SELECTOR},state="%s"}})'
    return [
        stat("Mất kết nối — Down", state_count % "down", steps=[("green", None), ("red", 1)]),
        stat("Suy giảm — Degraded", state_count % "degraded", steps=[("green", None), ("orange", 1)]),
        stat("Bảo trì — Maintenance", state_count % "maintenance", steps=[("blue", None)]),
        stat("Chưa rõ — Unknown", state_count % "unknown", steps=[("text", None)]),
        stat("Lỗi đang có — Active faults", f"count(fleet_device_fault{{{SELECTOR}}}) or vector(0)"),
        stat(
            "Chập chờn — Flapping",
            f"count(fleet_device_flapping{{{SELECTOR}}}) or vector(0)",
            steps=[("green", None), ("orange", 1)],
        ),
    ]


def _down_now() -> Json:
    """The devices down now: since when, and when they were last heard."""
    return table(
        "Đang mất kết nối — What is down now",
        [
            Query(f"fleet_device_down_since_timestamp_seconds{{{SELECTOR}}} * 1000 * {COMMUNE_NAMES}", table=True),
            Query(
                f"fleet_device_last_seen_timestamp_seconds{{{SELECTOR}}} * 1000 "
                f"and on (device) (fleet_device_up{{{SELECTOR}}} == 0)",
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
    )


def _map() -> Json:
    """Every device on the map, coloured by its state (grey when unknown or in maintenance)."""
    return panel(
        "geomap",
        "Bản đồ thiết bị — Devices on the map",
        [
            Query(f"fleet_device_up{{{SELECTOR}}} * on (device) group_left (lat, lon) fleet_device_info", table=True),
            Query(f"fleet_device_info{{{SELECTOR}}} unless on (device) fleet_device_up", table=True),
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
    )


def _markers(name: str, ref: str, color: Json) -> Json:
    """A layer of the map: one circle per row of query `ref`, at its `lat` and `lon`."""
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


def _faults() -> list[Json]:
    """The active faults, device by device, and their count by kind."""
    return [
        table(
            "Lỗi đang có — Active faults",
            [Query(f"fleet_device_fault{{{SELECTOR}}} * {COMMUNE_NAMES}", table=True)],
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
            [Query(f"sum by (fault) (fleet_device_fault{{{SELECTOR}}})", "{{fault}}")],
            height=10,
        ),
    ]


def _recent_changes() -> list[Json]:
    """The devices that changed state in the last hour, and those not heard for over 10 minutes."""
    return [
        table(
            "Thay đổi trạng thái trong 1 giờ — Devices that changed in the last hour",
            [Query(f"changes(fleet_device_up{{{SELECTOR}}}[1h]) > 0", table=True)],
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
            [Query(f"(time() - fleet_device_last_seen_timestamp_seconds{{{SELECTOR}}}) > 600", table=True)],
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
    ]


def _down_by_district() -> Json:
    """Devices down over time, district by district (the whole width)."""
    return timeseries(
        "Thiết bị mất kết nối theo huyện — Devices down by district",
        [
            Query(
                f'sum by (district) (fleet_devices{{{SELECTOR},state="down"}}) * {DISTRICT_NAMES}',
                "{{district_name}}",
            )
        ],
        width=24,
    )


__all__ = ["operations"]
