"""Device payloads to observations, through a profile. Pure: no I/O, and never raises on device input.

Decision: a device that answered garbage is *not* reachable. Its observation has
`reachable=False` and `error="bad_payload: <precise reason>"` (or `bad_json: ...` when the bytes
are not JSON at all), because a device whose answer cannot be read cannot be judged healthy: its
faults are unknown. The health machine then counts it as a failure like a timeout, and the reason
names the field and what was wrong with it. Garbage includes: not JSON, NaN or Infinity, a JSON
document of the wrong shape (a list, a string where an object belongs), a string where a number
belongs, a number out of its reading's range (a battery at 250 %, 1e300 °C), a value a map does
not know (`power.source: "XYZ"`).

A field that is simply absent (or JSON null, or an SNMP noSuchObject) is absent from the
readings, unless the profile marks the reading `required`. Rules on an absent value do not fire.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn

from monitor.collectors.errors import FailureKind, UnreadableData
from monitor.collectors.profile_types import FaultRule, PathPart, Profile, ReadingMap, value_key
from monitor.collectors.readings import READINGS, BadValue, check_value, describe
from monitor.health.machine import Observation

MISSING: Any = object()
MAX_FAULTS = 32
# Unix seconds accepted by `age_from_epoch`: 1970 to about 2514.
MAX_EPOCH_S = 2**34
_FAULT_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class BadPayload(UnreadableData):
    """A device answer that cannot be read; the message says exactly why."""


def failed_observation(
    device_id: int,
    observed_at: datetime,
    source: str,
    kind: FailureKind | str,
    detail: str,
    *,
    latency_s: float | None = None,
) -> Observation:
    """A failed observation: not reachable, `error` is `"{kind}: {detail}"`."""
    kind_text = kind.value if isinstance(kind, FailureKind) else kind
    return Observation(device_id, observed_at, source, False, latency_s, {}, frozenset(), f"{kind_text}: {detail}")


def parse_json(payload: bytes | bytearray | memoryview | str) -> Any:
    """JSON text to Python objects; `BadPayload` (with why) when it is not strict JSON.

    NaN and Infinity are refused (they are not JSON); so are numbers too long to parse and
    documents nested too deep.
    """
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    try:
        return json.loads(payload, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise BadPayload(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadPayload(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadPayload("nested too deep") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise BadPayload(str(exc).split(";")[0]) from None


def _refuse_constant(name: str) -> NoReturn:
    raise BadPayload(f"{name} is not valid JSON")


def observation_from_json(
    profile: Profile,
    payload: bytes | bytearray | memoryview | str | Any,
    *,
    device_id: int,
    observed_at: datetime,
    source: str,
    latency_s: float | None = None,
) -> Observation:
    """An observation from a JSON payload (bytes or text to parse, or an already parsed document)."""
    if "snmp" in profile.protocols:
        detail = f"profile {profile.name!r} maps SNMP objects, not JSON"
        return failed_observation(device_id, observed_at, source, FailureKind.BAD_PAYLOAD, detail, latency_s=latency_s)
    if isinstance(payload, bytes | bytearray | memoryview | str):
        try:
            payload = parse_json(payload)
        except BadPayload as exc:
            detail = f"not JSON: {exc}"
            return failed_observation(device_id, observed_at, source, FailureKind.BAD_JSON, detail, latency_s=latency_s)
    try:
        if profile.format == "observation":
            readings, faults = _from_contract(payload)
        else:
            if type(payload) is not dict:
                raise BadPayload(f"expected a JSON object, got {describe(payload)}")
            readings = _readings(profile, lambda r: _json_get(payload, r.path, r.source), observed_at)
            faults = set()
        _apply_rules(profile.faults, readings, lambda rule: _json_get(payload, rule.path, rule.source or ""), faults)
    except BadPayload as exc:
        return failed_observation(
            device_id, observed_at, source, FailureKind.BAD_PAYLOAD, str(exc), latency_s=latency_s
        )
    return Observation(device_id, observed_at, source, True, latency_s, readings, frozenset(faults))


def observation_from_snmp(
    profile: Profile,
    values: Mapping[str, Any],
    *,
    device_id: int,
    observed_at: datetime,
    source: str = "snmp",
    latency_s: float | None = None,
) -> Observation:
    """An observation from SNMP values by OID (no leading dot); None (noSuchObject...) means absent.

    Values are Python ints, bytes (OCTET STRING), str or None, as the SNMP clients give them.
    """
    try:
        readings = _readings(profile, lambda r: values.get(r.source, MISSING), observed_at)
        faults: set[str] = set()
        _apply_rules(profile.faults, readings, lambda rule: values.get(rule.source or "", MISSING), faults)
    except BadPayload as exc:
        return failed_observation(
            device_id, observed_at, source, FailureKind.BAD_PAYLOAD, str(exc), latency_s=latency_s
        )
    return Observation(device_id, observed_at, source, True, latency_s, readings, frozenset(faults))


# --- the work ---------------------------------------------------------------------------------------


def _json_get(document: Any, path: tuple[PathPart, ...], source: str) -> Any:
    current = document
    for depth, (key, index) in enumerate(path):
        kind = type(current)
        if kind is dict:
            current = current.get(key, MISSING)
        elif kind is list and index is not None:
            current = current[index] if index < len(current) else MISSING
        else:
            parent = ".".join(k for k, _ in path[:depth])
            raise BadPayload(f"field {source}: {parent} is {describe(current)}, not an object")
        if current is MISSING or current is None:
            return MISSING
    return current


def _readings(profile: Profile, raw_of: Callable[[ReadingMap], Any], observed_at: datetime) -> dict[str, Any]:
    readings: dict[str, Any] = {}
    for mapping in profile.readings:
        raw = raw_of(mapping)
        if raw is MISSING or raw is None:
            if mapping.required:
                raise BadPayload(f"{mapping.source}: required for {mapping.reading}, but absent")
            continue
        readings[mapping.reading] = _convert(mapping, raw, observed_at)
    return readings


def _convert(mapping: ReadingMap, raw: Any, observed_at: datetime) -> Any:
    if mapping.value_map is not None:
        value = mapping.value_map.get(value_key(raw), MISSING)
        if value is MISSING:
            known = ", ".join(str(key) for key in mapping.value_map)
            raise BadPayload(
                f"{mapping.source}: unexpected {describe(raw)} for {mapping.reading}, expected one of {known}"
            )
        return value
    value = raw.decode("utf-8", "replace") if type(raw) is bytes else raw
    try:
        if mapping.type is not None:
            value = _as_type(mapping.type, value)
        if mapping.scale is not None:
            value = _number(value) * mapping.scale
        if mapping.age_from_epoch:
            epoch = _number(value)
            if not 0 <= epoch < MAX_EPOCH_S:
                raise BadValue(f"{epoch!r} is not a Unix time in seconds")
            # A clock ahead of ours is not news from the future: the content is as fresh as it gets.
            value = max(0.0, observed_at.timestamp() - epoch)
        return check_value(mapping.spec, value)
    except BadValue as exc:
        raise BadPayload(f"{mapping.source} ({mapping.reading}): {exc}") from None


def _number(value: Any) -> float | int:
    if type(value) is bool or not isinstance(value, int | float):
        raise BadValue(f"expected a number, got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"expected a finite number, got {value!r}")
    return value


def _as_type(kind: str, value: Any) -> Any:
    if kind == "str":
        if isinstance(value, str):
            return value
        if type(value) is not bool and isinstance(value, int | float):
            return str(value)
        raise BadValue(f"expected a string, got {describe(value)}")
    number = _number(value)
    try:
        return int(number) if kind == "int" else float(number)
    except OverflowError:
        raise BadValue(f"number {describe(value)} is too large") from None


def _apply_rules(
    rules: tuple[FaultRule, ...], readings: Mapping[str, Any], raw_of: Callable[[FaultRule], Any], faults: set[str]
) -> None:
    for rule in rules:
        value = readings.get(rule.reading, MISSING) if rule.reading is not None else raw_of(rule)
        if value is MISSING or value is None:
            continue
        op = rule.op
        if op == "equals":
            matched = value_key(value) == rule.operand
        elif op == "in":
            matched = value_key(value) in rule.operand
        else:
            try:
                number = _number(value)
            except BadValue as exc:
                raise BadPayload(
                    f"{rule.source or rule.reading}: rule {rule.describe()} needs a number: {exc}"
                ) from None
            matched = number > rule.operand if op == "above" else number < rule.operand
        if matched:
            faults.add(rule.fault)


def _from_contract(document: Any) -> tuple[dict[str, Any], set[str]]:
    """The service's own contract: `{"readings": {name: value}, "faults": [code, ...]}`, both optional."""
    if type(document) is not dict:
        raise BadPayload(f'expected a JSON object {{"readings": ..., "faults": ...}}, got {describe(document)}')
    unknown = sorted(set(document) - {"readings", "faults"})
    if unknown:
        raise BadPayload(f"unknown key {unknown[0]!r}: the contract has readings and faults")
    raw_readings = document.get("readings")
    raw_readings = {} if raw_readings is None else raw_readings
    if type(raw_readings) is not dict:
        raise BadPayload(f"readings: expected an object, got {describe(raw_readings)}")
    readings: dict[str, Any] = {}
    for name, raw in raw_readings.items():
        spec = READINGS.get(name)
        if spec is None:
            raise BadPayload(f"readings.{name[:60]}: unknown reading; known readings: {', '.join(READINGS)}")
        if raw is None:
            continue
        try:
            readings[name] = check_value(spec, raw)
        except BadValue as exc:
            raise BadPayload(f"readings.{name}: {exc}") from None
    raw_faults = document.get("faults")
    raw_faults = [] if raw_faults is None else raw_faults
    if type(raw_faults) is not list:
        raise BadPayload(f"faults: expected a list of fault codes, got {describe(raw_faults)}")
    if len(raw_faults) > MAX_FAULTS:
        raise BadPayload(f"faults: {len(raw_faults)} codes, at most {MAX_FAULTS}")
    faults: set[str] = set()
    for position, code in enumerate(raw_faults):
        if not isinstance(code, str) or not _FAULT_CODE.match(code):
            raise BadPayload(f"faults[{position}]: expected a fault code like amplifier_fault, got {describe(code)}")
        faults.add(code)
    return readings, faults


__all__ = ["BadPayload", "failed_observation", "observation_from_json", "observation_from_snmp", "parse_json"]
