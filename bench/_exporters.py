"""The references of `bench_collect.py`: Prometheus' blackbox_exporter and snmp_exporter (Debian packages).

Each exporter runs alone on CPU 1 (like our collector), on a loopback port, with its config written to a
temporary folder; a paced asyncio driver in the parent (on CPU 0, with the simulator) asks it to probe
the simulated devices at the fleet's rate, as Prometheus would scrape them:

    blackbox_exporter  GET /probe?target=http://127.1.x.y:PORT/status&module=http_2xx
    snmp_exporter      GET /snmp?target=127.2.x.y:PORT&module=bench     (sysUpTime.0, sysDescr.0, ifOperStatus.1)

The exporter's CPU comes from /proc/PID/stat (all its threads), over a window after a warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from _common import MEASURED_CPU, cpu_seconds, memory_kib, pin_to

BLACKBOX_BINARY = "prometheus-blackbox-exporter"
SNMP_BINARY = "prometheus-snmp-exporter"

BLACKBOX_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""

# snmp_exporter 0.21's module format (auth inside the module); the same three objects as generic-mib2.
SNMP_CONFIG = """\
bench:
  version: 2
  auth:
    community: public
  timeout: 2s
  retries: 0
  get:
    - 1.3.6.1.2.1.1.3.0
    - 1.3.6.1.2.1.1.1.0
    - 1.3.6.1.2.1.2.2.1.8.1
  metrics:
    - name: sysUpTime
      oid: 1.3.6.1.2.1.1.3
      type: gauge
    - name: sysDescr
      oid: 1.3.6.1.2.1.1.1
      type: DisplayString
    - name: ifOperStatus
      oid: 1.3.6.1.2.1.2.2.1.8
      type: gauge
      indexes:
        - labelname: ifIndex
          type: gauge
"""


@dataclass(frozen=True)
class Reference:
    """One exporter: its binary, config file name and text, and how to ask it for one device."""

    name: str
    binary: str
    config_name: str
    config_text: str
    path: str  # /probe or /snmp
    module: str
    success_marker: bytes  # present in the answer when the device answered

    def installed(self) -> bool:
        return shutil.which(self.binary) is not None

    def url(self, port: int, target: str) -> str:
        return f"http://127.0.0.1:{port}{self.path}?target={quote(target, safe=':/')}&module={self.module}"


BLACKBOX = Reference(
    "blackbox_exporter", BLACKBOX_BINARY, "blackbox.yml", BLACKBOX_CONFIG, "/probe", "http_2xx", b"\nprobe_success 1"
)
SNMP_EXPORTER = Reference("snmp_exporter", SNMP_BINARY, "snmp.yml", SNMP_CONFIG, "/snmp", "bench", b"\nsysUpTime ")


@dataclass
class DriveResult:
    """What the driver saw, and what the exporter cost over the measured window."""

    version: str = ""
    rate_per_s: float = 0.0
    window_s: float = 0.0
    probes: int = 0  # completed within the window, answered or not
    failed: int = 0  # of `probes`: HTTP error, timeout, or the device did not answer
    cpu_s: float = 0.0
    rss_kib: int = 0
    hwm_kib: int = 0
    latency_p99_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _version(binary: str) -> str:
    completed = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    first = (completed.stdout or completed.stderr).splitlines()[:1]
    return first[0].split("(")[0].replace(", version", "").strip() if first else binary


@contextlib.contextmanager
def running_exporter(reference: Reference, folder: Path) -> Any:
    """Start the exporter pinned to CPU 1 on a free loopback port; yield (pid, port); stop it by its pid."""
    config = folder / reference.config_name
    config.write_text(reference.config_text)
    port = free_port()
    log = (folder / f"{reference.name}.log").open("w")
    command = [reference.binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin_to(MEASURED_CPU))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer:
                    answer.read()
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{reference.name} did not start; see {log.name}") from exc
                time.sleep(0.2)
        yield process.pid, port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


async def drive(
    reference: Reference,
    pid: int,
    port: int,
    targets: Sequence[str],
    rate_per_s: float,
    warmup_s: float,
    window_s: float,
) -> DriveResult:
    """Ask the exporter for `rate_per_s` devices a second, evenly paced, for warm-up + window; measure the window."""
    result = DriveResult(rate_per_s=rate_per_s)
    cycle = itertools.cycle(targets)
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    window_start, window_end = started + warmup_s, started + warmup_s + window_s
    connector = aiohttp.TCPConnector(limit=2000)  # keep-alive to the exporter, as Prometheus does
    tasks: set[asyncio.Task[None]] = set()
    marks: dict[str, float] = {}

    async def probe(target: str) -> None:
        sent = loop.time()
        failure = None
        try:
            async with session.get(reference.url(port, target)) as answer:
                body = await answer.read()
                if answer.status != 200:
                    failure = f"HTTP {answer.status}"
                elif reference.success_marker not in body:
                    failure = "device did not answer"
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = type(exc).__name__
        done = loop.time()
        if window_start <= done < window_end:
            result.probes += 1
            latencies.append(done - sent)
            if failure is not None:
                result.failed += 1
                result.failures[failure] = result.failures.get(failure, 0) + 1

    def measure(label: str) -> None:
        marks[f"{label}_cpu"] = cpu_seconds(pid)
        marks[f"{label}_at"] = loop.time()

    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sent = 0
        while (now := loop.time()) < window_end:
            if "start_cpu" not in marks and now >= window_start:
                measure("start")
            due = int((now - started) * rate_per_s) - sent
            for _ in range(max(0, due)):
                task = asyncio.create_task(probe(next(cycle)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            sent += max(0, due)
            await asyncio.sleep(0.005)
        measure("end")
        result.rss_kib, result.hwm_kib = memory_kib(pid)
        if tasks:
            await asyncio.wait(tasks, timeout=20)
    result.window_s = marks["end_at"] - marks["start_at"]
    result.cpu_s = marks["end_cpu"] - marks["start_cpu"]
    latencies.sort()
    result.latency_p99_s = latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
    return result


async def measure_reference(
    reference: Reference,
    folder: Path,
    targets: Sequence[str],
    rate_per_s: float,
    warmup_s: float,
    window_s: float,
) -> dict[str, Any]:
    """Start, drive and stop one exporter; {"missing": True} when its package is not installed."""
    if not reference.installed():
        return {"missing": True}
    with running_exporter(reference, folder) as (pid, port):
        result = await drive(reference, pid, port, targets, rate_per_s, warmup_s, window_s)
    result.version = _version(reference.binary)
    return result.as_dict()
