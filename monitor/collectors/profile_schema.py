"""The YAML shape of a device profile (pydantic) and the checks that need more than one key.

Pydantic checks shapes and single values; `compile_profile` checks what relates keys to each other
(an SNMP profile maps OIDs, a rule's value can match its reading...) and builds the `Profile`.
Every problem carries the file and the line of the key it is about.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from monitor.collectors.errors import ProfileProblem
from monitor.collectors.profile_types import FaultRule, PathPart, Profile, ReadingMap, value_key
from monitor.collectors.profile_yaml import LineIndex, Path_, where
from monitor.collectors.readings import READINGS, BadValue, check_value

DEFAULT_HTTP_PATH = "/status"
JSON_PROTOCOLS = frozenset({"http", "mqtt", "heartbeat"})
OPERATORS = ("equals", "in", "above", "below")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_FAULT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FIELD = re.compile(r"^[^.\s]+(\.[^.\s]+){0,15}$")
_OID = re.compile(r"^\.?[0-2](\.(0|[1-9][0-9]{0,9})){1,127}$")

Scalar = str | int | float | bool


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"a profile name is lower-case letters, digits, '.', '_' or '-' (at most 100), got {value!r}")
    return value


def _check_reading_name(value: str) -> str:
    if value not in READINGS:
        raise ValueError(f"unknown reading {value!r}; known readings: {', '.join(READINGS)}")
    return value


def _check_fault(value: str) -> str:
    if not _FAULT.match(value):
        raise ValueError(f"a fault code is lower-case letters, digits and '_' (like amplifier_fault), got {value!r}")
    return value


def _check_field(value: str) -> str:
    if not _FIELD.match(value):
        raise ValueError(f"a field is a dotted path like audio.amp (at most 16 parts), got {value!r}")
    return value


def _oid_is_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"an OID is a dotted string like 1.3.6.1.2.1.1.3.0; YAML read {value!r} as a number: quote it")
    return value


def _check_oid(value: str) -> str:
    if not _OID.match(value):
        raise ValueError(f"not a numeric OID like 1.3.6.1.2.1.1.3.0: {value!r}")
    arcs = [int(a) for a in value.lstrip(".").split(".")]
    if (arcs[0] < 2 and arcs[1] >= 40) or any(a >= 2**32 for a in arcs):
        raise ValueError(f"not a valid OID: {value!r} (under 0 and 1 the second arc is below 40; every arc below 2^32)")
    return value.lstrip(".")


def _check_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"an HTTP path starts with '/' and has no spaces, got {value!r}")
    return value


ReadingName = Annotated[str, AfterValidator(_check_reading_name)]
FieldPath = Annotated[str, AfterValidator(_check_field)]
Oid = Annotated[str, BeforeValidator(_oid_is_text), AfterValidator(_check_oid)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReadingModel(_Model):
    """Where one reading comes from."""

    field: FieldPath | None = None
    oid: Oid | None = None
    type: Literal["int", "float", "str"] | None = None
    map: dict[Scalar, Scalar] | None = Field(default=None, min_length=1)
    scale: float | None = None
    age_from_epoch: bool = False
    required: bool = False


class RuleModel(_Model):
    """When a fault is reported: a fault code, what is compared (one of reading, field, oid) and one operator."""

    fault: Annotated[str, AfterValidator(_check_fault)]
    reading: ReadingName | None = None
    field: FieldPath | None = None
    oid: Oid | None = None
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    above: float | None = None
    below: float | None = None


class HttpModel(_Model):
    """HTTP polling settings."""

    path: Annotated[str, AfterValidator(_check_path)] = DEFAULT_HTTP_PATH


class ProfileModel(_Model):
    """One profile file."""

    name: Annotated[str, AfterValidator(_check_name)]
    vendor: str = ""
    model: str = ""
    description: str = ""
    protocols: list[Literal["http", "mqtt", "heartbeat", "snmp"]] = Field(min_length=1)
    format: Literal["fields", "observation"] = "fields"
    http: HttpModel | None = None
    readings: dict[ReadingName, ReadingModel] = Field(default_factory=dict)
    faults: list[RuleModel] = Field(default_factory=list)


_KEYS_HINT = {
    "readings": "a reading takes field or oid, and optionally type, map, scale, age_from_epoch, required",
    "faults": "a rule takes fault; one of reading, field, oid; and one operator of equals, in, above, below",
    "http": "http takes path",
}


def pydantic_problems(exc: ValidationError, lines: LineIndex, file: str) -> list[ProfileProblem]:
    """Pydantic's errors as problems with the line of the key each is about."""
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"] if part != "[key]")
        loc = tuple("in" if part == "in_" else part for part in loc)
        kind, message = error["type"], error["msg"]
        if kind == "extra_forbidden":
            hint = _KEYS_HINT.get(
                loc[0], "a profile takes name, vendor, model, description, protocols, format, http, readings, faults"
            )
            what = "rule operator or key" if loc[0] == "faults" and len(loc) == 3 else "key"
            message = f"unknown {what} {loc[-1]!r} ({hint})"
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
        elif kind.startswith("value_error"):
            message = message.removeprefix("Value error, ")
        elif kind in ("literal_error", "too_short"):
            message = f"{message} (got {error.get('input')!r})"
        else:
            message = f"{message} (got {error.get('input')!r})" if "input" in error else message
        problems.append(ProfileProblem(file, lines.line(loc), where(loc), message))
    return problems


def compile_profile(model: ProfileModel, lines: LineIndex, file: str) -> tuple[Profile | None, list[ProfileProblem]]:
    """Check what pydantic cannot and build the `Profile`; on problems the profile is None."""
    problems: list[ProfileProblem] = []

    def problem(path: Path_, reason: str) -> None:
        problems.append(ProfileProblem(file, lines.line(path), where(path), reason))

    protocols = frozenset(model.protocols)
    snmp = "snmp" in protocols
    if len(protocols) != len(model.protocols):
        problem(("protocols",), "a protocol is listed twice")
    if snmp and len(protocols) > 1:
        problem(("protocols",), "snmp profiles map OIDs and cannot be shared with http, mqtt or heartbeat (JSON)")
    if model.http is not None and "http" not in protocols:
        problem(("http",), "http settings on a profile that does not list http in its protocols")
    if model.format == "observation":
        if snmp:
            problem(("format",), "the observation format is JSON: it cannot apply to snmp")
        if model.readings:
            problem(("readings",), "an observation-format profile takes its readings from the payload: map none")
    elif not model.readings and not model.faults:
        problem(("readings",), "the profile maps no reading and no fault")

    readings = tuple(_compile_reading(name, spec, snmp, problem) for name, spec in model.readings.items())
    mapped = {r.reading for r in readings}
    rules = []
    for position, rule in enumerate(model.faults):
        compiled = _compile_rule(rule, ("faults", str(position)), snmp, model.format == "observation", mapped, problem)
        if compiled is not None:
            rules.append(compiled)
    if problems:
        return None, problems
    oids = tuple(dict.fromkeys([r.source for r in readings] + [f.source for f in rules if f.source])) if snmp else ()
    return (
        Profile(
            name=model.name,
            vendor=model.vendor,
            model=model.model,
            description=model.description,
            protocols=protocols,
            format=model.format,
            http_path=model.http.path if model.http is not None else DEFAULT_HTTP_PATH,
            readings=readings,
            faults=tuple(rules),
            file=file,
            line=lines.line(("name",)) or 1,
            oids=oids,
        ),
        [],
    )


def json_path(field: str) -> tuple[PathPart, ...]:
    """A dotted field as path parts: each key, with the list index it stands for when it is all digits."""
    return tuple((part, int(part) if part.isdigit() else None) for part in field.split("."))


def _source(
    field: str | None, oid: str | None, snmp: bool, path: Path_, problem: Any
) -> tuple[str, tuple[PathPart, ...]] | None:
    if (field is None) == (oid is None):
        problem(path, "give exactly one of field (JSON) or oid (SNMP)")
        return None
    if snmp and oid is None:
        problem((*path, "field"), "an snmp profile reads OIDs: use oid, not field")
        return None
    if not snmp and field is not None:
        return field, json_path(field)
    if not snmp:
        problem((*path, "oid"), "a JSON profile (http, mqtt, heartbeat) reads fields: use field, not oid")
        return None
    assert oid is not None
    return oid, ()


def _compile_reading(name: str, spec: ReadingModel, snmp: bool, problem: Any) -> ReadingMap:
    path: Path_ = ("readings", name)
    reading = READINGS[name]
    source = _source(spec.field, spec.oid, snmp, path, problem) or ("", ())
    value_map = None
    if spec.map is not None:
        if spec.scale is not None or spec.age_from_epoch or spec.type is not None:
            problem(path, "map gives the reading's value: it cannot be combined with type, scale or age_from_epoch")
        value_map = {}
        for raw, value in spec.map.items():
            try:
                value_map[value_key(raw)] = check_value(reading, value)
            except BadValue as exc:
                problem((*path, "map", str(raw)), f"map value for {name}: {exc}")
    if (spec.scale is not None or spec.age_from_epoch) and not reading.numeric:
        problem(path, f"scale and age_from_epoch apply to numbers; {name} is a {reading.kind} reading")
    if spec.type is not None and spec.map is None:
        fits = ("int", "float") if reading.numeric else ("str",)
        if spec.type not in fits:
            problem((*path, "type"), f"{name} is a {reading.kind} reading: type must be {' or '.join(fits)}")
    if spec.scale is not None and spec.scale == 0:
        problem((*path, "scale"), "a scale of 0 would erase every value")
    return ReadingMap(
        reading=name,
        spec=reading,
        source=source[0],
        path=source[1],
        type=spec.type,
        value_map=MappingProxyType(value_map) if value_map is not None else None,
        scale=spec.scale,
        age_from_epoch=spec.age_from_epoch,
        required=spec.required,
    )


def _compile_rule(
    rule: RuleModel, path: Path_, snmp: bool, observation: bool, mapped: set[str], problem: Any
) -> FaultRule | None:
    given = [op for op in OPERATORS if getattr(rule, "in_" if op == "in" else op) is not None]
    ok = True
    if len(given) != 1:
        problem(path, f"give exactly one operator of {', '.join(OPERATORS)} (got {', '.join(given) or 'none'})")
        ok = False
    targets = [key for key in ("reading", "field", "oid") if getattr(rule, key) is not None]
    if len(targets) != 1:
        problem(path, f"give exactly one of reading, field or oid to compare (got {', '.join(targets) or 'none'})")
        return None
    source: tuple[str, tuple[PathPart, ...]] | None = None
    reading = READINGS.get(rule.reading) if rule.reading is not None else None
    if rule.reading is not None:
        if not observation and rule.reading not in mapped:
            problem(
                (*path, "reading"), f"this profile does not map reading {rule.reading!r}, so the rule could never match"
            )
            ok = False
    else:
        source = _source(rule.field, rule.oid, snmp, path, problem)
        ok = ok and source is not None
    if not ok:
        return None
    op = given[0]
    operand: Any
    if op in ("above", "below"):
        operand = rule.above if op == "above" else rule.below
        if reading is not None and not reading.numeric:
            problem((*path, op), f"{op} compares numbers; {reading.name} is a {reading.kind} reading")
            return None
    else:
        values = [rule.equals] if op == "equals" else list(rule.in_ or [])
        if reading is not None:
            for value in values:
                try:
                    check_value(reading, value)
                except BadValue as exc:
                    problem((*path, op), f"can never match reading {reading.name}: {exc}")
                    return None
        keys = [value_key(v) for v in values]
        operand = keys[0] if op == "equals" else frozenset(k for k in keys if k is not None)
    return FaultRule(
        fault=rule.fault,
        reading=rule.reading,
        source=source[0] if source else None,
        path=source[1] if source else (),
        op=op,  # type: ignore[arg-type]
        operand=operand,
    )


__all__ = [
    "DEFAULT_HTTP_PATH",
    "ProfileModel",
    "ReadingModel",
    "RuleModel",
    "compile_profile",
    "json_path",
    "pydantic_problems",
]
