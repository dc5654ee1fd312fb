"""The readings an observation may carry: their names, kinds and sane ranges.

Profiles may only map to these names, and every value is checked against its reading before it
enters an observation: a battery at 250 %, a temperature of 1e300 or a string where a number
belongs means the device answered garbage (see `mapping`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from monitor.collectors.errors import UnreadableData

ReadingKind = Literal["int", "number", "text", "choice"]


@dataclass(frozen=True, slots=True)
class ReadingSpec:
    """One reading: `int` and `number` readings have a range, `choice` readings a closed set of
    values, `text` readings a maximum length."""

    name: str
    kind: ReadingKind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 200

    @property
    def numeric(self) -> bool:
        """Whether values are numbers (int or number readings)."""
        return self.kind in ("int", "number")


_SPECS = (
    ReadingSpec("uptime_s", "int", "seconds since the device booted (drops on a reboot)", 0, 10**10),
    ReadingSpec("power", "choice", "power source", choices=("mains", "battery")),
    ReadingSpec("battery_pct", "number", "battery charge, %", 0, 100),
    ReadingSpec("signal_dbm", "number", "radio signal strength, dBm", -200, 50),
    ReadingSpec("temperature_c", "number", "temperature inside the device, °C", -60, 200),
    ReadingSpec("volume_pct", "number", "output volume, %", 0, 100),
    ReadingSpec("content_age_s", "int", "seconds since the content was last updated", 0, 10**10),
    ReadingSpec("firmware", "text", "firmware version", max_length=100),
    ReadingSpec(
        "if_oper_status",
        "choice",
        "operational status of the uplink interface (IF-MIB ifOperStatus)",
        choices=("up", "down", "testing", "unknown", "dormant", "notPresent", "lowerLayerDown"),
    ),
    ReadingSpec("storage_used_pct", "number", "storage used, %", 0, 100),
    ReadingSpec("display", "choice", "screen state", choices=("on", "off")),
    ReadingSpec("brightness_pct", "number", "screen brightness, %", 0, 100),
    ReadingSpec("door", "choice", "cabinet door", choices=("closed", "open")),
    ReadingSpec("amplifier", "choice", "amplifier state", choices=("ok", "fault")),
    ReadingSpec("speaker_line", "choice", "speaker line state", choices=("ok", "open", "short")),
    ReadingSpec("network", "text", "uplink kind as the device names it (4G, ETH...)", max_length=32),
    ReadingSpec("description", "text", "the device's own description (sysDescr)", max_length=255),
    ReadingSpec("serial", "text", "serial number", max_length=64),
    ReadingSpec("playlist", "text", "content playlist being shown or played", max_length=100),
)

READINGS: dict[str, ReadingSpec] = {spec.name: spec for spec in _SPECS}


class BadValue(UnreadableData):
    """A value that does not fit its reading; the message says why, for a `bad_payload` error."""


def describe(value: Any) -> str:
    """A short description of a device value for error messages (type and a cut-off repr)."""
    kind = {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        bytes: "bytes",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)
    if value is None:
        return "null"
    text = repr(value)
    return f"{kind} {text[:60]}{'…' if len(text) > 60 else ''}"


def check_value(spec: ReadingSpec, value: Any) -> Any:
    """`value` as the reading holds it (ints for `int` readings), or `BadValue` saying why it does not fit."""
    kind = spec.kind
    if kind == "int" or kind == "number":
        if type(value) is bool or not isinstance(value, int | float):
            raise BadValue(f"expected a number, got {describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue(f"expected a finite number, got {value!r}")
        if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
            raise BadValue(f"{_short(value)} is out of range [{_short(spec.minimum)}, {_short(spec.maximum)}]")
        return int(value) if kind == "int" else value
    if not isinstance(value, str):
        raise BadValue(f"expected a string, got {describe(value)}")
    if kind == "choice":
        if value not in spec.choices:
            raise BadValue(f"unexpected value {value[:60]!r}, expected one of {', '.join(spec.choices)}")
    elif len(value) > spec.max_length:
        raise BadValue(f"text of {len(value)} characters is longer than {spec.max_length}")
    return value


def _short(value: float | None) -> str:
    if value is None:
        return "-inf"
    if isinstance(value, float) and abs(value) >= 1e12:
        return f"{value:.3g}"
    text = repr(value)
    return text if len(text) <= 24 else f"{value:.3g}"


__all__ = ["READINGS", "BadValue", "ReadingKind", "ReadingSpec", "check_value", "describe"]
