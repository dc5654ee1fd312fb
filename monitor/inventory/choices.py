"""Choice sets of the inventory, each with its Vietnamese and English label."""

from __future__ import annotations

from monitor.labels import LabelledEnum


class DeviceKind(LabelledEnum):
    """What a device is, which decides what can go wrong with it."""

    RADIO_CLUSTER = "radio_cluster", "Cụm loa truyền thanh", "Radio cluster"
    BULLETIN_BOARD = "bulletin_board", "Bảng tin điện tử công cộng", "Public electronic bulletin board"
    STATION_CONTROLLER = "station_controller", "Máy điều khiển đài truyền thanh xã", "Station controller"
    GATEWAY = "gateway", "Thiết bị kết nối mạng", "Network gateway"


class Protocol(LabelledEnum):
    """How the service hears a device: it polls (http, snmp) or the device pushes (mqtt, heartbeat)."""

    HTTP = "http", "HTTP (hỏi trạng thái)", "HTTP (polled)"
    SNMP = "snmp", "SNMP (hỏi trạng thái)", "SNMP (polled)"
    MQTT = "mqtt", "MQTT (thiết bị tự báo)", "MQTT (pushed)"
    HEARTBEAT = "heartbeat", "HTTP (thiết bị tự báo)", "HTTP heartbeat (pushed)"

    @property
    def is_polled(self) -> bool:
        return self in (Protocol.HTTP, Protocol.SNMP)


class BroadcastTechnology(LabelledEnum):
    """Technology of a commune's broadcast system, as the plan counts it."""

    IP = "ip", "Ứng dụng CNTT - viễn thông", "IT-telecom (IP)"
    WIRED = "wired", "Hữu tuyến", "Wired"
    FM = "fm", "Vô tuyến FM", "FM radio"


class SystemCondition(LabelledEnum):
    """Condition of a broadcast system."""

    GOOD = "good", "Hoạt động tốt", "Working"
    DEGRADED = "degraded", "Xuống cấp", "Degraded"
    BROKEN = "broken", "Hư hỏng, không hoạt động", "Broken"


class UnitStructure(LabelledEnum):
    """Which administrative structure a deployment uses."""

    Y2020 = "2020", "Cấp huyện (2020–2025)", "Districts (2020–2025)"
    Y2025 = "2025", "Sau sắp xếp 01/07/2025 (khu vực bảo trì)", "After the 1 July 2025 reform (maintenance areas)"
