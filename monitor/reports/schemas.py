"""The reports' answers in the API (JSON): seconds and fractions, as `export.as_json` writes them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class UptimeRowPublic(BaseModel):
    """A device or group over the period: seconds by state, availability (0..1, None if never judged),
    outages, the longest, MTBF."""

    key: str
    name: str
    district_code: str | None
    commune_code: str | None
    kind: str | None
    devices: int
    up_s: float
    degraded_s: float
    down_s: float
    unknown_s: float
    maintenance_s: float
    availability: float | None
    outages: int
    longest_outage_s: float
    mtbf_s: float | None


class MaintenanceListed(BaseModel):
    """A maintenance window laid over the report."""

    id: int | None
    name: str
    scope: str
    scope_code: str
    devices: int
    occurrences: int
    seconds: float


class UptimeReportPublic(BaseModel):
    """Uptime from the state history over `from`..`to` (local days), cut at `end` when the period is not over."""

    from_: date = Field(alias="from")
    to: date
    start: datetime
    end: datetime
    by: str
    exclude_maintenance: bool
    generated_at: datetime
    method: str
    method_vi: str
    rows: list[UptimeRowPublic]
    total: UptimeRowPublic
    maintenance: list[MaintenanceListed]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UptimeReportPublic:
        return cls.model_validate(body)


class SlaRowPublic(BaseModel):
    """A group of tickets: how many were opened, resolved, reopened and breached; mean times in seconds."""

    key: str
    name: str
    opened: int
    resolved: int
    reopened: int
    reopenings: int
    breached: int
    breach_rate: float | None
    mtta_s: float | None
    mttr_s: float | None


class SlaReportPublic(BaseModel):
    """SLA figures of the tickets opened over `from`..`to` (local days)."""

    from_: date = Field(alias="from")
    to: date
    by: str
    generated_at: datetime
    method: str
    method_vi: str
    rows: list[SlaRowPublic]
    total: SlaRowPublic
