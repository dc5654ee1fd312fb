"""Tables of health: the current state of each device and the outbox of its state changes.

The state machine itself (`machine.py`) stays pure; these rows are how its results survive restarts
and reach the alerts part, which claims state changes exactly once (see `store.claim_state_changes`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime, utcnow

_UNSPANNED = sa.text("spanned_at IS NULL")


class DeviceHealthRow(SQLModel, table=True):
    """A device's current health: what people see (state, since, faults) and the machine's counters.

    `data` holds the whole `DeviceHealth` (counters, flapping memory); the columns beside it are
    copies for queries and metrics. `silence_deadline` is when a push device that stays silent
    counts a missed heartbeat, so the periodic tick reads only the devices that are overdue.
    """

    __tablename__ = "device_health"

    device_id: int = Field(sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")], primary_key=True)
    state: str = Field(sa_type=sa.String(16), index=True)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    faults: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    flapping: bool = False
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_observation_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=300)
    latency_s: float | None = None
    readings: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    silence_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StateChange(SQLModel, table=True):
    """One transition of one device's health, written in the same transaction as the new state.

    An outbox row: detecting a change and acting on it stay apart, survive restarts, and several
    dispatchers share the work by claiming rows (`claimed_by`, `claimed_at`) before processing them.
    """

    __tablename__ = "state_changes"
    __table_args__ = (
        sa.Index("ix_state_changes_pending", "processed_at", "id"),
        # the changes not yet laid into the reports' state spans (monitor.reports.spans)
        sa.Index("ix_state_changes_unspanned", "id", sqlite_where=_UNSPANNED, postgresql_where=_UNSPANNED),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")], index=True)
    old_state: str = Field(sa_type=sa.String(16))
    new_state: str = Field(sa_type=sa.String(16))
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(max_length=300)
    faults: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    faults_added: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    faults_removed: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    flapping: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    spanned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
