"""Choice sets of alerts, with their Vietnamese and English labels."""

from __future__ import annotations

from monitor.labels import LabelledEnum


class ProblemStatus(LabelledEnum):
    """Where a problem stands.

    `pending` waits out the grouping delay (a storm is seen whole before anything opens);
    `active` is a problem people must fix; `suppressed` is real but explained by another problem
    (a parent device down, a commune or district outage) or muted by maintenance; `resolved` is gone.
    """

    PENDING = "pending", "Đang chờ xác nhận", "Pending"
    ACTIVE = "active", "Đang xảy ra", "Active"
    SUPPRESSED = "suppressed", "Đã gộp / tạm ẩn", "Suppressed"
    RESOLVED = "resolved", "Đã khắc phục", "Resolved"


class SuppressionReason(LabelledEnum):
    """Why a real problem opens no ticket and sends no notification of its own."""

    PARENT_DOWN = "parent_down", "Thiết bị cha mất kết nối", "Unreachable behind its parent"
    GROUPED = "grouped", "Gộp vào sự cố chung của xã/huyện", "Part of a commune or district outage"
    MAINTENANCE = "maintenance", "Trong thời gian bảo trì", "In a maintenance window"
    NO_TICKET = "no_ticket", "Chỉ theo dõi, không lập phiếu", "Watched only, no ticket"


class ProblemSource(LabelledEnum):
    """Who found the problem."""

    HEALTH = "health", "Giám sát thiết bị", "Device monitoring"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager", "Prometheus Alertmanager"
    SERVICE = "service", "Hệ thống tự giám sát", "The service watching itself"


class ChannelKind(LabelledEnum):
    """How a notification travels."""

    WEBHOOK = "webhook", "Webhook", "Webhook"
    EMAIL = "email", "Thư điện tử", "E-mail"
    TELEGRAM = "telegram", "Telegram", "Telegram"
    ZALO = "zalo", "Zalo", "Zalo"


class DeliveryStatus(LabelledEnum):
    """Where a notification delivery stands."""

    PENDING = "pending", "Chờ gửi", "Pending"
    SENT = "sent", "Đã gửi", "Sent"
    FAILED = "failed", "Gửi lỗi", "Failed"
