"""What can go wrong with a simulated device: fault kinds, garbage variants, and which kinds fit which device.

The simulator never decides what a fault *means* for the service (that is the profiles' job): it only
changes what a device says over the wire. `FaultKind` values are the fault codes of the contract
(docs/vendor-formats.md) plus the simulator's own conditions (`offline`, `slow`, `garbage`, `reboot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """A condition that can be injected into a simulated device."""

    OFFLINE = "offline"  # no answer at all: connect timeout, no SNMP reply, silent pushes
    SLOW = "slow"  # answers, but only after a delay beyond the collector's timeout
    GARBAGE = "garbage"  # answers with something malformed (see GarbageVariant)
    REBOOT = "reboot"  # one-shot: uptime restarts from 0 (after `for_s` seconds of silence, if given)
    POWER_LOSS = "power_loss"  # mains lost: on battery, draining, dead at 0 %
    AMPLIFIER_FAULT = "amplifier_fault"
    SPEAKER_LINE_FAULT = "speaker_line_fault"
    SCREEN_OFF = "screen_off"
    CONTENT_STALE = "content_stale"
    OVERHEAT = "overheat"
    DOOR_OPEN = "door_open"
    STORAGE_FULL = "storage_full"
    LOW_SIGNAL = "low_signal"
    LINK_DOWN = "link_down"  # a station controller's uplink interface: ifOperStatus.1 = down


class GarbageVariant(StrEnum):
    """How a device under the `garbage` fault mangles what it says."""

    MALFORMED_JSON = "malformed_json"  # JSON cut in the middle
    WRONG_TYPES = "wrong_types"  # strings where numbers are (JSON), OCTET STRING where INTEGER is (SNMP)
    HUGE_BODY = "huge_body"  # a 10 MB HTTP body
    NOT_JSON = "not_json"  # a line of firmware text instead of JSON
    TRUNCATED = "truncated"  # an SNMP reply cut in the middle
    RANDOM_BYTES = "random_bytes"  # random bytes in place of an SNMP reply


#: Garbage each protocol can produce, in the order cycled through when no variant is asked for.
GARBAGE_BY_PROTOCOL: dict[str, tuple[GarbageVariant, ...]] = {
    "http": (
        GarbageVariant.MALFORMED_JSON,
        GarbageVariant.WRONG_TYPES,
        GarbageVariant.NOT_JSON,
        GarbageVariant.HUGE_BODY,
    ),
    "snmp": (GarbageVariant.TRUNCATED, GarbageVariant.RANDOM_BYTES, GarbageVariant.WRONG_TYPES),
    "mqtt": (GarbageVariant.NOT_JSON, GarbageVariant.MALFORMED_JSON, GarbageVariant.WRONG_TYPES),
    "heartbeat": (GarbageVariant.NOT_JSON, GarbageVariant.MALFORMED_JSON, GarbageVariant.WRONG_TYPES),
}

#: Faults that happen to each kind of device by themselves (the random-faults scenario draws from these).
NATURAL_FAULTS_BY_KIND: dict[str, tuple[FaultKind, ...]] = {
    "radio_cluster": (
        FaultKind.AMPLIFIER_FAULT,
        FaultKind.SPEAKER_LINE_FAULT,
        FaultKind.POWER_LOSS,
        FaultKind.OVERHEAT,
        FaultKind.DOOR_OPEN,
        FaultKind.LOW_SIGNAL,
        FaultKind.OFFLINE,
        FaultKind.REBOOT,
    ),
    "bulletin_board": (
        FaultKind.SCREEN_OFF,
        FaultKind.CONTENT_STALE,
        FaultKind.POWER_LOSS,
        FaultKind.OVERHEAT,
        FaultKind.STORAGE_FULL,
        FaultKind.OFFLINE,
        FaultKind.REBOOT,
    ),
    "station_controller": (FaultKind.LINK_DOWN, FaultKind.POWER_LOSS, FaultKind.OFFLINE, FaultKind.REBOOT),
    "gateway": (FaultKind.LINK_DOWN, FaultKind.POWER_LOSS, FaultKind.OFFLINE, FaultKind.REBOOT),
}

_ANY_DEVICE = frozenset({FaultKind.OFFLINE, FaultKind.SLOW, FaultKind.GARBAGE, FaultKind.REBOOT})
_CLUSTER = frozenset(
    {
        FaultKind.POWER_LOSS,
        FaultKind.AMPLIFIER_FAULT,
        FaultKind.SPEAKER_LINE_FAULT,
        FaultKind.OVERHEAT,
        FaultKind.DOOR_OPEN,
        FaultKind.LOW_SIGNAL,
    }
)
_BOARD = frozenset(
    {FaultKind.POWER_LOSS, FaultKind.SCREEN_OFF, FaultKind.CONTENT_STALE, FaultKind.OVERHEAT, FaultKind.STORAGE_FULL}
)

#: Faults each profile's format can express (an unknown profile accepts every kind).
FAULTS_BY_PROFILE: dict[str, frozenset[FaultKind]] = {
    "vietloa-ip200-http": _ANY_DEVICE | _CLUSTER,
    "vietloa-ip200-mqtt": _ANY_DEVICE | _CLUSTER,
    "tts-heartbeat": _ANY_DEVICE | _CLUSTER,
    "daiviet-rx-snmp": _ANY_DEVICE | _CLUSTER | {FaultKind.LINK_DOWN},
    "saobac-board-http": _ANY_DEVICE | _BOARD,
    "saobac-board-heartbeat": _ANY_DEVICE | _BOARD,
    # A station controller shows power only by dying when its UPS runs out.
    "generic-mib2": _ANY_DEVICE | {FaultKind.LINK_DOWN, FaultKind.POWER_LOSS},
}

SPEAKER_LINE_VARIANTS = ("open", "short")
OFFLINE_VARIANTS = ("timeout", "refused")


@dataclass(slots=True)
class Fault:
    """One active fault of a device: since when, until when (None: until cleared), and its details."""

    kind: FaultKind
    since: float
    until: float | None = None
    variant: str | None = None  # garbage variant, speaker line "open"/"short", offline "timeout"/"refused"
    delay_s: float | None = None  # for `slow`
    source: str = "inject"  # "inject" or the scenario that raised it

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view, for the control API."""
        return {
            "kind": self.kind.value,
            "since": self.since,
            "until": self.until,
            "variant": self.variant,
            "delay_s": self.delay_s,
            "source": self.source,
        }


def applicable_faults(profile: str) -> frozenset[FaultKind]:
    """The fault kinds a device of `profile` can show."""
    return FAULTS_BY_PROFILE.get(profile, frozenset(FaultKind))


def parse_fault_kind(value: str) -> FaultKind:
    """The fault kind named `value`, or a ValueError listing the known ones."""
    try:
        return FaultKind(value.strip().lower().replace("-", "_"))
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise ValueError(f"unknown fault kind {value!r}; known: {known}") from None
