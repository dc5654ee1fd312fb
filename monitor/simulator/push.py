"""Devices that post their heartbeat to the service: `POST {service}/api/v1/heartbeats/{code}`.

Sao Bắc SB-43 boards post their status JSON, TTS-1 clusters the service's observation contract,
each with `Authorization: Bearer {token}` every interval. Every post is a new connection, as from a
device of its own. The service may be down or not have the endpoint yet: failures are counted and
the schedule goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable

import aiohttp

from monitor.simulator import formats
from monitor.simulator.fleet import Clock, Fleet, SimDevice
from monitor.simulator.pacing import Pacer

log = logging.getLogger(__name__)

#: The bearer token of a device, by code.
TokenFunction = Callable[[str], str]


class HeartbeatPusher:
    """Posts the heartbeats of the fleet's heartbeat devices to the service."""

    def __init__(
        self,
        fleet: Fleet,
        service_url: str,
        token_for: TokenFunction,
        *,
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        max_in_flight: int = 64,
    ) -> None:
        if not service_url.startswith(("http://", "https://")):
            raise ValueError(f"service URL {service_url!r} must start with http:// or https://")
        self.fleet = fleet
        self.clock = clock or fleet.clock
        self.service_url = service_url.rstrip("/")
        self.token_for = token_for
        self.timeout_s = timeout_s
        self.pacer = Pacer(fleet.with_protocol("heartbeat"), fleet.seed)
        self.stats: Counter[str] = Counter()
        self.last_status: dict[str, int] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Task[int | None]] = set()

    def url_for(self, device: SimDevice) -> str:
        """Where the device posts its heartbeat."""
        return f"{self.service_url}/api/v1/heartbeats/{device.code}"

    async def start(self) -> None:
        """Start posting in the background."""
        self._stopping = asyncio.Event()
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s), auto_decompress=False
        )
        self._task = asyncio.create_task(self.pacer.run(self._due, self._stopping), name="simulator-push")

    async def stop(self) -> None:
        """Stop posting, cancel posts in flight, close the session (idempotent)."""
        self._stopping.set()
        tasks = [*self._posts, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._posts.clear()
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def body(self, device: SimDevice) -> bytes | None:
        """What the device posts now, or None when it is silent (unreachable)."""
        now = self.clock()
        state = device.snapshot(now)
        if not state.reachable:
            return None
        if state.garbage:
            return formats.garbage_body(device.next_garbage("heartbeat"), device, state, now)
        return formats.encode(formats.document(device, state, now))

    async def _due(self, device: SimDevice) -> None:
        body = self.body(device)
        if body is None:
            self.stats["silent"] += 1
            return
        await self._slots.acquire()
        delay = device.snapshot(self.clock()).slow_delay_s or 0.0
        task = asyncio.create_task(self.post(device, body, delay))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
        task.add_done_callback(lambda _: self._slots.release())

    async def post(self, device: SimDevice, body: bytes, delay: float = 0.0) -> int | None:
        """Post one heartbeat (after `delay` seconds); return the HTTP status, None when it failed."""
        if delay:
            await asyncio.sleep(delay)
        assert self._session is not None, "start() first"
        headers = {"Authorization": f"Bearer {self.token_for(device.code)}", "Content-Type": "application/json"}
        try:
            async with self._session.post(self.url_for(device), data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats["failed"] += 1
            log.debug("heartbeat of %s not delivered: %s", device.code, exc)
            return None
        self.stats["sent"] += 1
        self.stats[f"http_{status}"] += 1
        self.last_status[device.code] = status
        return status
