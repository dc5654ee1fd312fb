"""The province's inventory: districts, communes, their broadcast systems and the devices."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime, utcnow
from monitor.sealing import SealedText


class District(SQLModel, table=True):
    """A unit responsible for keeping its communes' systems running; tickets are routed to it.

    From 2020 to June 2025 a district (huyện, thành phố); after the 1 July 2025 reform abolished the
    district level, a maintenance area (khu vực bảo trì) named after the former district.
    """

    __tablename__ = "districts"

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=120)
    type: str = Field(max_length=40, description="Huyện, Thành phố, or Khu vực bảo trì")
    search_text: str = Field(default="", max_length=400)


class Commune(SQLModel, table=True):
    """A commune (xã, phường, thị trấn): where the devices stand."""

    __tablename__ = "communes"

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=120)
    type: str = Field(max_length=40, description="Xã, Phường or Thị trấn")
    district_code: str = Field(foreign_key="districts.code", index=True, max_length=16)
    lat: float | None = None
    lon: float | None = None
    search_text: str = Field(default="", max_length=400)


class BroadcastSystem(SQLModel, table=True):
    """One broadcast system of a commune, counted for the plan's targets.

    A commune with at least one row has a radio system; `technology` says whether it is IT-telecom
    based (`ip`) or a legacy wired or FM system that the plan replaces.
    """

    __tablename__ = "broadcast_systems"

    id: int | None = Field(default=None, primary_key=True)
    commune_code: str = Field(foreign_key="communes.code", index=True, max_length=16)
    technology: str = Field(sa_type=sa.String(16))
    condition: str = Field(sa_type=sa.String(16))
    installed_year: int | None = None
    note: str = Field(default="", max_length=500)


#: Device fields that are written, never shown back or exported.
SECRET_FIELDS = frozenset({"credentials", "token_hash"})


class Device(SQLModel, table=True):
    """A device the service watches: a radio cluster, a bulletin board, a station controller or a
    gateway, standing in one commune and possibly depending on a parent device (its gateway or
    station) that it cannot be reached without."""

    __tablename__ = "devices"
    __table_args__ = (
        sa.CheckConstraint("interval_s > 0", name="interval_positive"),
        sa.CheckConstraint("port IS NULL OR (port > 0 AND port < 65536)", name="port_range"),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(sa_type=sa.String(32), index=True)
    commune_code: str = Field(foreign_key="communes.code", index=True, max_length=16)
    parent_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("devices.id", ondelete="SET NULL")], index=True
    )
    vendor: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=100)
    profile: str = Field(max_length=100)
    protocol: str = Field(sa_type=sa.String(16))
    address: str = Field(default="", max_length=500, description="host, URL or MQTT topic")
    port: int | None = None
    # Write-only: SNMP community or credentials. Stored for the collectors, never shown back, sealed at rest
    # (monitor/sealing.py: the column seals and opens; TEXT on PostgreSQL since revision 0012, as a token
    # is longer than its secret). A fleet file's credentials are at most 500 characters.
    credentials: str | None = Field(default=None, sa_type=SealedText(legacy_length=500))
    # SHA-256 of the device's heartbeat token (a random 128-bit secret, so a fast hash is enough).
    token_hash: str | None = Field(default=None, max_length=64)
    interval_s: int = Field(default=60)
    installed_on: date | None = None
    lat: float | None = None
    lon: float | None = None
    active: bool = Field(default=True)
    search_text: str = Field(default="", max_length=800)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
