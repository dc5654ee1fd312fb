"""Time-weighted availability, pure: spans of states laid over periods, days and maintenance windows.

No database here. A device's history is a list of `Span`s (one state from `start` until `end`, `None` while
it lasts); this module clips them to a period, to the device's own counting time (from its install date),
moves what maintenance covered into its own bucket, and adds them up by day or in total.

How the figures are defined (the reports print this):

- **Seconds by state**: up, degraded, down, unknown and maintenance, to the second. `unknown` is time the
  service could not see the device (never heard yet, or its collector blind); it is never counted as down.
- **Maintenance**: time inside a maintenance window that covers the device (or shown as `maintenance`) is
  moved out of its state into `maintenance_s` and out of availability (unless the setting says otherwise).
- **Availability** = (up + degraded) / (up + degraded + down): the share of the time the service could see
  the device and it was not down. A degraded device still answers and broadcasts, with a fault reported
  apart. None when there is no such time (a device never seen, or in maintenance all along).
- **Outages**: each period of `down` overlapping the period counts once; the longest is its overlap.
- **MTBF** = operating time (up + degraded) / number of outages; None without an outage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from monitor.i18n import LOCAL_ZONE

STATES = ("up", "degraded", "down", "unknown", "maintenance")
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Span:
    """One state of one device from `start` (inclusive) to `end` (exclusive; None: still lasting)."""

    state: str
    start: datetime
    end: datetime | None = None


@dataclass(slots=True)
class StateSeconds:
    """Seconds spent in each state; adds up over devices, days and groups."""

    up_s: float = 0.0
    degraded_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    maintenance_s: float = 0.0

    def add(self, state: str, seconds: float) -> None:
        """Count `seconds` in `state` (a state this module does not know counts as unknown)."""
        name = f"{state}_s" if state in STATES else "unknown_s"
        setattr(self, name, getattr(self, name) + seconds)

    def merge(self, other: StateSeconds) -> None:
        for state in STATES:
            self.add(state, other.get(state))

    def get(self, state: str) -> float:
        return float(getattr(self, f"{state}_s"))

    @property
    def total_s(self) -> float:
        return self.up_s + self.degraded_s + self.down_s + self.unknown_s + self.maintenance_s

    @property
    def operating_s(self) -> float:
        """Time seen and not down: up and degraded."""
        return self.up_s + self.degraded_s

    @property
    def availability(self) -> float | None:
        """(up + degraded) / (up + degraded + down); None when the device was never seen outside maintenance."""
        judged = self.up_s + self.degraded_s + self.down_s
        return None if judged <= 0 else (self.up_s + self.degraded_s) / judged


@dataclass(slots=True)
class OutageStats:
    """Outages (periods of `down`) overlapping a period."""

    count: int = 0
    longest_s: float = 0.0
    total_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.longest_s = max(self.longest_s, seconds)

    def merge(self, other: OutageStats) -> None:
        self.count += other.count
        self.total_s += other.total_s
        self.longest_s = max(self.longest_s, other.longest_s)


@dataclass(slots=True)
class Figures:
    """What a report shows for a device or a group over a period."""

    seconds: StateSeconds = field(default_factory=StateSeconds)
    outages: OutageStats = field(default_factory=OutageStats)
    devices: int = 0

    def merge(self, other: Figures) -> None:
        self.seconds.merge(other.seconds)
        self.outages.merge(other.outages)
        self.devices += other.devices

    @property
    def mtbf_s(self) -> float | None:
        """Mean time between failures: operating time per outage; None without an outage."""
        return None if self.outages.count == 0 else self.seconds.operating_s / self.outages.count


# --- days in Asia/Ho_Chi_Minh ------------------------------------------------------------------


def day_start(day: date) -> datetime:
    """00:00 of `day` in Asia/Ho_Chi_Minh, as a UTC instant."""
    return datetime.combine(day, time(), tzinfo=LOCAL_ZONE).astimezone(UTC)


def period_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[00:00 of `first`, 00:00 of the day after `last`) in Asia/Ho_Chi_Minh, as UTC instants."""
    return day_start(first), day_start(last + timedelta(days=1))


def local_day(at: datetime) -> date:
    """The calendar day of `at` in Asia/Ho_Chi_Minh."""
    return at.astimezone(LOCAL_ZONE).date()


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- intervals ---------------------------------------------------------------------------------

Interval = tuple[datetime, datetime]


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of `intervals` as sorted, disjoint intervals (empty ones dropped)."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def covered_seconds(start: datetime, end: datetime, windows: Sequence[Interval]) -> float:
    """Seconds of [start, end) inside the disjoint, sorted `windows`."""
    total = 0.0
    for w_start, w_end in windows:
        if w_start >= end:
            break
        total += _seconds(max(start, w_start), min(end, w_end))
    return total


def clip(span: Span, start: datetime, end: datetime) -> Interval | None:
    """The part of `span` inside [start, end), or None."""
    lo = max(span.start, start)
    hi = end if span.end is None else min(span.end, end)
    return (lo, hi) if hi > lo else None


def device_figures(
    spans: Iterable[Span],
    start: datetime,
    end: datetime,
    *,
    counts_from: datetime | None = None,
    maintenance: Sequence[Interval] = (),
) -> Figures:
    """One device's figures over [start, end): its spans clipped to the period and to `counts_from`
    (its install date), with what the disjoint, sorted `maintenance` windows cover moved to maintenance.

    An outage is counted in the period when any of its down time falls outside maintenance.
    """
    if counts_from is not None:
        start = max(start, counts_from)
    figures = Figures(devices=1)
    if end <= start:
        figures.devices = 0
        return figures
    for span in spans:
        part = clip(span, start, end)
        if part is None:
            continue
        seconds = _seconds(*part)
        muted = 0.0 if span.state == "maintenance" else covered_seconds(*part, maintenance)
        figures.seconds.add("maintenance", muted)
        figures.seconds.add(span.state, seconds - muted)
        if span.state == "down" and seconds - muted > 0:
            figures.outages.add(seconds - muted)
    return figures


def split_by_day(
    spans: Iterable[Span], first: date, last: date, *, counts_from: datetime | None = None
) -> dict[date, StateSeconds]:
    """Seconds by state for each local day of [first, last] (no maintenance windows: roll-ups keep the
    true states, and windows are laid over them when a report is asked for)."""
    period_start, period_end = period_bounds(first, last)
    lower = period_start if counts_from is None else max(period_start, counts_from)
    out: dict[date, StateSeconds] = {}
    for span in spans:
        part = clip(span, lower, period_end)
        if part is None:
            continue
        lo, hi = part
        day = local_day(lo)
        while lo < hi:
            boundary = min(hi, day_start(day + timedelta(days=1)))
            out.setdefault(day, StateSeconds()).add(span.state, _seconds(lo, boundary))
            lo, day = boundary, day + timedelta(days=1)
    return out
