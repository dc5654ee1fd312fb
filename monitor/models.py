"""Every table of the service, gathered so that migrations see one metadata."""

from sqlmodel import SQLModel

from monitor.auth.models import User, UserSession
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.models import BroadcastSystem, Commune, Device, District

metadata = SQLModel.metadata

__all__ = [
    "BroadcastSystem",
    "Commune",
    "Device",
    "DeviceHealthRow",
    "District",
    "StateChange",
    "User",
    "UserSession",
    "metadata",
]
