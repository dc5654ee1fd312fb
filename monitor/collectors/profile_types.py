"""Compiled device profiles: plain frozen objects that the mapping walks quickly.

`profile_schema` builds them from YAML (checked with pydantic); `mapping` applies them to payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.collectors.readings import ReadingSpec

PathPart = tuple[str, int | None]  # a JSON object key, and the list index it also stands for (digits only)
RuleOp = Literal["equals", "in", "above", "below"]


def value_key(value: Any) -> str | None:
    """A value as a string key for maps and equals/in rules, so YAML's `1` matches SNMP's 1 and JSON's "1".

    Booleans are `true`/`false`, integral floats drop their `.0`, bytes are decoded; lists, objects
    and null have no key (they match nothing).
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if kind is bytes:
        return value.decode("utf-8", "replace")  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True, slots=True)
class ReadingMap:
    """One reading of a compiled profile and where it comes from."""

    reading: str
    spec: ReadingSpec
    source: str  # the field path or the OID, as people read it
    path: tuple[PathPart, ...]  # the JSON path (empty for SNMP)
    type: str | None
    value_map: Mapping[str | None, Any] | None  # keys made by `value_key` (None, "no key", is never one)
    scale: float | None
    age_from_epoch: bool
    required: bool


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault rule: `op` compares a reading (by name), or a raw field / OID (`source`), with `operand`."""

    fault: str
    reading: str | None
    source: str | None
    path: tuple[PathPart, ...]
    op: RuleOp
    operand: Any  # equals: a value key; in: a frozenset of value keys; above/below: a float

    def describe(self) -> str:
        """The rule as people wrote it: `temperature_c above 70.0`."""
        operand = sorted(self.operand) if self.op == "in" else self.operand
        return f"{self.reading or self.source} {self.op} {operand!r}"


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded device profile (see `profiles`); `file` and `line` say where it was defined."""

    name: str
    vendor: str
    model: str
    description: str
    protocols: frozenset[str]
    format: Literal["fields", "observation"]
    http_path: str
    readings: tuple[ReadingMap, ...]
    faults: tuple[FaultRule, ...]
    file: str
    line: int
    oids: tuple[str, ...] = ()

    def applies_to(self, protocol: str) -> bool:
        """Whether devices speaking `protocol` may use this profile."""
        return protocol in self.protocols

    def snmp_oids(self) -> tuple[str, ...]:
        """The OIDs to GET (readings first, then those only rules use), without duplicates or leading dots."""
        return self.oids


__all__ = ["FaultRule", "PathPart", "Profile", "ReadingMap", "RuleOp", "value_key"]
