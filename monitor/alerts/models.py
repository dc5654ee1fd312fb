"""Tables of alerts: problems, maintenance windows, Alertmanager alerts, notification channels and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime, utcnow
from monitor.sealing import SealedJSON

#: A channel's config keys that hold secrets: write-only in the API, kept out of error messages.
CHANNEL_SECRET_KEYS = frozenset({"secret", "password", "bot_token", "app_secret", "refresh_token", "access_token"})
#: What is sealed at rest: the secrets, and a webhook's URL (chat services put a token in its path or query).
CHANNEL_SEALED_KEYS = CHANNEL_SECRET_KEYS | {"url"}


class AlertProblem(SQLModel, table=True):
    """A problem: something wrong with a device, a commune or a district, of one kind (`offline` or a fault).

    Its `key` is the identity tickets use (`device:06613-CL01:offline`, `commune:06613:offline`). At most
    one unresolved problem per key (a partial unique index). A grouped problem (commune or district
    outage) lists its devices in `members`; a suppressed one names what explains it in `suppressed_by`.
    """

    __tablename__ = "alert_problems"
    __table_args__ = (
        sa.Index(
            "uq_alert_problems_open_key",
            "key",
            unique=True,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        ),
        sa.Index("ix_alert_problems_status_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    scope: str = Field(sa_type=sa.String(16))
    scope_code: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    source: str = Field(sa_type=sa.String(16))
    status: str = Field(sa_type=sa.String(16))
    priority: str = Field(sa_type=sa.String(4))
    device_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")], index=True
    )
    commune_code: str | None = Field(default=None, max_length=16, index=True)
    district_code: str | None = Field(default=None, max_length=16, index=True)
    title: str = Field(max_length=300)
    members: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    suppressed_by: str | None = Field(default=None, max_length=200)
    suppression_reason: str | None = Field(default=None, sa_type=sa.String(16))
    flapping: bool = False
    started_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    acknowledgement_note: str | None = Field(default=None, max_length=1000)
    ticket_code: str | None = Field(default=None, max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MaintenanceWindow(SQLModel, table=True):
    """A time when problems are muted (but the true state is tracked and shown).

    One-off (`starts_at`..`ends_at`) or recurring (`cron`, a five-field expression in Asia/Ho_Chi_Minh,
    each occurrence lasting `duration_s`, between `starts_at` and `ends_at` when given). Scoped to a
    device, a commune, a district or a kind of device.
    """

    __tablename__ = "maintenance_windows"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    scope: str = Field(sa_type=sa.String(16))
    scope_code: str = Field(max_length=64)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cron: str | None = Field(default=None, max_length=100)
    duration_s: int | None = None
    active: bool = True
    created_by: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AlertmanagerAlert(SQLModel, table=True):
    """The last state seen of one Alertmanager alert, by fingerprint: makes duplicate and out-of-order
    deliveries (an HA pair sends both) harmless."""

    __tablename__ = "alertmanager_alerts"

    fingerprint: str = Field(primary_key=True, max_length=64)
    problem_key: str = Field(max_length=200, index=True)
    status: str = Field(sa_type=sa.String(16))
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NotificationChannel(SQLModel, table=True):
    """Where notifications go: a webhook, e-mail or Telegram, for a district (None: all) from a priority up.

    `config` holds the channel's settings; its secrets (webhook signing key, SMTP password, bot token,
    Zalo's app secret and tokens: `CHANNEL_SECRET_KEYS`) are write-only, never shown back, and sealed at
    rest with the webhook's URL (`CHANNEL_SEALED_KEYS`, see monitor/sealing.py): the column seals them on
    the way in and opens them on the way out.
    """

    __tablename__ = "notification_channels"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    kind: str = Field(sa_type=sa.String(16))
    district_code: str | None = Field(default=None, foreign_key="districts.code", max_length=16)
    min_priority: str = Field(default="P4", sa_type=sa.String(4))
    config: dict[str, Any] = Field(default_factory=dict, sa_type=SealedJSON(CHANNEL_SEALED_KEYS))
    rate_limit_per_minute: int = 30
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NotificationDelivery(SQLModel, table=True):
    """One message to one recipient through one channel, with every attempt counted.

    `idempotency_key` is unique: an event is never delivered twice to the same recipient and channel.
    `district_code` is the event's district (None: province-wide), so a district sees its own deliveries;
    `message_key` names the message that carried it (its own key, or a digest's key shared by the rows
    it folded): the receiver's Idempotency-Key, and what the per-channel rate limit counts.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        # The rate limit counts a channel's messages of the last minute.
        sa.Index("ix_notification_deliveries_channel_sent", "channel_id", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(sa_column_args=[sa.ForeignKey("notification_channels.id", ondelete="CASCADE")])
    recipient: str = Field(max_length=200)
    idempotency_key: str = Field(max_length=200, unique=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    district_code: str | None = Field(default=None, max_length=16, index=True)
    message_key: str | None = Field(default=None, max_length=64)
    status: str = Field(sa_type=sa.String(16))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
