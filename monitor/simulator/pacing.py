"""When each pushing device speaks: every interval, at its own phase, so that 900 devices do not all
publish in the same millisecond. The phase is drawn from (seed, code): the same seed, the same rhythm.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
from collections.abc import Awaitable, Callable, Iterable

from monitor.simulator.fleet import SimDevice


def phase(seed: int, device: SimDevice) -> float:
    """Seconds after the start at which the device first speaks: uniform in [0, interval)."""
    return random.Random(f"{seed}:{device.code}:phase").uniform(0, max(device.interval_s, 1))


class Pacer:
    """A schedule of periodic sends, one per device, kept across reconnections."""

    def __init__(self, devices: Iterable[SimDevice], seed: int) -> None:
        self._devices = sorted(devices, key=lambda d: d.code)
        self._seed = seed
        self._heap: list[tuple[float, int, SimDevice]] = []

    def __len__(self) -> int:
        return len(self._devices)

    def _ensure_started(self, now: float) -> None:
        if not self._heap and self._devices:
            self._heap = [(now + phase(self._seed, d), n, d) for n, d in enumerate(self._devices)]
            heapq.heapify(self._heap)

    async def run(self, send: Callable[[SimDevice], Awaitable[None]], stopping: asyncio.Event) -> None:
        """Call `send` for each device when due, until `stopping` is set; an exception from `send` ends the run
        (the device's turn is kept, so a reconnected caller resumes where it stopped)."""
        loop = asyncio.get_running_loop()
        self._ensure_started(loop.time())
        while self._heap and not stopping.is_set():
            due, n, device = self._heap[0]
            delay = due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                continue
            await send(device)
            interval = max(device.interval_s, 1)
            now = loop.time()
            while due <= now:  # slots missed while disconnected are skipped, not sent in a burst
                due += interval
            heapq.heapreplace(self._heap, (due, n, device))
