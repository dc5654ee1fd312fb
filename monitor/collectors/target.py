"""What a collector needs to know about one device, detached from the database, and its SNMP credentials.

A `PollTarget` is a frozen copy of the inventory row's collection fields, so pollers never touch a
database session. Its credentials never appear in `repr()` (logs, tracebacks, test output). They come opened
from the inventory's sealed column (monitor/sealing.py); credentials the collector's keys cannot open stay
`Unopened`, and polling the device is then the collector's failure (`unreadable_credentials`), not the device's.

Credentials strings (the inventory's write-only `credentials` column):

    public                              SNMP v2c community
    v1:COMMUNITY                        SNMP v1 community (old agents)
    v3:USER:AUTHPASS:PRIVPASS           SNMP v3 authPriv, HMAC-SHA-96 and AES-128 (CFB)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from monitor.collectors.errors import CollectError, FailureKind
from monitor.sealing import Unopened

if TYPE_CHECKING:
    from monitor.inventory.models import Device

DEFAULT_COMMUNITY = "public"
# RFC 3414 requires passphrases of at least 8 characters for key localisation.
MIN_V3_PASSPHRASE = 8


@dataclass(frozen=True, slots=True)
class PollTarget:
    """One device as the collectors see it: where to reach it, how, and with which profile."""

    device_id: int
    code: str
    protocol: str
    address: str
    port: int | None
    profile: str
    credentials: str | None = field(default=None, repr=False)
    interval_s: int = 60

    @classmethod
    def from_device(cls, device: Device) -> PollTarget:
        """The target of an inventory device; the device must have been saved (it needs its id)."""
        if device.id is None:
            raise ValueError(f"device {device.code!r} has no id yet: save it before collecting from it")
        return cls(
            device_id=device.id,
            code=device.code,
            protocol=str(device.protocol),
            address=device.address,
            port=device.port,
            profile=device.profile,
            credentials=device.credentials,
            interval_s=device.interval_s,
        )


@dataclass(frozen=True, slots=True)
class SnmpCommunity:
    """SNMP v1 or v2c access: a community string (sent in clear; agents stay silent when it is wrong)."""

    community: str = field(repr=False)
    version: int = 1  # the wire value: 0 is v1, 1 is v2c


@dataclass(frozen=True, slots=True)
class SnmpV3User:
    """SNMP v3 authPriv access with SHA authentication and AES-128 privacy."""

    user: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)


SnmpCredentials = SnmpCommunity | SnmpV3User


def unreadable_credentials(target: PollTarget) -> CollectError | None:
    """`CollectError(config)` naming the device when its stored credentials cannot be opened, else None."""
    credentials = target.credentials
    if not isinstance(credentials, Unopened):
        return None
    return CollectError(
        FailureKind.CONFIG,
        f"cannot open the stored credentials of device {target.code} ({credentials.reason}): "
        "the collector's configuration, not the device",
    )


@lru_cache(maxsize=4096)
def parse_snmp_credentials(text: str | None) -> SnmpCredentials:
    """Read a credentials string (see the module docstring); empty means the `public` v2c community.

    Raises `CollectError(auth)` for a malformed v3 string, without echoing the secrets.
    """
    if not text:
        return SnmpCommunity(DEFAULT_COMMUNITY)
    if text.startswith("v1:"):
        return SnmpCommunity(text[3:], version=0)
    if not text.startswith("v3:"):
        return SnmpCommunity(text)
    parts = text.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise CollectError(FailureKind.AUTH, "SNMP v3 credentials must be v3:USER:AUTHPASS:PRIVPASS")
    _, user, auth_key, priv_key = parts
    if len(auth_key) < MIN_V3_PASSPHRASE or len(priv_key) < MIN_V3_PASSPHRASE:
        raise CollectError(
            FailureKind.AUTH, f"SNMP v3 passphrases of user {user!r} must be at least {MIN_V3_PASSPHRASE} characters"
        )
    return SnmpV3User(user, auth_key, priv_key)


__all__ = [
    "PollTarget",
    "SnmpCommunity",
    "SnmpCredentials",
    "SnmpV3User",
    "parse_snmp_credentials",
    "unreadable_credentials",
]
