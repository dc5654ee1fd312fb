"""The words of device health: states, fault codes and priorities, each with its labels."""

from __future__ import annotations

from typing import Self

from monitor.labels import LabelledEnum
from monitor.priority import Priority


class DeviceState(LabelledEnum):
    """What people are shown about a device.

    `unknown` means never heard yet (or not enough to decide); `degraded` means reachable but
    reporting faults; `maintenance` hides nothing: the machine keeps tracking the true state
    underneath and returns to it when maintenance ends.
    """

    UNKNOWN = "unknown", "Chưa rõ", "Unknown"
    UP = "up", "Hoạt động", "Up"
    DEGRADED = "degraded", "Suy giảm", "Degraded"
    DOWN = "down", "Mất kết nối", "Down"
    MAINTENANCE = "maintenance", "Bảo trì", "Maintenance"


class FaultCode(LabelledEnum):
    """A fault a device (or its profile) can report, with the priority its problem gets by default.

    Profiles may report codes of their own: use `fault_label` and `fault_priority`, which accept
    any string, where a code may not be one of these.
    """

    default_priority: Priority

    def __new__(cls, value: str, label_vi: str = "", label_en: str = "", priority: Priority = Priority.P3) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label_vi = label_vi or value
        member.label_en = label_en or value
        member.default_priority = priority
        return member

    OFFLINE = "offline", "Mất kết nối", "Offline", Priority.P2
    POWER_LOSS = "power_loss", "Mất điện lưới", "Mains power lost", Priority.P2
    AMPLIFIER_FAULT = "amplifier_fault", "Hỏng bộ khuếch đại", "Amplifier fault", Priority.P2
    SPEAKER_LINE_FAULT = "speaker_line_fault", "Lỗi đường dây loa", "Speaker line fault", Priority.P2
    LOW_SIGNAL = "low_signal", "Sóng yếu", "Low signal", Priority.P3
    SCREEN_OFF = "screen_off", "Màn hình tắt", "Screen off", Priority.P2
    CONTENT_STALE = "content_stale", "Nội dung không được cập nhật", "Content not updated", Priority.P3
    OVERHEAT = "overheat", "Quá nhiệt", "Overheating", Priority.P2
    DOOR_OPEN = "door_open", "Cửa tủ thiết bị mở", "Cabinet door open", Priority.P3
    STORAGE_FULL = "storage_full", "Đầy bộ nhớ", "Storage full", Priority.P4


# A code a profile added on its own gets this priority until someone decides better.
UNLISTED_FAULT_PRIORITY = Priority.P3


def fault_priority(code: str) -> Priority:
    """The default priority of a fault code; a code a profile added gets `UNLISTED_FAULT_PRIORITY`."""
    try:
        return FaultCode(code).default_priority
    except ValueError:
        return UNLISTED_FAULT_PRIORITY


def fault_label(code: str, language: str = "vi") -> str:
    """The label of a fault code for people; a code a profile added is shown as it is."""
    try:
        return FaultCode(code).label(language)
    except ValueError:
        return code
