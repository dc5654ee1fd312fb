"""The simulated fleet: one `SimDevice` per inventory device, its state, and the faults injected into it.

A device's healthy readings are a pure function of (seed, code, time): the same seed and the same
clock give the same values, and nothing drifts between two runs. Faults are an overlay on those
readings (`Fault` rows with a start and an optional end); `SimDevice.snapshot(now)` folds them into
the `DeviceState` that every protocol serves. Time comes from an injectable clock (Unix seconds),
so tests move it forward instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from monitor.simulator.faults import (
    GARBAGE_BY_PROTOCOL,
    OFFLINE_VARIANTS,
    SPEAKER_LINE_VARIANTS,
    Fault,
    FaultKind,
    GarbageVariant,
    applicable_faults,
)

#: A clock: now, in Unix seconds.
Clock = Callable[[], float]
#: Told of every fault raised or ended: (device, fault, raised, at).
FaultListener = Callable[["SimDevice", Fault, bool, float], None]

CHARGE_PCT_PER_S = 100 / (5 * 3600)  # an empty battery recharges in about five hours on mains
CONTENT_REFRESH_S = 900  # bulletin boards fetch their content every quarter of an hour
STALE_CONTENT_AGE_S = 3 * 3600  # a stale board shows content older than the 2 h threshold at once
DEFAULT_SLOW_DELAY_S = 10.0

_FIRMWARE = {
    "vietloa-ip200-http": "2.4.1",
    "vietloa-ip200-mqtt": "2.4.1",
    "daiviet-rx-snmp": "3.1.0",
    "tts-heartbeat": "1.0.3",
    "saobac-board-http": "1.8.0",
    "saobac-board-heartbeat": "1.8.0",
    "generic-mib2": "5.10.0-28-amd64",
}
_OLD_FIRMWARE = {"vietloa-ip200-http": "2.3.7", "vietloa-ip200-mqtt": "2.3.7", "saobac-board-http": "1.7.2"}


class ManualClock:
    """A clock that moves only when told to: for tests and replays."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward and return the new time."""
        self.now += seconds
        return self.now


def system_clock() -> float:
    """The real time, in Unix seconds."""
    return time.time()


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What a device says at one moment, faults included: the one source of every protocol's answer."""

    code: str
    reachable: bool
    unreachable_mode: str | None  # "timeout" (no answer) or "refused" (reset), when not reachable
    uptime_s: int
    power: str  # "mains" or "battery"
    battery_pct: int
    signal_dbm: int
    temperature_c: float
    volume_pct: int
    door: str  # "closed" or "open"
    amplifier: str  # "OK" or "FAIL"
    speaker_line: str  # "OK", "OPEN" or "SHORT"
    display: str  # "on" or "off"
    brightness_pct: int
    content_updated_at: int
    storage_used_pct: int
    if_oper_status: int  # 1 up, 2 down
    firmware: str
    slow_delay_s: float | None
    garbage: bool
    faults: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(eq=False)
class SimDevice:
    """One simulated device: who it is (from the inventory) and what state it is in.

    Build it with the identity fields; `Fleet` seeds the state. `host` is the loopback address it
    answers on (HTTP and SNMP), `http_path` the path of its status page.
    """

    code: str
    kind: str
    protocol: str
    address: str = ""
    port: int | None = None
    profile: str = ""
    interval_s: int = 60
    parent_code: str | None = None
    commune_code: str = ""
    district_code: str = ""
    credentials: str | None = None
    # State, seeded by `initialise`.
    boot_at: float = 0.0
    on_mains: bool = True
    battery_level: float = 100.0  # the level at `battery_since`
    battery_since: float = 0.0
    battery_life_s: float = 6 * 3600.0
    serial: str = ""
    firmware: str = ""
    faults: dict[FaultKind, Fault] = field(default_factory=dict)
    _signal_base: int = -80
    _temperature_base: float = 40.0
    _temperature_phase: float = 0.0
    _volume: int = 70
    _brightness: int = 80
    _content_phase: float = 0.0
    _storage: int = 40
    _noise_key: int = 0
    _garbage_counter: int = 0
    _listener: FaultListener | None = None

    # --- identity ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The loopback address the device answers on ('' for push devices)."""
        if self.protocol == "http":
            if "//" in self.address:
                return urlsplit(self.address).hostname or ""
            return self.address.split("/")[0].split(":")[0]
        if self.protocol == "snmp":
            return self.address
        return ""

    @property
    def http_path(self) -> str:
        """The path of the status page (GET), from the inventory URL."""
        if "//" in self.address:
            return urlsplit(self.address).path or "/status"
        return "/status"

    @property
    def snmp_v3(self) -> bool:
        """Whether the device speaks SNMPv3 (credentials `v3:USER:AUTH:PRIV`) rather than v2c."""
        return self.protocol == "snmp" and (self.credentials or "").startswith("v3:")

    @property
    def community(self) -> str:
        """The SNMP v2c community the device accepts."""
        return self.credentials if self.credentials and not self.snmp_v3 else "public"

    # --- state ------------------------------------------------------------------------------

    def initialise(self, seed: int, now: float) -> None:
        """Seed the healthy state from (seed, code): booted some days ago, on mains, readings nominal."""
        rng = random.Random(f"{seed}:{self.code}")
        self.boot_at = now - rng.uniform(3600, 60 * 86400)
        self.on_mains, self.battery_level, self.battery_since = True, 100.0, now
        self.battery_life_s = rng.uniform(4, 10) * 3600
        self._signal_base = rng.randint(-98, -62)
        self._temperature_base = round(rng.uniform(30, 48), 1)
        self._temperature_phase = rng.uniform(0, 86400)
        self._volume = rng.choice((50, 60, 65, 70, 75, 80, 90))
        self._brightness = rng.choice((60, 70, 80, 90, 100))
        self._content_phase = rng.uniform(0, CONTENT_REFRESH_S)
        self._storage = rng.randint(15, 70)
        self._noise_key = rng.getrandbits(32)
        self.firmware = _FIRMWARE.get(self.profile, "1.0.0")
        if self.profile in _OLD_FIRMWARE and rng.random() < 0.2:
            self.firmware = _OLD_FIRMWARE[self.profile]
        model = "SB43" if self.profile == "saobac-board-heartbeat" else "SB55"
        self.serial = f"{model}-{rng.randint(1, 999_999):06d}"
        self.faults.clear()
        self._garbage_counter = 0

    def battery_pct(self, now: float) -> float:
        """Battery level at `now`: charging on mains, draining over `battery_life_s` without."""
        elapsed = max(0.0, now - self.battery_since)
        if self.on_mains:
            return min(100.0, self.battery_level + CHARGE_PCT_PER_S * elapsed)
        return max(0.0, self.battery_level - 100.0 * elapsed / self.battery_life_s)

    def is_dead(self, now: float) -> bool:
        """Whether the battery ran out without mains: the device is off."""
        return not self.on_mains and self.battery_pct(now) <= 0.0

    def raise_fault(self, fault: Fault) -> None:
        """Start `fault` (replacing one of the same kind), with its side effects on power and uptime."""
        now = fault.since
        if fault.kind is FaultKind.REBOOT:  # one-shot: booted at the end of the fault (now, if it has none)
            self.boot_at = fault.until if fault.until is not None else now
            return
        if fault.kind is FaultKind.POWER_LOSS and self.on_mains:
            self.battery_level, self.battery_since, self.on_mains = self.battery_pct(now), now, False
        self.faults[fault.kind] = fault

    def end_fault(self, kind: FaultKind, at: float) -> Fault | None:
        """End the fault of `kind` at time `at` (mains back: the battery charges, a dead device boots)."""
        fault = self.faults.pop(kind, None)
        if fault is not None and kind is FaultKind.POWER_LOSS and not self.on_mains:
            level = self.battery_pct(at)
            if level <= 0.0:
                self.boot_at = at  # it died: it boots again when the power returns
            self.battery_level, self.battery_since, self.on_mains = level, at, True
        return fault

    def expire(self, now: float) -> list[Fault]:
        """End every fault whose time is up, at the time it was up; tell the listener."""
        ended: list[Fault] = []
        for kind, fault in list(self.faults.items()):
            if fault.until is not None and fault.until <= now:
                self.end_fault(kind, fault.until)
                ended.append(fault)
                if self._listener is not None:
                    self._listener(self, fault, False, fault.until)
        return ended

    def next_garbage(self, protocol: str) -> GarbageVariant:
        """The garbage to serve now: the injected variant if this protocol can produce it, else the next in turn."""
        allowed = GARBAGE_BY_PROTOCOL.get(protocol, GARBAGE_BY_PROTOCOL["http"])
        fault = self.faults.get(FaultKind.GARBAGE)
        if fault is not None and fault.variant in allowed:
            return GarbageVariant(fault.variant)
        self._garbage_counter += 1
        return allowed[(self._garbage_counter - 1) % len(allowed)]

    def garbage_rng(self, seed: int) -> random.Random:
        """A generator for random garbage, deterministic by seed, device and how many answers came before."""
        return random.Random(f"{seed}:{self.code}:garbage:{self._garbage_counter}")

    def snapshot(self, now: float) -> DeviceState:
        """What the device says at `now`."""
        if self.faults:
            self.expire(now)
        faults = self.faults
        dead = self.is_dead(now)
        offline = faults.get(FaultKind.OFFLINE)
        reachable = offline is None and not dead
        mode = None if reachable else ("timeout" if dead or offline is None else (offline.variant or "timeout"))
        noise = ((int(now // 60) * 2_654_435_761 + self._noise_key) >> 7) % 7 - 3
        temperature = self._temperature_base + 2.5 * math.sin(2 * math.pi * (now + self._temperature_phase) / 86400)
        line = faults.get(FaultKind.SPEAKER_LINE_FAULT)
        slow = faults.get(FaultKind.SLOW)
        content_at = now - (now - self._content_phase) % CONTENT_REFRESH_S
        stale = faults.get(FaultKind.CONTENT_STALE)
        if stale is not None:
            content_at = min(content_at, stale.since - STALE_CONTENT_AGE_S)
        return DeviceState(
            code=self.code,
            reachable=reachable,
            unreachable_mode=mode,
            uptime_s=max(0, int(now - self.boot_at)),
            power="mains" if self.on_mains else "battery",
            battery_pct=round(self.battery_pct(now)),
            signal_dbm=-112 + noise // 2 if FaultKind.LOW_SIGNAL in faults else self._signal_base + noise,
            temperature_c=78.5 if FaultKind.OVERHEAT in faults else round(temperature * 2) / 2,
            volume_pct=self._volume,
            door="open" if FaultKind.DOOR_OPEN in faults else "closed",
            amplifier="FAIL" if FaultKind.AMPLIFIER_FAULT in faults else "OK",
            speaker_line="OK" if line is None else (line.variant or "open").upper(),
            display="off" if FaultKind.SCREEN_OFF in faults else "on",
            brightness_pct=0 if FaultKind.SCREEN_OFF in faults else self._brightness,
            content_updated_at=int(content_at),
            storage_used_pct=98 if FaultKind.STORAGE_FULL in faults else self._storage,
            if_oper_status=2 if FaultKind.LINK_DOWN in faults else 1,
            firmware=self.firmware,
            slow_delay_s=None if slow is None else (slow.delay_s or DEFAULT_SLOW_DELAY_S),
            garbage=FaultKind.GARBAGE in faults,
            faults=tuple(sorted(kind.value for kind in faults)),
        )


class Fleet:
    """Every simulated device, indexed the ways the servers look them up, and the one place faults change.

    Listeners hear of every fault raised and ended (the trap sender, the HTTP listener's filter).
    """

    def __init__(self, devices: Iterable[SimDevice], *, seed: int = 1, clock: Clock = system_clock) -> None:
        self.seed = seed
        self.clock = clock
        self.devices: dict[str, SimDevice] = {}
        self.http_by_host: dict[str, SimDevice] = {}
        self.snmp_by_host: dict[str, SimDevice] = {}
        self.snmpv3_by_host: dict[str, SimDevice] = {}
        self.by_commune: dict[str, list[SimDevice]] = {}
        self.by_district: dict[str, list[SimDevice]] = {}
        self.troubled: set[str] = set()  # codes of the devices with at least one fault
        self._listeners: list[FaultListener] = []
        self._expiries: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        now = clock()
        for device in sorted(devices, key=lambda d: d.code):
            if device.code in self.devices:
                raise ValueError(f"device {device.code} is listed twice")
            device.initialise(seed, now)
            device._listener = self._notify
            self.devices[device.code] = device
            self.by_commune.setdefault(device.commune_code, []).append(device)
            self.by_district.setdefault(device.district_code, []).append(device)
            index = {"http": self.http_by_host, "snmp": self.snmp_by_host}.get(device.protocol)
            if device.snmp_v3:
                index = self.snmpv3_by_host
            if index is not None and device.host:
                if device.host in index:
                    raise ValueError(f"devices {index[device.host].code} and {device.code} share {device.host}")
                index[device.host] = device

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[SimDevice]:
        return iter(self.devices.values())

    def with_protocol(self, protocol: str) -> list[SimDevice]:
        """The devices that speak `protocol` (http, snmp, mqtt, heartbeat), by code."""
        return [d for d in self.devices.values() if d.protocol == protocol]

    def get(self, code: str) -> SimDevice:
        """The device of `code`, or KeyError."""
        try:
            return self.devices[code]
        except KeyError:
            raise KeyError(f"no simulated device {code!r}") from None

    def add_listener(self, listener: FaultListener) -> None:
        """Be told of every fault raised and ended."""
        self._listeners.append(listener)

    def _notify(self, device: SimDevice, fault: Fault, raised: bool, at: float) -> None:
        if device.faults:
            self.troubled.add(device.code)
        else:
            self.troubled.discard(device.code)
        for listener in self._listeners:
            listener(device, fault, raised, at)

    def inject(
        self,
        code: str,
        kind: FaultKind,
        *,
        for_s: float | None = None,
        variant: str | None = None,
        delay_s: float | None = None,
        source: str = "inject",
        now: float | None = None,
    ) -> Fault:
        """Raise a fault on a device now (for `for_s` seconds, or until cleared). ValueError if it cannot apply."""
        device = self.get(code)
        if kind not in applicable_faults(device.profile):
            raise ValueError(f"{kind.value} does not apply to {code} ({device.kind}, profile {device.profile})")
        if for_s is not None and for_s <= 0:
            raise ValueError("for_s must be positive (or null: until cleared)")
        now = self.clock() if now is None else now
        if kind is FaultKind.SPEAKER_LINE_FAULT and variant not in SPEAKER_LINE_VARIANTS:
            variant = random.Random(f"{self.seed}:{code}:{now}").choice(SPEAKER_LINE_VARIANTS)
        if kind is FaultKind.OFFLINE and variant not in OFFLINE_VARIANTS:
            variant = "timeout"
        if kind is FaultKind.GARBAGE and variant is not None:
            variant = GarbageVariant(variant).value  # ValueError for an unknown variant
        device.expire(now)
        if kind in device.faults:
            self._end(device, kind, now)
        fault = Fault(kind, now, None if for_s is None else now + for_s, variant, delay_s, source)
        device.raise_fault(fault)
        if kind is FaultKind.REBOOT:
            # A reboot is no lasting fault: the device is silent while it boots, then its uptime starts at 0.
            if for_s is not None:
                self.inject(code, FaultKind.OFFLINE, for_s=for_s, variant="timeout", source=source, now=now)
            return fault
        if fault.until is not None:
            heapq.heappush(self._expiries, (fault.until, next(self._sequence), code))
        self._notify(device, fault, True, now)
        return fault

    def _end(self, device: SimDevice, kind: FaultKind, now: float) -> Fault | None:
        fault = device.end_fault(kind, now)
        if fault is not None:
            self._notify(device, fault, False, now)
        return fault

    def clear(self, code: str, kind: FaultKind | None = None, *, now: float | None = None) -> list[Fault]:
        """End one fault kind of a device, or all of them; return what was ended."""
        device = self.get(code)
        now = self.clock() if now is None else now
        device.expire(now)
        kinds = [kind] if kind is not None else list(device.faults)
        return [fault for k in kinds if (fault := self._end(device, k, now)) is not None]

    def expire(self, now: float | None = None) -> None:
        """End every fault whose time is up (called by the simulator's ticker; reads do it lazily too)."""
        now = self.clock() if now is None else now
        while self._expiries and self._expiries[0][0] <= now:
            _, _, code = heapq.heappop(self._expiries)
            self.devices[code].expire(now)

    def snapshot(self, code: str) -> DeviceState:
        """The current state of the device of `code`."""
        return self.get(code).snapshot(self.clock())

    def unreachable_hosts(self, index: dict[str, SimDevice], mode: str = "timeout") -> set[str]:
        """Hosts of `index` that do not answer at all now (offline in `mode`, or dead on battery)."""
        now = self.clock()
        found = set()
        for code in list(self.troubled):
            device = self.devices[code]
            if index.get(device.host) is device:
                state = device.snapshot(now)
                if not state.reachable and state.unreachable_mode == mode:
                    found.add(device.host)
        return found
