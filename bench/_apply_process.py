"""What saving costs: `HealthStore.apply` on SQLite, alone on CPU 1, for the fleet of `bench_collect.py`.

    python bench/_apply_process.py '{"devices": 10000, "seconds": 15}'

The collector queues every observation and applies them every `flush_s` (0.5 s) in one transaction, so a
batch holds half a second of the fleet's polls: devices / 60 / 2. A fresh SQLite database (WAL, the
service's pragmas) gets the province and the fleet's devices; two full passes bring every device to
`up` (unknown -> up takes two successes, so they write the first rows and the transitions); the third
pass is the steady state that is measured: realistic readings (mapped from the simulator's own
payloads by the profiles), no state change, process CPU from getrusage (SQLite runs in-process).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import HTTP_PROFILES, INTERVAL_S, SNMP_PROFILE, own_cpu_seconds, say, sim_devices, split

from monitor.collectors import load_profiles, observation_from_json, observation_from_snmp
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.models import Device
from monitor.inventory.units import init_province, load_units
from monitor.simulator import formats
from monitor.simulator.fleet import Fleet

FLUSH_S = 0.5
SETUP_BATCH = 5000


def seed_devices(engine: sa.Engine, devices: int) -> None:
    """The province's units and the fleet's devices, ids 1..N as the other processes number them."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        commune = session.execute(sa.text("SELECT code FROM communes ORDER BY code LIMIT 1")).scalar_one()
    http, _ = split(devices)
    now = datetime.now(UTC)
    rows = [
        {"id": n + 1, "code": d.code, "name": d.code, "kind": d.kind, "commune_code": commune, "vendor": "",
         "model": "", "profile": d.profile, "protocol": d.protocol, "address": d.address, "port": None,
         "credentials": d.credentials, "interval_s": INTERVAL_S, "active": True, "search_text": "",
         "created_at": now, "updated_at": now}
        for n, d in enumerate(sim_devices(devices))
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(Device.__table__), rows)  # type: ignore[attr-defined]
    assert rows[http]["protocol"] == "snmp"


def observation_maker(devices: int) -> Any:
    """A function (device_id, at) -> Observation with the readings a real poll of that device maps to."""
    registry = load_profiles()
    http, _ = split(devices)
    samples = Fleet(sim_devices(4), seed=1)  # one device of each profile
    templates: dict[str, Observation] = {}
    at = datetime.now(UTC)
    for device in samples:
        state = device.snapshot(at.timestamp())
        if device.protocol == "http":
            body = formats.encode(formats.document(device, state, at.timestamp()))
            observation = observation_from_json(
                registry.get(device.profile), body, device_id=0, observed_at=at, source="http", latency_s=0.002
            )
        else:
            values = {
                oid: value.encode() if isinstance(value, str) and tag == formats.OCTET_STRING else value
                for oid, tag, value in formats.snmp_objects(device, state)
            }
            observation = observation_from_snmp(
                registry.get(SNMP_PROFILE), values, device_id=0, observed_at=at, latency_s=0.001
            )
        assert observation.reachable, observation.error
        templates[device.profile] = observation

    def make(device_id: int, when: datetime) -> Observation:
        template = templates[HTTP_PROFILES[(device_id - 1) % 2]] if device_id <= http else templates[SNMP_PROFILE]
        return Observation(
            device_id, when, template.source, True, template.latency_s, template.readings, template.faults
        )

    return make


def measure(devices: int, seconds: float) -> dict[str, Any]:
    """Set up, bring the fleet up, then time steady-state batches for at most `seconds` (or one pass)."""
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as folder:
        settings = load_settings(database_url=f"sqlite:///{Path(folder) / 'bench.db'}", data_dir=Path(folder))
        engine = make_engine(settings)
        upgrade(engine)
        seed_devices(engine, devices)
        store = HealthStore(engine)
        make = observation_maker(devices)
        start = datetime.now(UTC)
        setup_started = time.monotonic()
        transitions = 0
        for round_ in range(2):  # unknown -> up: two successes
            at = start + timedelta(seconds=INTERVAL_S * round_)
            for first in range(1, devices + 1, SETUP_BATCH):
                batch = [make(i, at) for i in range(first, min(first + SETUP_BATCH, devices + 1))]
                transitions += len(store.apply(batch, at))
        setup_s = time.monotonic() - setup_started
        batch_size = max(1, round(devices / INTERVAL_S * FLUSH_S))
        at = start + timedelta(seconds=2 * INTERVAL_S)
        applied = steady_transitions = batches = 0
        cpu = wall = 0.0
        next_id = 1
        while applied < devices and wall < seconds:
            batch = [make((next_id + k - 1) % devices + 1, at) for k in range(batch_size)]
            next_id = batch[-1].device_id + 1
            cpu0, wall0 = own_cpu_seconds(), time.monotonic()  # apply alone: building observations is mapping's
            steady_transitions += len(store.apply(batch, at))
            cpu, wall = cpu + own_cpu_seconds() - cpu0, wall + time.monotonic() - wall0
            applied += len(batch)
            batches += 1
        engine.dispose()
    return {
        "batch_size": batch_size,
        "batches": batches,
        "observations": applied,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_per_1000_s": 1000 * cpu / max(applied, 1),
        "setup_s": setup_s,
        "setup_transitions": transitions,
        "steady_transitions": steady_transitions,
    }


def main() -> None:
    """Run with the JSON spec of argv[1] and print the RESULT."""
    spec = json.loads(sys.argv[1])
    say("RESULT", measure(int(spec["devices"]), float(spec["seconds"])))


if __name__ == "__main__":
    main()
