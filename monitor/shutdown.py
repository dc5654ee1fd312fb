"""Stopping a process on SIGINT/SIGTERM, within a deadline, whatever state it is in.

The first signal asks the process to stop in order (the web server stops taking requests, collectors flush
what they heard, tasks are cancelled) and starts a watchdog thread. If the process has not ended when the
deadline passes — a worker thread stuck in the database, a flush that cannot finish — the watchdog says
what is left (each part registers a sentence for that) and ends the process with exit code 1. A second
signal ends it at once, saying the same.

The handler is a Python-level `signal.signal` handler rather than the event loop's: it runs in the main
thread between bytecodes, also while the loop itself is held up, and hands the orderly stop to the loop
with `call_soon_threadsafe`. A systemd unit or container runtime that sends SIGKILL after its own timeout
(90 s, 10 s) therefore never has to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopper:
    """Turns the first SIGINT/SIGTERM into `on_stop()` on the loop, and guarantees the end by `deadline_s`."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._reports: list[Callable[[], str | None]] = []
        self._signalled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_stop: Callable[[], None] | None = None

    @property
    def signalled(self) -> bool:
        return self._signalled.is_set()

    def report(self, what: Callable[[], str | None]) -> None:
        """Register a sentence saying what would be lost if the process were ended now (None: nothing)."""
        self._reports.append(what)

    @contextmanager
    def installed(self, on_stop: Callable[[], None]) -> Iterator[None]:
        """Handle the signals for the duration of the block (call inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._on_stop = on_stop
        previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._signalled.is_set():
            self._force(f"a second {name}")
            return
        self._signalled.set()
        log.info("%s received: stopping (at most %.0f s)", name, self.deadline_s)
        threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True).start()
        if self._loop is not None and self._on_stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_stop)

    def _watch(self) -> None:
        # A daemon thread: when the process ends on its own first, this ends with it.
        threading.Event().wait(self.deadline_s)
        self._force(f"not stopped within {self.deadline_s:.0f} s")

    def _force(self, why: str) -> None:
        left = []
        for report in self._reports:
            try:
                said = report()
            except Exception as exc:  # a report must not keep the process alive
                said = f"(could not tell: {exc})"
            if said:
                left.append(said)
        log.error("%s: ending the process now; %s", why, "; ".join(left) or "nothing left to report")
        logging.shutdown()
        os._exit(1)


async def wait_for_stop(stopper: Stopper) -> None:
    """Wait until the process is asked to stop."""
    stop = asyncio.Event()
    with stopper.installed(stop.set):
        await stop.wait()
