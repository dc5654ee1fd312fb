"""Tables of the reports: each device's history as spans of one state, and the daily roll-ups over them.

`state_spans` is the state history laid flat: one row per period a device spent in one state, written
from the `state_changes` outbox (`spans.fold_changes`); at most one open span (no end yet) per device,
enforced by a unique partial index. `uptime_daily` adds the spans up per local day (Asia/Ho_Chi_Minh),
commune and kind of device, for the days listed in `uptime_days`; a late change to a rolled day un-lists
the days from it on, and the next roll-up computes them again (`rollup.roll_up`).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime

_OPEN = sa.text("ended_at IS NULL")


class StateSpan(SQLModel, table=True):
    """A device in one state from `started_at` until `ended_at` (None: it still is)."""

    __tablename__ = "state_spans"
    __table_args__ = (
        sa.Index("uq_state_spans_open_device", "device_id", unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN),
        sa.Index("ix_state_spans_device_started", "device_id", "started_at"),
        sa.Index("ix_state_spans_ended_started", "ended_at", "started_at"),
        sa.Index("ix_state_spans_state_started", "state", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")])
    state: str = Field(sa_type=sa.String(16))
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UptimeDaily(SQLModel, table=True):
    """Seconds by state of the active devices of one commune and kind on one local day."""

    __tablename__ = "uptime_daily"

    day: date = Field(primary_key=True)
    commune_code: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, sa_type=sa.String(32))
    up_s: float = 0.0
    degraded_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0
    devices: int = 0


class UptimeDay(SQLModel, table=True):
    """A local day whose roll-up rows are complete (written after the day ended and its changes were laid)."""

    __tablename__ = "uptime_days"

    day: date = Field(primary_key=True)
    rolled_at: datetime = Field(sa_type=UTCDateTime)
