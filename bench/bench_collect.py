"""Benchmark of collection: simulated fleets polled by the service, and by Prometheus' exporters, in one run.

    .venv/bin/python bench/bench_collect.py [--devices 10000,100000] [--duration 130] [--quick] [--json FILE]

For each fleet size N (half HTTP: VietLoa IP-200 and Sao Bắc SB-55 on 127.1.x.y; half SNMP v2c: Đại Việt
DV-RX8 on 127.2.x.y), the project's `Simulator` serves the fleet from a child process pinned to CPU 0,
and every measured process runs alone on CPU 1, one after the other:

1. mixed     the service's collection path (SlotScheduler, 60 slots, 60 s interval; HttpPoller and
             SnmpPoller with the built-in profiles, answers mapped to Observations) over the whole fleet
             for --duration seconds; then every device at once (poll_all_now), timed on its own.
2. http      the HTTP half only, at the same rate  -> CPU per 1,000 HTTP polls.
3. snmp      the SNMP half only with daiviet-rx-snmp (12 OIDs per GET).
4. snmp 3    the SNMP half only with generic-mib2 (sysDescr, sysUpTime, ifOperStatus: the exporter's three).
5. blackbox_exporter and snmp_exporter (Debian packages), driven at the same per-protocol rate by a paced
             asyncio client on CPU 0; their CPU is read from /proc/PID/stat.
6. HealthStore.apply on SQLite, batches of half a second of polls: the cost the full service adds per
             observation by saving it.

CPU is process CPU time (user + system), never wall time. Steady state starts when every device has
been polled once. Nothing leaves loopback; every child stops by itself when its parent goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import INTERVAL_S, LOAD_CPU, MEASURED_CPU, SNMP_3_OID_PROFILE, cpu_seconds, exporter_targets, pin_to
from _exporters import BLACKBOX, SNMP_EXPORTER, measure_reference
from _report import render, summary_figures
from _summary import write_json

BENCH = Path(__file__).resolve().parent
WARMUP_S = 5.0


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _preexec(cpu: int, pinning: bool) -> Callable[[], None] | None:
    return pin_to(cpu) if pinning else None


class SimulatorProcess:
    """The simulator child: started, asked for its ports, stopped by closing its stdin (or by its pid)."""

    def __init__(self, devices: int, max_seconds: float, pinning: bool, folder: Path) -> None:
        self.stderr = (folder / f"simulator-{devices}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "_sim_process.py"), str(devices), str(max_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            preexec_fn=_preexec(LOAD_CPU, pinning),
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 120)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the simulator did not start (see {self.stderr.name}): {line!r}")
        ports = json.loads(line.split(" ", 1)[1])
        self.http_port: int = ports["http_port"]
        self.snmp_port: int = ports["snmp_port"]
        self.pid = self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(10)
        self.stderr.close()


def run_child(script: str, spec: dict[str, Any], timeout_s: float, pinning: bool, folder: Path) -> dict[str, Any]:
    """Run a measured child on CPU 1 and return its RESULT (RuntimeError with its log when it fails)."""
    log_path = folder / f"{Path(script).stem}-{int(time.time() * 1000)}.log"
    with log_path.open("w") as stderr:
        completed = subprocess.run(
            [sys.executable, str(BENCH / script), json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=timeout_s,
            preexec_fn=_preexec(MEASURED_CPU, pinning),
            check=False,
        )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
            return result
    raise RuntimeError(f"{script} failed (exit {completed.returncode}): {log_path.read_text()[-2000:]}")


def run_fleet(devices: int, args: argparse.Namespace, pinning: bool, folder: Path) -> dict[str, Any]:
    """Every phase for one fleet size, sharing one simulator."""
    phase_s = args.phase_seconds
    budget = args.duration + 3 * (phase_s + 60) + 2 * (phase_s + 30) + 300
    log(f"{devices:,} devices: starting the simulator (CPU {LOAD_CPU})")
    simulator = SimulatorProcess(devices, budget, pinning, folder)
    results: dict[str, Any] = {"devices": devices}
    try:
        base = {"devices": devices, "http_port": simulator.http_port, "snmp_port": simulator.snmp_port}
        phases: list[tuple[str, dict[str, Any], float]] = [
            ("mixed", {"protocols": "mixed", "duration_s": args.duration, "burst": True}, args.duration + 600),
            ("http", {"protocols": "http", "duration_s": phase_s + WARMUP_S}, phase_s + 120),
            ("snmp", {"protocols": "snmp", "duration_s": phase_s + WARMUP_S}, phase_s + 120),
            (
                "snmp3",
                {"protocols": "snmp", "duration_s": phase_s + WARMUP_S, "snmp_profile": SNMP_3_OID_PROFILE},
                phase_s + 120,
            ),
        ]
        for name, spec, timeout_s in phases:
            log(f"{devices:,} devices: {name} phase ({spec['duration_s']:.0f} s on CPU {MEASURED_CPU})")
            sim_cpu, started = simulator.cpu(), time.monotonic()
            results[name] = run_child("_collect_process.py", {**base, **spec}, timeout_s, pinning, folder)
            results[name]["simulator_share"] = (simulator.cpu() - sim_cpu) / (time.monotonic() - started)
        urls, agents = exporter_targets(devices, simulator.http_port, simulator.snmp_port)
        for key, reference, targets in (("blackbox", BLACKBOX, urls), ("snmp_exporter", SNMP_EXPORTER, agents)):
            log(f"{devices:,} devices: {reference.name} ({WARMUP_S + phase_s:.0f} s on CPU {MEASURED_CPU})")
            rate = len(targets) / INTERVAL_S
            try:
                results[key] = asyncio.run(measure_reference(reference, folder, targets, rate, WARMUP_S, phase_s))
            except RuntimeError as exc:
                results[key] = {"error": str(exc)}
    finally:
        simulator.stop()
    log(f"{devices:,} devices: HealthStore.apply on SQLite")
    results["apply"] = run_child(
        "_apply_process.py", {"devices": devices, "seconds": phase_s / 2}, 900, pinning, folder
    )
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="10000,100000", help="fleet sizes, comma-separated")
    parser.add_argument(
        "--duration", type=float, default=130.0, help="seconds of the scheduled mixed run (>= 2 intervals: 120)"
    )
    parser.add_argument("--phase-seconds", type=float, default=30.0, help="measured window of the other phases")
    parser.add_argument("--quick", action="store_true", help="a smoke check: 2,000 devices, 40 s, 10 s phases")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.duration, args.phase_seconds = "2000", 40.0, 10.0
    args.sizes = [int(n.replace("_", "")) for n in args.devices.split(",") if n.strip()]
    if args.duration < 10 or args.phase_seconds < 5:
        parser.error("--duration must be at least 10 s and --phase-seconds at least 5 s")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every phase for every fleet size and print the table."""
    args = parse_args(argv)
    pinning = {LOAD_CPU, MEASURED_CPU} <= os.sched_getaffinity(0)
    if pinning:
        os.sched_setaffinity(0, {LOAD_CPU})  # this process drives the exporters: load side
    else:
        log("fewer than 2 CPUs available: nothing is pinned, figures will be disturbed")
    started = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as folder:
        for devices in args.sizes:
            runs.append(run_fleet(devices, args, pinning, Path(folder)))
    context = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pinned": pinning,
        "duration_s": args.duration,
        "phase_s": args.phase_seconds,
        "elapsed_s": time.monotonic() - started,
    }
    if args.json:
        conditions = (
            f"{', '.join(f'{n:,}' for n in args.sizes)} devices, scheduled run {args.duration:.0f} s, "
            f"other phases {args.phase_seconds:.0f} s"
        )
        details = {"context": context, "runs": runs}
        write_json(args.json, "bench_collect.py", conditions, summary_figures(runs), details)
    print(render(runs, context))


if __name__ == "__main__":
    main()
