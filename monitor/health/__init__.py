"""Device health: the pure state machine that turns observations into states and transitions.

Nothing here does I/O: no database, no network, no clock. Callers pass the time in, persist
`DeviceHealth` (as `to_dict()`, one column) and write each `Transition` as a state-change row.

    states.py    DeviceState, FaultCode (with default priorities), Priority
    machine.py   Observation, HealthPolicy, DeviceHealth, Transition and the functions
                 observe, tick, set_maintenance, collector_blind
"""

from __future__ import annotations

from monitor.health.machine import (
    DeviceHealth,
    HealthPolicy,
    Observation,
    Transition,
    collector_blind,
    observe,
    set_maintenance,
    tick,
)
from monitor.health.states import DeviceState, FaultCode, fault_label, fault_priority
from monitor.priority import Priority

__all__ = [
    "DeviceHealth",
    "DeviceState",
    "FaultCode",
    "HealthPolicy",
    "Observation",
    "Priority",
    "Transition",
    "collector_blind",
    "fault_label",
    "fault_priority",
    "observe",
    "set_maintenance",
    "tick",
]
