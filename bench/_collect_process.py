"""The measured side of `bench_collect.py`: the service's collection path for one phase, alone on CPU 1.

    python bench/_collect_process.py '{"devices": 10000, "protocols": "mixed", "http_port": ..., ...}'

What runs is what `runner.Collector` runs per poll, minus the database: `SlotScheduler` (the service's
slots and concurrency) starting `HttpPoller.poll` / `SnmpPoller.poll` with the built-in profiles, which
map each answer to an `Observation` and count it in `OutcomeCounters`. The observations are counted
and dropped (`HealthStore.apply` is measured on its own, see `_apply_process.py`). The process
measures itself: CPU from getrusage, memory from /proc/self/status, sampled every second; it prints
`RESULT {json}` at the end.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _common import INTERVAL_S, SNMP_PROFILE, event_loop_runner, memory_kib, own_cpu_seconds, poll_targets, say

from monitor.collectors import OutcomeCounters, load_profiles
from monitor.collectors.http import HttpPoller
from monitor.collectors.scheduler import SchedulerStats, SlotScheduler
from monitor.collectors.snmp import SnmpPoller
from monitor.collectors.target import PollTarget
from monitor.config import Settings

#: The service's defaults (monitor.config.Settings), so that the bench polls the way production does.
DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}
SAMPLE_S = 1.0


@dataclass(frozen=True)
class PhaseSpec:
    """One measured phase: which half of which fleet, for how long, and where the simulator listens."""

    devices: int
    protocols: str  # mixed, http or snmp
    http_port: int
    snmp_port: int
    duration_s: float
    snmp_profile: str = SNMP_PROFILE
    burst: bool = False  # poll every device at once first (poll_all_now), timed on its own
    steady_from_s: float = 5.0  # the steady window starts here, or when the first sweep ends if later
    gc_freeze: bool = False  # an experiment: gc.freeze() once the targets are loaded (not what the service does)


class GcClock:
    """Wall time spent in the cyclic garbage collector, by generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._began = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._began
            self.collections[generation] += 1

    def total(self) -> float:
        return sum(self.seconds)


@dataclass
class ExactLatenessStats(SchedulerStats):
    """`SchedulerStats` that also keeps every slot run's lateness, for exact percentiles (not bucket bounds)."""

    values: list[float] = field(default_factory=list)

    def observe_lateness(self, seconds: float) -> None:
        super().observe_lateness(seconds)
        self.values.append(max(0.0, seconds))

    def exact_quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class SweepTracker:
    """Counts polls per device, to tell when every device has been polled once, and twice."""

    def __init__(self, targets: list[PollTarget]) -> None:
        self.total = len(targets)
        self._counts = [0] * (max((t.device_id for t in targets), default=0) + 1)
        self._reached = [0, 0, 0]
        self.done_at: list[float | None] = [None, None, None]  # [_, first sweep, second sweep]

    def record(self, device_id: int, now: float) -> None:
        count = self._counts[device_id] + 1
        self._counts[device_id] = count
        if count <= 2:
            self._reached[count] += 1
            if self._reached[count] == self.total:
                self.done_at[count] = now

    def reset(self) -> None:
        self._counts = [0] * len(self._counts)
        self._reached = [0, 0, 0]
        self.done_at = [None, None, None]


class Sample:
    """CPU, polls and memory at one moment."""

    __slots__ = ("at", "cpu", "gc_s", "polls", "rss_kib")

    def __init__(self, at: float, cpu: float, polls: dict[str, int], rss_kib: int, gc_s: float) -> None:
        self.at, self.cpu, self.polls, self.rss_kib, self.gc_s = at, cpu, dict(polls), rss_kib, gc_s


async def run_phase(spec: PhaseSpec, loop_name: str) -> dict[str, Any]:
    """Poll on schedule for `spec.duration_s` and measure; returns the figures as a JSON-ready dict."""
    registry = load_profiles()
    counters = OutcomeCounters()
    http = HttpPoller(
        counters=counters,
        limit=DEFAULTS["poll_concurrency"],
        timeout_s=DEFAULTS["http_timeout_s"],
        max_body_bytes=DEFAULTS["http_max_body_bytes"],
    )
    snmp = SnmpPoller(counters=counters, timeout_s=DEFAULTS["snmp_timeout_s"], retries=DEFAULTS["snmp_retries"])
    targets = poll_targets(spec.devices, spec.http_port, spec.snmp_port, spec.protocols, spec.snmp_profile)
    tracker = SweepTracker(targets)
    completed = {"http": 0, "snmp": 0}
    first_started: list[float] = []

    async def poll(target: PollTarget) -> None:
        if not first_started:
            first_started.append(time.monotonic())
        profile = registry.get(target.profile)
        if target.protocol == "http":
            observation = await http.poll(target, profile)
        else:
            observation = await snmp.poll(target, profile)
        completed[observation.source] += 1
        tracker.record(target.device_id, time.monotonic())

    stats = ExactLatenessStats()
    scheduler: SlotScheduler[PollTarget] = SlotScheduler(
        poll, slots_per_interval=DEFAULTS["poll_slots"], concurrency=DEFAULTS["poll_concurrency"], stats=stats
    )
    await http.start()
    await snmp.start()
    if spec.protocols != "mixed":
        # Short phases never poll a device twice: fill the URL cache as one earlier interval would have.
        for target in targets:
            if target.protocol == "http":
                http.url_for(target, registry.get(target.profile))
    scheduler.set_targets(targets)
    if spec.gc_freeze:
        gc.collect()
        gc.freeze()
    gc_clock = GcClock()
    result: dict[str, Any] = {
        "loop": loop_name,
        "targets": len(targets),
        "protocols": spec.protocols,
        "rss_ready_kib": memory_kib()[0],  # imports, profiles, targets, sockets: before the first poll
    }

    samples: list[Sample] = []
    started = time.monotonic()
    scheduler.start()
    while (now := time.monotonic()) < started + spec.duration_s:
        samples.append(Sample(now, own_cpu_seconds(), completed, memory_kib()[0], gc_clock.total()))
        await asyncio.sleep(min(SAMPLE_S, started + spec.duration_s - now))
    samples.append(Sample(time.monotonic(), own_cpu_seconds(), completed, memory_kib()[0], gc_clock.total()))
    rss_kib, hwm_kib = memory_kib()
    await scheduler.stop()
    outcomes, events = counters.outcomes(), counters.events()
    first_sweep_end, second_sweep_end = tracker.done_at[1], tracker.done_at[2]
    if spec.burst:  # after the scheduled run, so that its memory figures are those of the schedule alone
        result["burst"] = await _burst(scheduler, counters, completed)
    await http.close()
    await snmp.close()

    steady_from = started + spec.steady_from_s
    if first_sweep_end is not None:
        steady_from = max(steady_from, first_sweep_end)
    window = [s for s in samples if s.at >= steady_from] or samples[-2:]
    first, last = window[0], window[-1]
    sweep_origin = first_started[0] if first_started else started
    result.update(
        {
            "duration_s": last.at - started,
            "window_s": last.at - first.at,
            "window_cpu_s": last.cpu - first.cpu,
            "window_gc_s": last.gc_s - first.gc_s,
            "gc_collections": gc_clock.collections,
            "gc_seconds": gc_clock.seconds,
            "window_polls": {p: last.polls[p] - first.polls[p] for p in last.polls},
            "total_cpu_s": last.cpu - samples[0].cpu,
            "total_polls": dict(last.polls),
            "sweep_s": None if first_sweep_end is None else first_sweep_end - sweep_origin,
            "second_sweep_done_s": None if second_sweep_end is None else second_sweep_end - sweep_origin,
            "rss_kib": rss_kib,
            "hwm_kib": hwm_kib,
            "rss_max_sampled_kib": max(s.rss_kib for s in samples),
            "lateness_p50_s": stats.exact_quantile(0.5),
            "lateness_p99_s": stats.exact_quantile(0.99),
            "lateness_p99_bucket_s": stats.lateness_quantile(0.99),
            "lateness_max_s": stats.lateness_max,
            "slot_runs": stats.runs,
            "missed": stats.missed,
            "skipped_still_running": stats.skipped_still_running,
            "errors": {f"{p}:{o}": n for (p, o), n in sorted(outcomes.items()) if o != "ok"},
            "events": {f"{p}:{e}": n for (p, e), n in sorted(events.items())},
            "expected_polls_per_s": len(targets) / INTERVAL_S,
        }
    )
    return result


async def _burst(
    scheduler: SlotScheduler[PollTarget], counters: OutcomeCounters, completed: dict[str, int]
) -> dict[str, Any]:
    """Poll every device at once (`poll_all_now`, bounded by the service's concurrency) and time it."""
    before_polls = sum(completed.values())
    before_errors = counters.outcomes()
    cpu0, t0 = own_cpu_seconds(), time.monotonic()
    await scheduler.poll_all_now()
    return {
        "seconds": time.monotonic() - t0,
        "cpu_s": own_cpu_seconds() - cpu0,
        "polls": sum(completed.values()) - before_polls,
        "errors": {
            f"{p}:{o}": n - before_errors.get((p, o), 0)
            for (p, o), n in counters.outcomes().items()
            if o != "ok" and n > before_errors.get((p, o), 0)
        },
        "rss_kib": memory_kib()[0],
    }


def main() -> None:
    """Run the phase given as JSON in argv[1] and print its RESULT."""
    spec = PhaseSpec(**json.loads(sys.argv[1]))
    loop_name, run = event_loop_runner()
    say("RESULT", run(run_phase(spec, loop_name)))


if __name__ == "__main__":
    main()
