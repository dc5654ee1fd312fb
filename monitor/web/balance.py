"""Keeping the workers of a web pool (`monitor serve --workers N`) at about the same number of connections.

Each worker listens on the port with its own socket (SO_REUSEPORT) and the kernel hands a new connection to
one of them by a hash of its addresses: fair on average, lopsided by chance. Browsers and reverse proxies keep
their connections open, so a lopsided start lasts: 50 keep-alive clients split 32/18 give the worker with 32
nearly twice the queue, and the pages' tail latency follows that worker (bench/bench_ui.py measured p99 from 97
to 198 ms between two runs that differed only in the split).

So every worker publishes how many connections it holds in a small array shared with its siblings (one slot
each, written only by its owner), and a worker holding more than its fair share (the pool's total over the
workers, plus one) answers its next request with `Connection: close`, at most one every `GAP_S`. The client
opens a new connection, which the kernel hands to a worker again; the surplus drains within a second or so.
That is what a load balancer's connection draining does, with nothing between the clients and the workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableSequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GAP_S = 0.05  # at most one connection closed for balance per this many seconds, per worker
TOLERANCE = 1  # connections above the fair share before one is closed
PUBLISH_EVERY_S = 0.5  # a worker with no requests still says what it holds


class ConnectionBalance:
    """One worker's view of the pool's connections: its own count, the others' (shared memory)."""

    def __init__(self, counts: MutableSequence[int], slot: int) -> None:
        self.counts = counts
        self.slot = slot
        self.held: Callable[[], int] = lambda: 0  # set by the server once it runs: its open connections
        self._last_close = float("-inf")

    def publish(self) -> int:
        mine = self.held()
        self.counts[self.slot] = mine
        return mine

    def surplus(self) -> bool:
        """Whether this worker holds more than its share of the pool's connections and may close one now."""
        mine = self.publish()
        workers = len(self.counts)
        fair = -(-sum(self.counts) // workers)  # rounded up
        now = time.monotonic()
        if mine <= fair + TOLERANCE or now - self._last_close < GAP_S:
            return False
        self._last_close = now
        return True

    async def keep_publishing(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(PUBLISH_EVERY_S)


class BalancedConnections:
    """ASGI wrapper: a response of a worker with surplus connections closes its connection after it."""

    def __init__(self, app: ASGIApp, balance: ConnectionBalance) -> None:
        self.app = app
        self.balance = balance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_balanced(message: Message) -> None:
            if message["type"] == "http.response.start" and self.balance.surplus():
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_balanced)


__all__ = ["BalancedConnections", "ConnectionBalance"]
