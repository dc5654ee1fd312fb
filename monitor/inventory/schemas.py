"""What the API shows of the inventory. Secrets (credentials) never appear here."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from monitor.inventory.choices import DeviceKind, Protocol
from monitor.inventory.models import Commune, Device


class DistrictPublic(BaseModel):
    """A district (or maintenance area) with its counts."""

    code: str
    name: str
    type: str
    commune_count: int
    device_count: int


class CommunePublic(BaseModel):
    """A commune with its district and device count."""

    code: str
    name: str
    type: str
    district_code: str
    lat: float | None
    lon: float | None
    device_count: int

    @classmethod
    def build(cls, commune: Commune, device_count: int) -> CommunePublic:
        return cls(**commune.model_dump(exclude={"search_text"}), device_count=device_count)


class DevicePublic(BaseModel):
    """A device as people and integrations see it: credentials are never shown, only whether set."""

    model_config = ConfigDict(use_enum_values=True)

    code: str
    name: str
    kind: DeviceKind
    kind_label: str
    commune_code: str
    commune_name: str
    district_code: str
    parent_code: str | None
    vendor: str
    model: str
    profile: str
    protocol: Protocol
    address: str
    port: int | None
    has_credentials: bool
    interval_s: int
    installed_on: date | None
    lat: float | None
    lon: float | None
    active: bool
    updated_at: datetime

    @classmethod
    def build(cls, device: Device, commune: Commune, parent_code: str | None) -> DevicePublic:
        kind = DeviceKind(device.kind)
        return cls(
            **device.model_dump(exclude={"id", "parent_id", "credentials", "search_text", "created_at", "kind"}),
            kind=kind,
            kind_label=kind.label_vi,
            commune_name=commune.name,
            district_code=commune.district_code,
            parent_code=parent_code,
            has_credentials=bool(device.credentials),
        )


class DevicePage(BaseModel):
    """One page of devices; pass `next_after` as `after` for the next page."""

    items: list[DevicePublic]
    total: int
    next_after: str | None


class CommunePage(BaseModel):
    items: list[CommunePublic]
    total: int
