"""Alert rules: what each kind of problem is worth, and when a storm becomes one grouped problem.

Defaults come from the fault codes' own priorities; a deployment may override them in a YAML file:

    kinds:
      offline: {priority: P2, ticket: true}
      low_signal: {priority: P4, ticket: false}     # watched and shown, no repair ticket
    group_wait_s: 60          # hold new problems this long so a storm is seen whole
    commune_share: 0.5        # this share of a commune's devices with one problem -> one commune problem
    district_min_devices: 30  # and this many devices (and district_share) of a district -> one district problem
    district_share: 0.2
    alertmanager_stale_after_s: 46800   # a firing Alertmanager alert not repeated for 13 h is over (0: never)

Alertmanager repeats a firing alert every `repeat_interval` (4 h in deploy/alertmanager/) but sends nothing for
a silenced alert, nor anything at all once it is replaced or loses its state: without an expiry, such an
alert's ticket would stay open forever. Keep `alertmanager_stale_after_s` above three repeat intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from monitor.errors import ConfigError
from monitor.health.states import FaultCode, fault_priority
from monitor.priority import Priority

#: Kinds watched without a repair ticket by default: signal strength varies with the weather; and Prometheus'
#: alert for shards of the collectors' pool held by nobody, whose ticket the service opens itself (under the
#: key monitor.alerts.collector_watch watches): the alert would be a second ticket for the same outage.
WATCH_ONLY = frozenset({FaultCode.LOW_SIGNAL.value, "fleetcollectorshardsunheld"})


@dataclass(frozen=True, slots=True)
class KindRule:
    """What one kind of problem is worth."""

    priority: Priority
    ticket: bool = True


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The rules of one deployment (see the module docstring)."""

    kinds: Mapping[str, KindRule] = field(default_factory=lambda: MappingProxyType({}))
    group_wait: timedelta = timedelta(seconds=60)
    commune_share: float = 0.5
    commune_min_devices: int = 2
    district_share: float = 0.2
    district_min_devices: int = 30
    reconcile_every: timedelta = timedelta(minutes=5)
    alertmanager_stale_after: timedelta | None = timedelta(hours=13)

    def rule(self, kind: str) -> KindRule:
        """The rule of a kind: configured, else the fault's default priority (offline: P2)."""
        found = self.kinds.get(kind)
        if found is not None:
            return found
        return KindRule(fault_priority(kind), ticket=kind not in WATCH_ONLY)

    @staticmethod
    def more_urgent(priority: Priority) -> Priority:
        """One step more urgent (P1 stays P1): a grouped outage weighs more than one device."""
        order = list(Priority)
        return order[max(0, order.index(priority) - 1)]


def load_rules(path: Path | None) -> AlertRules:
    """The rules of a YAML file (see the module docstring), or the defaults when no file is given."""
    if path is None:
        return AlertRules()
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"alert rules {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"alert rules {path}: expected a mapping")
    known = {
        "kinds",
        "group_wait_s",
        "commune_share",
        "commune_min_devices",
        "district_share",
        "district_min_devices",
        "reconcile_every_s",
        "alertmanager_stale_after_s",
    }
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"alert rules {path}: unknown keys {', '.join(unknown)}")
    kinds: dict[str, KindRule] = {}
    for kind, spec in (document.get("kinds") or {}).items():
        if not isinstance(spec, dict) or set(spec) - {"priority", "ticket"}:
            raise ConfigError(f"alert rules {path}: kinds.{kind} takes priority and ticket")
        try:
            priority = Priority(str(spec.get("priority", fault_priority(kind).value)).upper())
        except ValueError as exc:
            raise ConfigError(f"alert rules {path}: kinds.{kind}.priority must be P1-P4") from exc
        kinds[str(kind)] = KindRule(priority, bool(spec.get("ticket", True)))
    try:
        stale_after_s = float(document.get("alertmanager_stale_after_s", 13 * 3600))
        if stale_after_s < 0:
            raise ValueError("alertmanager_stale_after_s must be 0 (never) or more")
        return AlertRules(
            kinds=MappingProxyType(kinds),
            group_wait=timedelta(seconds=float(document.get("group_wait_s", 60))),
            commune_share=float(document.get("commune_share", 0.5)),
            commune_min_devices=int(document.get("commune_min_devices", 2)),
            district_share=float(document.get("district_share", 0.2)),
            district_min_devices=int(document.get("district_min_devices", 30)),
            reconcile_every=timedelta(seconds=float(document.get("reconcile_every_s", 300))),
            alertmanager_stale_after=timedelta(seconds=stale_after_s) if stale_after_s else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"alert rules {path}: {exc}") from exc
