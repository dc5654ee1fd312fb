"""Saying that a repeating job fails, without burying the log: one full report (with its traceback), then
a line a minute while it keeps failing, and one line when it works again.

A database that is away, locked past its busy timeout or out of connections, and a network that fails, are
the weather of a long-running service, not bugs: they are said in one line, without a traceback (a restarted
PostgreSQL would otherwise print one per process and job). Anything else gets its traceback once.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import exc as sa_exc

REPEAT_S = 60.0  # a job that keeps failing says so again at most this often


class FailureReport:
    """The failures of one repeating job (`what`), told to `log`."""

    def __init__(self, log: logging.Logger, what: str, every_s: float, repeat_s: float = REPEAT_S) -> None:
        self.log, self.what, self.every_s, self.repeat_s = log, what, every_s, repeat_s
        self.failures = 0
        self._last_said = 0.0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.failures == 1:
            self._last_said = now
            if operational(exc):
                self.log.error("%s failed; retrying every %g s: %s", self.what, self.every_s, _short(exc))
            else:
                self.log.error("%s failed; retrying every %g s", self.what, self.every_s, exc_info=exc)
        elif now - self._last_said >= self.repeat_s:
            self._last_said = now
            self.log.error("%s still failing (%d times so far): %s", self.what, self.failures, _short(exc))

    def worked(self) -> None:
        if self.failures:
            self.log.warning("%s works again after %d failures", self.what, self.failures)
        self.failures = 0


_OPERATIONAL = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError)


def operational(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database or the network failing, not the code."""
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, _OPERATIONAL):
            return True
        seen = seen.__cause__
    return False


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
