"""Counters the collectors keep about themselves, in plain Python (metrics.py exports them at scrape time).

Two families, kept apart so that totals stay meaningful:

- *outcomes*: one per poll or pushed message, by (protocol, outcome) where the outcome is `ok` or a
  `FailureKind` value; each poll's latency goes into a per-protocol histogram with fixed buckets.
- *events*: things that happen beside polls, by (protocol, event): a garbage UDP packet, a reply
  from the wrong address, a message on an unknown topic, a broker disconnection...

Everything runs on the event loop's thread: no locks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

from monitor.health.machine import Observation

OK = "ok"
# Seconds; Prometheus-style upper bounds (`le`), the last bucket being +Inf.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """A snapshot of one protocol's latencies: `counts[i]` polls took at most `LATENCY_BUCKETS[i]` (not cumulative;
    the last count is above the last bound), with their `total` count and `sum` in seconds."""

    counts: tuple[int, ...]
    total: int
    sum: float

    def cumulative(self) -> list[tuple[float, int]]:
        """`(le, count)` pairs as Prometheus wants them, ending with `(inf, total)`."""
        running = 0
        pairs = []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


class OutcomeCounters:
    """Poll outcomes, side events and latency histograms of one collector process."""

    __slots__ = ("_events", "_latency_counts", "_latency_sum", "_outcomes")

    def __init__(self) -> None:
        self._outcomes: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._events: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._latency_counts: dict[str, list[int]] = {}
        self._latency_sum: defaultdict[str, float] = defaultdict(float)

    def record(self, protocol: str, outcome: str, latency_s: float | None = None) -> None:
        """Count one poll or pushed message and, when it has one, its latency."""
        self._outcomes[(protocol, outcome)] += 1
        if latency_s is not None:
            counts = self._latency_counts.get(protocol)
            if counts is None:
                counts = self._latency_counts[protocol] = [0] * (len(LATENCY_BUCKETS) + 1)
            counts[bisect_left(LATENCY_BUCKETS, latency_s)] += 1
            self._latency_sum[protocol] += latency_s

    def record_observation(self, observation: Observation) -> None:
        """Count an observation by its outcome: `ok`, or the failure kind that starts its error."""
        outcome = OK if observation.reachable else (observation.error or "unknown").split(":", 1)[0]
        self.record(observation.source, outcome, observation.latency_s)

    def event(self, protocol: str, event: str, n: int = 1) -> None:
        """Count something that happened beside a poll (a garbage packet, an unknown topic...)."""
        self._events[(protocol, event)] += n

    def outcomes(self) -> dict[tuple[str, str], int]:
        """A copy of the outcome counts by (protocol, outcome)."""
        return dict(self._outcomes)

    def events(self) -> dict[tuple[str, str], int]:
        """A copy of the event counts by (protocol, event)."""
        return dict(self._events)

    def outcome(self, protocol: str, outcome: str) -> int:
        """How many polls of `protocol` ended with `outcome`."""
        return self._outcomes.get((protocol, outcome), 0)

    def event_count(self, protocol: str, event: str) -> int:
        """How many times `event` happened for `protocol`."""
        return self._events.get((protocol, event), 0)

    def latency(self, protocol: str) -> LatencyHistogram:
        """A snapshot of the latency histogram of `protocol` (empty when nothing was recorded)."""
        counts = self._latency_counts.get(protocol) or [0] * (len(LATENCY_BUCKETS) + 1)
        return LatencyHistogram(tuple(counts), sum(counts), self._latency_sum.get(protocol, 0.0))

    def protocols(self) -> list[str]:
        """Every protocol that has a latency histogram."""
        return sorted(self._latency_counts)


__all__ = ["LATENCY_BUCKETS", "OK", "LatencyHistogram", "OutcomeCounters"]
