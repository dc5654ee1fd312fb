"""A simulated fleet that speaks the real protocols on loopback, with fault scenarios.

Every device of the inventory gets its loopback address (127.1.x.y) and speaks its vendor's format
(docs/vendor-formats.md): HTTP `GET /status`, SNMP v2c and v3, MQTT heartbeats, HTTP heartbeats.
The service talks to it only over the wire; production code never imports this package.

    Simulator              the whole fleet in one event loop (runner.py)
    Fleet, SimDevice       devices, their state and faults (fleet.py)
    FaultKind, Fault       what can go wrong (faults.py)
    Scenario, parse_scenario  faults on a timeline, deterministic by seed (scenarios.py)
    ManualClock            a clock for tests
"""

from monitor.simulator.faults import Fault, FaultKind, GarbageVariant
from monitor.simulator.fleet import DeviceState, Fleet, ManualClock, SimDevice, system_clock
from monitor.simulator.runner import Simulator
from monitor.simulator.scenarios import SCENARIOS, Scenario, parse_duration, parse_scenario

__all__ = [
    "SCENARIOS",
    "DeviceState",
    "Fault",
    "FaultKind",
    "Fleet",
    "GarbageVariant",
    "ManualClock",
    "Scenario",
    "SimDevice",
    "Simulator",
    "parse_duration",
    "parse_scenario",
    "system_clock",
]
