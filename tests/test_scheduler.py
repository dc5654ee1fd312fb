"""The slot scheduler on a real event loop and APScheduler, with short intervals so the test stays quick."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from monitor.collectors.scheduler import SchedulerStats, SlotScheduler, slot_of


@dataclass(frozen=True)
class Target:
    code: str
    interval_s: int


def test_slots_are_stable_and_spread() -> None:
    slots = Counter(slot_of(f"06{n:03d}-CL01", 60) for n in range(6000))
    assert slot_of("06613-CL01", 60) == slot_of("06613-CL01", 60)
    assert len(slots) == 60 and max(slots.values()) < 2 * min(slots.values())


async def _run(targets: list[Target], seconds: float, slow: set[str], stats: SchedulerStats) -> Counter[str]:
    polled: Counter[str] = Counter()

    async def poll(target: Target) -> None:
        if target.code in slow:
            await asyncio.sleep(2.5)  # a device answering after the collector's timeout
        polled[target.code] += 1

    scheduler: SlotScheduler[Target] = SlotScheduler(poll, slots_per_interval=60, concurrency=50, stats=stats)
    scheduler.set_targets(targets)
    scheduler.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await scheduler.stop()
    return polled


def test_each_device_is_polled_on_its_own_interval_and_a_slow_one_delays_nobody() -> None:
    fast = [Target(f"F{n}", 1) for n in range(40)]
    every_two = [Target(f"T{n}", 2) for n in range(10)]
    stats = SchedulerStats()
    polled = asyncio.run(_run([*fast, *every_two, Target("SLOW", 1)], 4.2, {"SLOW"}, stats))
    assert all(polled[t.code] >= 3 for t in fast)
    assert all(1 <= polled[t.code] <= 3 for t in every_two)
    assert polled["SLOW"] <= 2
    assert stats.skipped_still_running >= 1, "the slow device's next poll is skipped, not stacked"
    assert stats.lateness_quantile(0.99) < 1.0
    assert stats.missed == 0


def test_replacing_the_targets_adds_and_removes_jobs() -> None:
    async def scenario() -> tuple[int, int, int]:
        async def poll(target: Target) -> None:
            return None

        scheduler: SlotScheduler[Target] = SlotScheduler(poll)
        scheduler.set_targets([Target("A", 60), Target("B", 120)])
        scheduler.start()
        jobs_before = len(scheduler._scheduler.get_jobs())
        scheduler.set_targets([Target("A", 60)])
        jobs_after = len(scheduler._scheduler.get_jobs())
        count = scheduler.target_count
        await scheduler.stop()
        return jobs_before, jobs_after, count

    assert asyncio.run(scenario()) == (2, 1, 1)


def test_catching_up_polls_now_only_the_targets_whose_slot_came_round_within_the_window() -> None:
    """Shards taken over from a collector that stopped: the devices whose slot passed while nobody held them are
    polled at once, the longest overdue first; the others wait for their slot (the same, epoch-aligned, on every
    collector)."""
    import math
    import time

    interval = 600
    targets = [Target(f"06{n:03d}-CL01", interval) for n in range(600)]

    async def scenario() -> tuple[set[str], set[str]]:
        polled: set[str] = set()
        order: list[str] = []

        async def poll(target: Target) -> None:
            polled.add(target.code)
            order.append(target.code)

        scheduler: SlotScheduler[Target] = SlotScheduler(poll, slots_per_interval=60)
        now = time.time()
        late = scheduler.catch_up(targets, within_s=60)  # ~60 late: started at CATCH_UP_RATE, within 0.2 s
        await asyncio.sleep(0.5)
        step = interval / 60
        expected = set()
        dues: dict[str, float] = {}
        for target in targets:
            phase = slot_of(target.code, 60) * step
            dues[target.code] = due = math.floor((now - phase) / interval) * interval + phase
            if now - due <= 60:
                expected.add(target.code)
        assert late == len(polled)
        assert [dues[code] for code in order] == sorted(dues[code] for code in order)  # the longest overdue first
        return polled, expected

    polled, expected = asyncio.run(scenario())
    assert 0 < len(polled) < len(targets)  # about a tenth: the window is a tenth of the interval
    assert polled == expected
