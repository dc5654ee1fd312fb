"""The collector watches itself, so that its own trouble is never blamed on the devices.

A device is judged by what the collector hears of it; when the collector could not hear, that silence
is the collector's, not the device's. Three measures say when it could not work (each a `Stall`, a
period of wall-clock time with its cause):

- `loop`: the event loop's lag. A task sleeps `period_s` and measures how late it wakes. Whoever looks
  at it (the flush, the tick) also sees a stall in progress: a beat overdue by more than `stall_s`
  means the loop has not run since. A blocked loop cannot read sockets: polls in flight time out
  when it resumes, MQTT messages and HTTP heartbeats wait.
- `schedule`: poll slots started more than `stall_s` after their time (the scheduler's lateness).
- `database`: the time from the first write (flush or tick) not followed by a success to the next
  success, when longer than `write_stall_s`. The collector could not save then, and neither could
  the web process save the heartbeats it was sent (they share the database).

What follows from a stall (the collector applies it; health stays a pure machine):

- a failed observation whose window (`observed_at` .. + its latency, or the poll timeout) overlaps a
  stall, widened by `settle_s` after it, is not fed to health: it is counted (`discounted`), and
  dropped: it says nothing about the device;
- while a stall is in progress, heartbeat silence is not counted; once it is over, it is one of the
  `excused` periods passed to `HealthStore.tick_silent`, which takes them out of every device's
  silence (the pure `tick` pushes each deadline back by the part of them inside the silence);
- `blind` is true meanwhile, and the metrics export every stall (count and seconds by cause).

A failure of the collector's own kind (`COLLECTOR_FAILURES`: it could not open a device's credentials) says
nothing of the device at any time: it is discounted too, and the device stays as it was.

The push ingest is also watched from the database (`IngestWatch`), which works whether it is this
collector's MQTT listener or another process's HTTP heartbeat route. And the polls' outcomes are watched
(`BlindnessGuard`): when every poll of every protocol failed for the last minute, the collector's own network
is the likely fault, and its failures are held back until a device answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.collectors.errors import COLLECTOR_FAILURES
from monitor.health.machine import Observation, collector_blind

log = logging.getLogger(__name__)

#: How often the loop-lag task wakes: small enough to date a stall within a quarter second.
LAG_PERIOD_S = 0.25
#: Stalls remembered: a device's silence may have begun this long before a stall and still be counted
#: after it (a push device silent a day is long down; one heard since is not concerned).
KEEP_STALLS_S = 86_400.0
MAX_STALLS = 10_000
CAUSES = ("loop", "schedule", "database")


@dataclass(frozen=True, slots=True)
class Stall:
    """A period when the collector could not work (`cause`: loop, schedule, database or ingest_<protocol>)."""

    cause: str
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


def merged(periods: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching periods joined, in time order."""
    result: list[tuple[datetime, datetime]] = []
    for start, end in sorted(periods):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


class Liveness:
    """Measures the collector's own liveness (loop lag, schedule lateness, writes) and keeps its stalls."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        stall_s: float = 2.0,
        write_stall_s: float = 10.0,
        period_s: float = LAG_PERIOD_S,
        settle_s: float = 1.0,
        poll_timeout_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self.stall_s, self.write_stall_s, self.period_s = stall_s, write_stall_s, period_s
        self.settle_s, self.poll_timeout_s = settle_s, poll_timeout_s
        self.lag_s = 0.0  # the last lag measured (seconds the loop woke late)
        self.max_lag_s = 0.0
        self.last_flush_at: datetime | None = None  # wall time of the last flush that left nothing unsaved
        self.stalls: deque[Stall] = deque()  # recent ones, for judging failed observations
        self.stall_count: dict[str, int] = dict.fromkeys(CAUSES, 0)
        self.stalled_seconds: dict[str, float] = dict.fromkeys(CAUSES, 0.0)
        self.discounted: dict[str, int] = {}
        self._last_beat = monotonic()
        self._unsaved_since: tuple[float, datetime] | None = None
        self._write_stall_said = False

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Beat every `period_s` until cancelled (a task of the collector)."""
        self._last_beat = self.monotonic()
        while True:
            await asyncio.sleep(self.period_s)
            self.beat()

    def beat(self) -> None:
        """The lag task woke: measure how late, record a stall if it was one, watch the writes."""
        now = self.monotonic()
        lag = max(0.0, now - self._last_beat - self.period_s)
        self.lag_s = lag
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.stall_s:
            end = self.clock()
            self._record(Stall("loop", end - timedelta(seconds=lag + self.period_s), end), "the event loop was blocked")
        self._last_beat = now
        self._watch_writes(now)

    def loop_stalled_now(self) -> float:
        """Seconds the loop has not run the lag task beyond its period: > `stall_s` while resuming from a stall."""
        return max(0.0, self.monotonic() - self._last_beat - self.period_s)

    def _open_loop_stall(self) -> Stall | None:
        overdue = self.loop_stalled_now()
        if overdue <= self.stall_s:
            return None
        end = self.clock()
        return Stall("loop", end - timedelta(seconds=overdue + self.period_s), end)

    def late(self, seconds: float) -> None:
        """A poll slot started `seconds` after its time (from the scheduler)."""
        if seconds <= self.stall_s:
            return
        end = self.clock()
        stall = Stall("schedule", end - timedelta(seconds=seconds), end)
        settle = timedelta(seconds=self.settle_s)
        # Every slot of a stalled loop reports it: one stall, one line, not one per slot.
        for known in reversed(self.stalls):
            if known.start <= stall.start and stall.end <= known.end + settle:
                return
            if known.cause == "schedule" and stall.start <= known.end + settle:
                self.stalls.remove(known)
                self.stalled_seconds["schedule"] += (max(known.end, stall.end) - known.start).total_seconds() - (
                    known.seconds
                )
                self.stalls.append(Stall("schedule", known.start, max(known.end, stall.end)))
                return
            break
        self._record(stall, "poll slots started late")

    # --- writes ------------------------------------------------------------------------------

    def write_begin(self) -> None:
        """A write to the database starts (a flush, a tick)."""
        if self._unsaved_since is None:
            self._unsaved_since = (self.monotonic(), self.clock())

    def write_done(self, *, flush: bool = False) -> None:
        """The write succeeded: whatever was pending is saved."""
        now = self.clock()
        if flush:
            self.last_flush_at = now
        if self._unsaved_since is None:
            return
        began_mono, began = self._unsaved_since
        self._unsaved_since = None
        self._write_stall_said = False
        if self.monotonic() - began_mono > self.write_stall_s:
            self._record(Stall("database", began, now), "the database could not be written")

    def flushed_nothing(self) -> None:
        """A flush found nothing to save: nothing is at risk (the tick's writes still say if the database is away)."""
        self.last_flush_at = self.clock()

    def write_stalled_s(self) -> float:
        """Seconds since the first write not yet followed by a success (0 when all is saved)."""
        return 0.0 if self._unsaved_since is None else self.monotonic() - self._unsaved_since[0]

    def _watch_writes(self, now: float) -> None:
        unsaved = self._unsaved_since
        if unsaved is not None and not self._write_stall_said and now - unsaved[0] > self.write_stall_s:
            self._write_stall_said = True
            log.error(
                "collector stalled: nothing could be saved for %.0f s (database away or locked); heartbeat "
                "silence is not counted until it can, and then its deadlines are pushed back by that long",
                now - unsaved[0],
            )

    # --- what follows ------------------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """Whether the collector is unable to work now (its loop held, or its writes failing too long)."""
        return self.loop_stalled_now() > self.stall_s or self.write_stalled_s() > self.write_stall_s

    def check(self) -> bool:
        """Look at the measures now (from the flush and the tick); True while stalled."""
        self._watch_writes(self.monotonic())
        return self.stalled

    def _record(self, stall: Stall, what: str) -> None:
        self.stalls.append(stall)
        self.stall_count[stall.cause] = self.stall_count.get(stall.cause, 0) + 1
        self.stalled_seconds[stall.cause] = self.stalled_seconds.get(stall.cause, 0.0) + stall.seconds
        while self.stalls and (
            len(self.stalls) > MAX_STALLS or (stall.end - self.stalls[0].end).total_seconds() > KEEP_STALLS_S
        ):
            self.stalls.popleft()
        log.warning(
            "collector stalled for %.1f s (%s, %s .. %s): failed polls in that time are not counted and heartbeat "
            "silence deadlines are pushed back by it",
            stall.seconds,
            what,
            stall.start.isoformat(timespec="seconds"),
            stall.end.isoformat(timespec="seconds"),
        )

    def discounts(self, observation: Observation) -> bool:
        """Whether a failed observation overlaps a stall, or is the collector's own failure (then it says
        nothing about the device)."""
        if observation.reachable:
            return False
        if (observation.error or "").split(":", 1)[0] in COLLECTOR_FAILURES:
            return True
        began = observation.observed_at
        ended = began + timedelta(
            seconds=observation.latency_s if observation.latency_s is not None else self.poll_timeout_s
        )
        settle = timedelta(seconds=self.settle_s)
        stalls = list(self.stalls)
        open_stall = self._open_loop_stall()
        if open_stall is not None:
            stalls.append(open_stall)
        if self._unsaved_since is not None and self.write_stalled_s() > self.write_stall_s:
            stalls.append(Stall("database", self._unsaved_since[1], self.clock()))
        return any(s.start <= ended and began <= s.end + settle for s in stalls if s.cause != "database")

    def count_discounted(self, reason: str, count: int) -> None:
        if count:
            self.discounted[reason] = self.discounted.get(reason, 0) + count

    def excused(self) -> list[tuple[datetime, datetime]]:
        """The stalls that are over, joined: silence in them is not the devices' (see `HealthStore.tick_silent`)."""
        return merged((stall.start, stall.end) for stall in self.stalls)


class IngestWatch:
    """Whether heartbeats of one push protocol are reaching the database at all, fleet-wide.

    Why from the database: HTTP heartbeats are taken by the web process, which may be another process
    (sharing only the database) that is stalled, down, or unable to write; the collector can still see
    when the newest heartbeat any device of the protocol got through (`last heard`). The rule is
    BlindnessGuard's: when at least `minimum_devices` devices of the protocol are expected to report
    (up, degraded or in maintenance) and none of them got through for longer than the longest interval
    among them plus the grace, every one of them missed at once: that is the ingest's fault, not theirs.

    - Silence is never counted beyond the last heartbeat heard fleet-wide (`cap`): a device's
      silence after the ingest went quiet is not yet known to be the device's.
    - When heartbeats come back after such a gap, the gap (last heard before .. first heard after) is
      taken out of every device's silence deadline; a gap shorter than that is ordinary and counted.
    - Below `minimum_devices` the rule is off (a few devices may well all be off at once).
    """

    def __init__(self, protocol: str, *, minimum_devices: int = 20, grace_s: float = 30.0) -> None:
        self.protocol = protocol
        self.minimum_devices = minimum_devices
        self.grace_s = grace_s
        self.last_heard: datetime | None = None
        self.silent = False  # the ingest is quiet fleet-wide now
        self.gaps: deque[Stall] = deque(maxlen=MAX_STALLS)
        self.gap_count = 0
        self.gap_seconds = 0.0

    def judge(
        self,
        now: datetime,
        last_heard: datetime | None,
        first_heard_after: datetime | None,
        expected: int,
        longest_interval_s: float,
    ) -> tuple[datetime | None, Stall | None]:
        """Given the facts (see `HealthStore.ingest_facts`), the time silence may be counted up to (None: now)
        and the gap to excuse, if heartbeats came back after one."""
        previous, self.last_heard = self.last_heard, last_heard or self.last_heard
        if expected < self.minimum_devices or last_heard is None:
            if self.silent:
                log.warning("%s ingest: too few devices expected to report to judge it", self.protocol)
            self.silent = False
            return None, None
        allowed = timedelta(seconds=longest_interval_s + self.grace_s)
        gap: Stall | None = None
        if previous is not None and first_heard_after is not None and first_heard_after - previous > allowed:
            gap = Stall(f"ingest_{self.protocol}", previous, first_heard_after)
            self.gaps.append(gap)
            self.gap_count += 1
            self.gap_seconds += gap.seconds
        while self.gaps and (now - self.gaps[0].end).total_seconds() > KEEP_STALLS_S:
            self.gaps.popleft()
        silent = now - last_heard > allowed
        if silent and not self.silent:
            log.error(
                "%s ingest silent: none of %d devices got a heartbeat through for %.0f s, more than any of their "
                "intervals: the ingest path is at fault, not the fleet; their silence is not counted",
                self.protocol,
                expected,
                (now - last_heard).total_seconds(),
            )
        elif gap is not None:
            log.warning(
                "%s ingest heard again after %.0f s: silence deadlines pushed back by the gap",
                self.protocol,
                gap.seconds,
            )
        self.silent = silent
        return last_heard, gap


BLIND_WINDOW_S = 60.0


class BlindnessGuard:
    """Remembers the last minute of poll outcomes per protocol and says when all of them failed."""

    def __init__(self, window_s: float = BLIND_WINDOW_S, minimum_attempted: int = 20) -> None:
        self.window_s = window_s
        self.minimum_attempted = minimum_attempted
        self._outcomes: deque[tuple[float, str, bool]] = deque()
        self.blind = False

    def record(self, observation: Observation, now: float) -> None:
        self._outcomes.append((now, observation.source, observation.reachable))

    def judge(self, now: float) -> bool:
        while self._outcomes and self._outcomes[0][0] < now - self.window_s:
            self._outcomes.popleft()
        counts: dict[str, list[int]] = {}
        for _at, protocol, ok in self._outcomes:
            attempted_failed = counts.setdefault(protocol, [0, 0])
            attempted_failed[0] += 1
            attempted_failed[1] += 0 if ok else 1
        blind = collector_blind({p: (a, f) for p, (a, f) in counts.items()}, self.minimum_attempted)
        if blind and not self.blind:
            log.error(
                "every poll of every protocol failed for the last %.0f s: the collector's own network is the "
                "likely fault, not the fleet; holding failures back until a device answers",
                self.window_s,
            )
        elif self.blind and not blind:
            log.warning("devices answer again: judging failures again")
        self.blind = blind
        return blind


__all__ = [
    "BLIND_WINDOW_S",
    "CAUSES",
    "KEEP_STALLS_S",
    "LAG_PERIOD_S",
    "BlindnessGuard",
    "IngestWatch",
    "Liveness",
    "Stall",
    "merged",
]
