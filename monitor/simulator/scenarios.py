"""Scenarios: small objects that put faults on a timeline, composable and deterministic by the seed.

A scenario is written `NAME[:TARGET][:KEY=VALUE...]` (the CLI's `--scenario`), e.g.
`random-faults`, `random-faults:per_day=4`, `uplink-down:06613`, `uplink-down:06613:after=5m:for=30m:mode=refused`,
`power-cut:180`, `flapping:06613-CL01:period=30s`, `slow:06613-CL02:delay=15s`, `garbage:06613-BB1:variant=huge_body`,
`reboot:06613-ST:after=10m`. Without a target, one is drawn from the fleet with the seed.

Every scenario only schedules `Fleet.inject` calls at given times; the simulator's ticker runs
what is due by its clock, and a test moves a `ManualClock` and calls `Simulator.tick()`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from monitor.simulator.faults import NATURAL_FAULTS_BY_KIND, FaultKind, GarbageVariant, applicable_faults
from monitor.simulator.fleet import Fleet, SimDevice

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_ACTIONS_PER_TICK = 200_000  # a timeline running late catches up, but never loops forever


def parse_duration(text: str) -> float:
    """Seconds in `90`, `30s`, `10m`, `2h`, `1d`, `250ms`; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 90, 30s, 10m, 2h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Timeline:
    """Actions due at given times, run in order of time by `run_due(now)`."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Callable[[float], None]]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, action: Callable[[float], None], label: str = "") -> None:
        """Run `action(when)` once the clock reaches `when`."""
        heapq.heappush(self._heap, (when, next(self._sequence), label, action))

    def run_due(self, now: float) -> int:
        """Run every action due by `now` (actions may schedule more); return how many ran."""
        ran = 0
        while self._heap and self._heap[0][0] <= now and ran < MAX_ACTIONS_PER_TICK:
            when, _, _, action = heapq.heappop(self._heap)
            action(when)
            ran += 1
        return ran

    def upcoming(self, limit: int = 20) -> list[tuple[float, str]]:
        """The next actions: (time, label)."""
        return [(when, label) for when, _, label, _ in heapq.nsmallest(limit, self._heap)]


@dataclass
class ScenarioContext:
    """What a scenario schedules against."""

    fleet: Fleet
    timeline: Timeline
    seed: int
    start: float


class Scenario(ABC):
    """A pattern of faults over time. Subclasses declare `name` and parse their own options."""

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, target: str | None = None, **options: str) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise ValueError(
                f"scenario {self.name}: unknown option(s) {', '.join(sorted(unknown))} (allowed: {allowed})"
            )
        self.target = target
        self.raw_options = options
        self.after_s = parse_duration(options.get("after", "0"))
        self.for_s: float | None = parse_duration(options["for"]) if "for" in options else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"

    @property
    def spec(self) -> str:
        """The scenario written back as its spec."""
        parts = [self.name, *([self.target] if self.target else [])]
        return ":".join(parts + [f"{key}={value}" for key, value in sorted(self.raw_options.items())])

    def rng(self, seed: int) -> random.Random:
        """This scenario's own random generator (same seed and spec: same draws)."""
        return random.Random(f"{seed}:{self.spec}")

    @abstractmethod
    def schedule(self, context: ScenarioContext) -> None:
        """Put the scenario's faults on the timeline; ValueError if its target is not in the fleet."""

    # helpers for subclasses

    def _device(self, context: ScenarioContext, candidates: list[SimDevice]) -> SimDevice:
        if self.target is not None:
            if self.target not in context.fleet.devices:
                raise ValueError(f"scenario {self.name}: no device {self.target!r} in the fleet")
            return context.fleet.devices[self.target]
        if not candidates:
            raise ValueError(f"scenario {self.name}: the fleet has no device it can apply to")
        return self.rng(context.seed).choice(candidates)

    def _inject_at(
        self,
        context: ScenarioContext,
        when: float,
        code: str,
        kind: FaultKind,
        *,
        variant: str | None = None,
        delay_s: float | None = None,
    ) -> None:
        def action(at: float) -> None:
            with contextlib.suppress(ValueError):  # a fault the device's format cannot show: skipped
                context.fleet.inject(
                    code, kind, for_s=self.for_s, variant=variant, delay_s=delay_s, source=self.name, now=at
                )

        context.timeline.at(when, action, f"{self.name}: {kind.value} on {code}")


class Steady(Scenario):
    """Nothing goes wrong."""

    name = "steady"

    def schedule(self, context: ScenarioContext) -> None:
        return None


class RandomFaults(Scenario):
    """Faults of each device's kind, at random times (on average `per_day` per device per day)."""

    name = "random-faults"
    options = ("per_day", "window")

    def schedule(self, context: ScenarioContext) -> None:
        per_day = float(self.raw_options.get("per_day", "1"))
        window = parse_duration(self.raw_options.get("window", "1h"))
        if per_day < 0 or window <= 0:
            raise ValueError("random-faults: per_day must be >= 0 and window > 0")
        devices = sorted(context.fleet, key=lambda d: d.code)

        def plan(index: int) -> Callable[[float], None]:
            def run(at: float) -> None:
                rng = random.Random(f"{context.seed}:{self.spec}:{index}")
                probability = per_day * window / 86400
                for device in devices:
                    kinds = [
                        k for k in NATURAL_FAULTS_BY_KIND.get(device.kind, ()) if k in applicable_faults(device.profile)
                    ]
                    if not kinds or rng.random() >= probability:
                        continue
                    kind = rng.choice(kinds)
                    when = at + rng.uniform(0, window)
                    if kind is FaultKind.REBOOT:
                        duration = rng.uniform(30, 120)
                    elif kind is FaultKind.POWER_LOSS:
                        duration = rng.uniform(1800, 12 * 3600)
                    else:
                        duration = rng.uniform(600, 3 * 3600)
                    context.timeline.at(
                        when, self._injector(context, device.code, kind, duration), f"{kind} {device.code}"
                    )
                context.timeline.at(at + window, plan(index + 1), f"{self.name}: plan window {index + 1}")

            return run

        context.timeline.at(context.start + self.after_s, plan(0), f"{self.name}: plan window 0")

    def _injector(
        self, context: ScenarioContext, code: str, kind: FaultKind, duration: float
    ) -> Callable[[float], None]:
        def action(at: float) -> None:
            with contextlib.suppress(ValueError):
                context.fleet.inject(code, kind, for_s=duration, source=self.name, now=at)

        return action


class Flapping(Scenario):
    """A device that is unreachable for `period`, reachable for `period`, and so on."""

    name = "flapping"
    options = ("period", "after")

    def schedule(self, context: ScenarioContext) -> None:
        period = parse_duration(self.raw_options.get("period", "30s"))
        if period <= 0:
            raise ValueError("flapping: period must be positive")
        device = self._device(context, [d for d in context.fleet if d.protocol in ("http", "snmp")])

        def flap(at: float) -> None:
            context.fleet.inject(device.code, FaultKind.OFFLINE, for_s=period, source=self.name, now=at)
            context.timeline.at(at + 2 * period, flap, f"{self.name}: {device.code} down")

        context.timeline.at(context.start + self.after_s, flap, f"{self.name}: {device.code} down")


class UplinkDown(Scenario):
    """Every device of a commune unreachable: connections time out (mode=timeout) or are reset (mode=refused)."""

    name = "uplink-down"
    options = ("after", "for", "mode")

    def schedule(self, context: ScenarioContext) -> None:
        mode = self.raw_options.get("mode", "timeout")
        if mode not in ("timeout", "refused"):
            raise ValueError("uplink-down: mode must be timeout or refused")
        communes = sorted(code for code in context.fleet.by_commune if code)
        commune = self.target or (self.rng(context.seed).choice(communes) if communes else None)
        if commune not in context.fleet.by_commune:
            raise ValueError(f"uplink-down: no device in commune {commune!r}")
        for device in context.fleet.by_commune[commune]:
            self._inject_at(context, context.start + self.after_s, device.code, FaultKind.OFFLINE, variant=mode)


class PowerCut(Scenario):
    """Mains lost in a whole district: every device on battery, draining, unreachable when it is empty."""

    name = "power-cut"
    options = ("after", "for")

    def schedule(self, context: ScenarioContext) -> None:
        districts = sorted(code for code in context.fleet.by_district if code)
        district = self.target or (self.rng(context.seed).choice(districts) if districts else None)
        if district not in context.fleet.by_district:
            raise ValueError(f"power-cut: no device in district {district!r}")
        for device in context.fleet.by_district[district]:
            self._inject_at(context, context.start + self.after_s, device.code, FaultKind.POWER_LOSS)


class Slow(Scenario):
    """A device that answers only after `delay` (beyond the collector's timeout)."""

    name = "slow"
    options = ("delay", "after", "for")

    def schedule(self, context: ScenarioContext) -> None:
        delay = parse_duration(self.raw_options.get("delay", "10s"))
        device = self._device(context, [d for d in context.fleet if d.protocol in ("http", "snmp")])
        self._inject_at(context, context.start + self.after_s, device.code, FaultKind.SLOW, delay_s=delay)


class Garbage(Scenario):
    """A device that answers garbage (`variant`, or each variant of its protocol in turn)."""

    name = "garbage"
    options = ("variant", "after", "for")

    def schedule(self, context: ScenarioContext) -> None:
        variant = self.raw_options.get("variant")
        if variant is not None:
            GarbageVariant(variant)
        device = self._device(context, sorted(context.fleet, key=lambda d: d.code))
        self._inject_at(context, context.start + self.after_s, device.code, FaultKind.GARBAGE, variant=variant)


class Reboot(Scenario):
    """A device reboots: silent for `for` seconds (default 0), then its uptime starts again from 0."""

    name = "reboot"
    options = ("after", "for")

    def schedule(self, context: ScenarioContext) -> None:
        device = self._device(context, sorted(context.fleet, key=lambda d: d.code))
        self._inject_at(context, context.start + self.after_s, device.code, FaultKind.REBOOT)


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (Steady, RandomFaults, Flapping, UplinkDown, PowerCut, Slow, Garbage, Reboot)
}


def parse_scenario(spec: str) -> Scenario:
    """A scenario from its spec `NAME[:TARGET][:KEY=VALUE...]`; ValueError with the reason otherwise."""
    name, *parts = [part.strip() for part in spec.strip().split(":")]
    cls = SCENARIOS.get(name)
    if cls is None:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    target = None
    options: dict[str, str] = {}
    for position, part in enumerate(parts):
        if "=" in part:
            key, _, value = part.partition("=")
            options[key.strip()] = value.strip()
        elif position == 0 and part:
            target = part
        else:
            raise ValueError(f"scenario {spec!r}: {part!r} should read KEY=VALUE")
    try:
        return cls(target, **options)
    except ValueError as exc:
        raise ValueError(f"scenario {spec!r}: {exc}") from None
