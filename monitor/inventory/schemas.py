"""What the API shows of the inventory. Secrets (credentials) never appear here."""

from __future__ import annotations

from pydantic import BaseModel

from monitor.inventory.choices import BroadcastTechnology, SystemCondition
from monitor.inventory.models import BroadcastSystem
from monitor.inventory.service import CommuneSummary


class CommunePublic(BaseModel):
    """A commune with its district, device count, and whether it has a (IT-telecom based) radio system."""

    code: str
    name: str
    type: str
    district_code: str
    lat: float | None
    lon: float | None
    device_count: int
    has_radio_system: bool
    it_telecom_based: bool

    @classmethod
    def build(cls, summary: CommuneSummary) -> CommunePublic:
        return cls(
            **summary.commune.model_dump(exclude={"search_text"}),
            device_count=summary.device_count,
            has_radio_system=summary.system_count > 0,
            it_telecom_based=summary.ip_system_count > 0,
        )


class BroadcastSystemPublic(BaseModel):
    """One broadcast system of a commune, with labels for people."""

    technology: BroadcastTechnology
    technology_label: str
    condition: SystemCondition
    condition_label: str
    installed_year: int | None
    note: str

    @classmethod
    def build(cls, system: BroadcastSystem) -> BroadcastSystemPublic:
        technology, condition = BroadcastTechnology(system.technology), SystemCondition(system.condition)
        return cls(
            technology=technology,
            technology_label=technology.label_vi,
            condition=condition,
            condition_label=condition.label_vi,
            installed_year=system.installed_year,
            note=system.note,
        )


class CommuneDetail(BaseModel):
    """A commune and its broadcast systems."""

    code: str
    name: str
    type: str
    district_code: str
    lat: float | None
    lon: float | None
    broadcast_systems: list[BroadcastSystemPublic]


class CommunePage(BaseModel):
    items: list[CommunePublic]
    total: int
