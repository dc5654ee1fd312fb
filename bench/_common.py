"""What the processes of `bench_collect.py` share: the fleet's layout, CPU pinning, /proc readings, messages.

The fleet of N devices is half HTTP, half SNMP v2c, numbered so that every process builds the same one:

    device ids 1 .. N/2         HTTP, http://127.1.x.y:PORT/status, VietLoa IP-200 and Sao Bắc SB-55 alternately
    device ids N/2+1 .. N       SNMP v2c, 127.2.x.y:PORT, Đại Việt DV-RX8 (daiviet-rx-snmp), community public

250 addresses per third octet, so one protocol holds at most 64,000 devices (128,000 in all).
Processes talk by lines on stdout: `READY {json}` when serving, `RESULT {json}` at the end.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.collectors.target import PollTarget  # noqa: E402

if TYPE_CHECKING:  # the measured process must not carry the simulator's imports (SQLModel, MQTT...)
    from monitor.simulator.fleet import SimDevice

#: The simulator, the exporters' driver and this benchmark's own bookkeeping run here.
LOAD_CPU = 0
#: The measured process (our collector, or an exporter) runs here, alone.
MEASURED_CPU = 1
HTTP_PROFILES = ("saobac-board-http", "vietloa-ip200-http")
SNMP_PROFILE = "daiviet-rx-snmp"
#: The profile that GETs exactly sysDescr.0, sysUpTime.0 and ifOperStatus.1, like the snmp_exporter module.
SNMP_3_OID_PROFILE = "generic-mib2"
MAX_PER_PROTOCOL = 64_000
INTERVAL_S = 60
_TICKS = os.sysconf("SC_CLK_TCK")


def _host(octet: int, index: int) -> str:
    return f"127.{octet}.{index // 250}.{index % 250 + 1}"


def split(devices: int) -> tuple[int, int]:
    """(HTTP devices, SNMP devices) of a fleet of `devices`."""
    http = devices // 2
    snmp = devices - http
    if max(http, snmp) > MAX_PER_PROTOCOL:
        raise ValueError(f"at most {2 * MAX_PER_PROTOCOL:,} devices ({MAX_PER_PROTOCOL:,} per protocol)")
    return http, snmp


def sim_devices(devices: int) -> list[SimDevice]:
    """The simulated fleet (ports are the simulator's business: it answers on every 127.x address)."""
    from monitor.simulator.fleet import SimDevice

    http, snmp = split(devices)
    fleet = []
    for i in range(http):
        profile = HTTP_PROFILES[i % 2]
        kind = "bulletin_board" if profile.startswith("saobac") else "radio_cluster"
        fleet.append(SimDevice(f"H{i:06d}", kind, "http", f"http://{_host(1, i)}/status", None, profile))
    for i in range(snmp):
        fleet.append(
            SimDevice(f"S{i:06d}", "radio_cluster", "snmp", _host(2, i), None, SNMP_PROFILE, credentials="public")
        )
    return fleet


def poll_targets(
    devices: int, http_port: int, snmp_port: int, protocols: str = "mixed", snmp_profile: str = SNMP_PROFILE
) -> list[PollTarget]:
    """The collector's targets for the same fleet: `mixed`, or only its `http` or `snmp` half."""
    http, snmp = split(devices)
    targets = []
    if protocols in ("mixed", "http"):
        for i in range(http):
            address = f"http://{_host(1, i)}:{http_port}/status"
            targets.append(PollTarget(i + 1, f"H{i:06d}", "http", address, None, HTTP_PROFILES[i % 2]))
    if protocols in ("mixed", "snmp"):
        for i in range(snmp):
            targets.append(
                PollTarget(http + i + 1, f"S{i:06d}", "snmp", _host(2, i), snmp_port, snmp_profile, "public")
            )
    return targets


def exporter_targets(devices: int, http_port: int, snmp_port: int) -> tuple[list[str], list[str]]:
    """`target=` values for blackbox_exporter (URLs) and snmp_exporter (HOST:PORT) of the same fleet."""
    http, snmp = split(devices)
    urls = [f"http://{_host(1, i)}:{http_port}/status" for i in range(http)]
    agents = [f"{_host(2, i)}:{snmp_port}" for i in range(snmp)]
    return urls, agents


# --- processes ------------------------------------------------------------------------------------


def pin_to(cpu: int) -> Callable[[], None]:
    """A `preexec_fn` that pins a child, and every thread it will start, to one CPU (before exec)."""

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (microsecond resolution)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory_kib(pid: int | str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB: resident memory now, and its peak."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def say(tag: str, payload: dict[str, Any]) -> None:
    """One message to the parent: `TAG {json}` on a line of stdout."""
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def event_loop_runner() -> tuple[str, Callable[[Any], Any]]:
    """('uvloop', uvloop.run) when uvloop is installed, else ('asyncio', asyncio.run)."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return "asyncio", asyncio.run
    return f"uvloop {version('uvloop')}", uvloop.run
