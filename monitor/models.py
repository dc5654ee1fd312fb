"""Every table of the service, gathered so that migrations see one metadata."""

from sqlmodel import SQLModel

from monitor.alerts.models import (
    AlertmanagerAlert,
    AlertProblem,
    MaintenanceWindow,
    NotificationChannel,
    NotificationDelivery,
)
from monitor.auth.audit import AuditEvent
from monitor.auth.idempotency import IdempotencyKey
from monitor.auth.models import User, UserSession
from monitor.auth.throttle import LoginFailure
from monitor.auth.tokens import ApiToken
from monitor.generations import DataGenerations
from monitor.health.leases import CollectorMember, CollectorShard
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.models import BroadcastSystem, Commune, Device, District
from monitor.reports.models import StateSpan, UptimeDaily, UptimeDay
from monitor.reports.submission import ReportReminder, ReportSubmission
from monitor.reports.training import TrainingAttendee, TrainingSession
from monitor.tickets.models import (
    InspectionSchedule,
    Ticket,
    TicketAttachment,
    TicketCounter,
    TicketEvent,
    TicketPause,
)

metadata = SQLModel.metadata

__all__ = [
    "AlertProblem",
    "AlertmanagerAlert",
    "ApiToken",
    "AuditEvent",
    "BroadcastSystem",
    "CollectorMember",
    "CollectorShard",
    "Commune",
    "DataGenerations",
    "Device",
    "DeviceHealthRow",
    "District",
    "IdempotencyKey",
    "InspectionSchedule",
    "LoginFailure",
    "MaintenanceWindow",
    "NotificationChannel",
    "NotificationDelivery",
    "ReportReminder",
    "ReportSubmission",
    "StateChange",
    "StateSpan",
    "Ticket",
    "TicketAttachment",
    "TicketCounter",
    "TicketEvent",
    "TicketPause",
    "TrainingAttendee",
    "TrainingSession",
    "UptimeDaily",
    "UptimeDay",
    "User",
    "UserSession",
    "metadata",
]
