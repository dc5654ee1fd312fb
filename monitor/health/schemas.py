"""What the API shows of the fleet's state: districts' devices by state, devices with their health."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState, fault_label
from monitor.inventory.choices import DeviceKind, Protocol
from monitor.inventory.models import SECRET_FIELDS, Commune, Device


class DistrictPublic(BaseModel):
    """A district (or maintenance area) with its counts."""

    code: str
    name: str
    type: str
    commune_count: int
    device_count: int
    devices_by_state: dict[str, int] = Field(
        default_factory=dict, description="active devices by current state (unknown: never heard yet)"
    )


class FaultPublic(BaseModel):
    """A fault code with its labels (a profile's own codes are shown as they are)."""

    code: str
    label_vi: str
    label_en: str

    @classmethod
    def of(cls, code: str) -> FaultPublic:
        return cls(code=code, label_vi=fault_label(code, "vi"), label_en=fault_label(code, "en"))


class DeviceHealthPublic(BaseModel):
    """What health judged about a device: its state since when, its faults, when it was last heard."""

    state: DeviceState
    since: datetime | None = None
    faults: list[FaultPublic] = Field(default_factory=list)
    flapping: bool = False
    last_seen: datetime | None = None
    last_observation_at: datetime | None = None
    last_error: str | None = None
    latency_s: float | None = None
    readings: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label_vi(self) -> str:
        return self.state.label_vi

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_label_en(self) -> str:
        return self.state.label_en

    @classmethod
    def build(cls, row: DeviceHealthRow | None) -> DeviceHealthPublic:
        """A device's health; one never judged is `unknown`."""
        if row is None:
            return cls(state=DeviceState.UNKNOWN)
        return cls(
            state=DeviceState(row.state),
            since=row.since,
            faults=[FaultPublic.of(code) for code in row.faults],
            flapping=row.flapping,
            last_seen=row.last_seen,
            last_observation_at=row.last_observation_at,
            last_error=row.last_error,
            latency_s=row.latency_s,
            readings=dict(row.readings),
        )


class StateChangePublic(BaseModel):
    """One change of a device's state, as health decided it."""

    at: datetime
    old_state: DeviceState
    new_state: DeviceState
    reason: str
    faults: list[FaultPublic]
    flapping: bool

    @classmethod
    def build(cls, change: StateChange) -> StateChangePublic:
        return cls(
            at=change.at,
            old_state=DeviceState(change.old_state),
            new_state=DeviceState(change.new_state),
            reason=change.reason,
            faults=[FaultPublic.of(code) for code in change.faults],
            flapping=change.flapping,
        )


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
    health: DeviceHealthPublic

    @classmethod
    def build(
        cls, device: Device, commune: Commune, parent_code: str | None, health: DeviceHealthRow | None = None
    ) -> DevicePublic:
        kind = DeviceKind(device.kind)
        return cls(
            **device.model_dump(exclude={*SECRET_FIELDS, "id", "parent_id", "search_text", "created_at", "kind"}),
            kind=kind,
            kind_label=kind.label_vi,
            commune_name=commune.name,
            district_code=commune.district_code,
            parent_code=parent_code,
            has_credentials=bool(device.credentials),
            health=DeviceHealthPublic.build(health),
        )


class DevicePage(BaseModel):
    """One page of devices; pass `next_after` as `after` for the next page."""

    items: list[DevicePublic]
    total: int
    next_after: str | None
