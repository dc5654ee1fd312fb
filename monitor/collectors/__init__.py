"""Collectors: hear every device and turn what it says into `Observation`s. They report facts, never decide.

    profiles    device profiles (YAML): vendor JSON fields, SNMP OIDs, MQTT payloads -> readings and faults
    mapping     payload + profile -> Observation (pure; garbage becomes a failed observation, never an error)
    heartbeat   a pushed heartbeat body -> Observation (pure; the web endpoint calls it)
    http        HttpPoller: one aiohttp session, timeouts, a body cap, same-host redirects only
    snmp        SnmpPoller: v1/v2c over shared UDP sockets, v3 authPriv over pysnmp; TrapReceiver
    mqtt        MqttListener (aiomqtt, reconnecting) and EmbeddedBroker (amqtt) for the demo
    target      PollTarget: a device as the collectors see it (credentials never in repr)
    stats       OutcomeCounters: outcomes by kind, side events, latency histograms
    errors      FailureKind, CollectError, ProfileError, UnknownProfile

The network modules (http, snmp, mqtt) load their libraries only when first used from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitor.collectors.errors import CollectError, FailureKind, ProfileError, ProfileProblem, UnknownProfile
from monitor.collectors.heartbeat import observation_from_heartbeat
from monitor.collectors.mapping import failed_observation, observation_from_json, observation_from_snmp
from monitor.collectors.profiles import Profile, ProfileRegistry, load_profiles
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget, parse_snmp_credentials

if TYPE_CHECKING:
    from monitor.collectors.http import HttpPoller
    from monitor.collectors.mqtt import EmbeddedBroker, MqttListener
    from monitor.collectors.snmp import SnmpPoller, TrapFault, TrapReceiver, fault_from_trap

_LAZY = {
    "HttpPoller": "monitor.collectors.http",
    "SnmpPoller": "monitor.collectors.snmp",
    "TrapReceiver": "monitor.collectors.snmp",
    "TrapFault": "monitor.collectors.snmp",
    "fault_from_trap": "monitor.collectors.snmp",
    "MqttListener": "monitor.collectors.mqtt",
    "EmbeddedBroker": "monitor.collectors.mqtt",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CollectError",
    "EmbeddedBroker",
    "FailureKind",
    "HttpPoller",
    "MqttListener",
    "OutcomeCounters",
    "PollTarget",
    "Profile",
    "ProfileError",
    "ProfileProblem",
    "ProfileRegistry",
    "SnmpPoller",
    "TrapFault",
    "TrapReceiver",
    "UnknownProfile",
    "failed_observation",
    "fault_from_trap",
    "load_profiles",
    "observation_from_heartbeat",
    "observation_from_json",
    "observation_from_snmp",
    "parse_snmp_credentials",
]
