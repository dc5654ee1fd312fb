"""The soak (issue 14): the whole service on real processes for half an hour, a collector killed -9 every few minutes.

    .venv/bin/python bench/soak.py                                   # 100,000 devices, 30 min, kill every 180 s
    .venv/bin/python bench/soak.py --devices 2000 --minutes 3 --kill-every 60    # a quick check, ~5 min
    .venv/bin/python bench/soak.py --devices 50000 --interval 300 --json out.json [--keep]

What runs, on loopback only: a private PostgreSQL (tests/postgres.py), migrated with `monitor db upgrade`, Lạng
Sơn's 200 communes (`monitor fleet init`) and `--devices` polled devices spread over them (half HTTP on
127.1.x.y, half SNMP v2c on 127.2.x.y: bench/_common.py's layout, at most 128,000); `monitor simulate run`
serving that inventory; `monitor serve --workers 1 --no-dispatcher`; `monitor dispatch` twice; three
`monitor collect --name cN` in the pool. Every `--kill-every` s one collector, in turn, gets SIGKILL and is
started again `--restart-after` s later under the same name (as systemd would); the shards it held are
watched every 0.5 s until each is held again under a new epoch (the takeover time).

Every 10 s: each collector's /metrics (polls by outcome, the scheduler's lateness histogram, shards held,
fenced observations), the database (device freshness, state changes, problems, tickets, the shards), each
process's VmRSS and CPU, and the machine's CPU (others' work on the same cores shows there).

Targets, pass/FAIL at the end (exit status 1 on a FAIL): no device declared down (the fleet is healthy:
every `down` is false); every takeover within two leases; no device observed before and then left unpolled
longer than lease + interval; every active problem with its ticket and every ticket with its problem; no
memory growth (VmRSS +10 % at most from the middle of the soak to its end, for the processes that live
through it). Polls done vs due is printed per minute (due = devices x 60 / interval).

Every process is stopped by its pid (SIGTERM, then SIGKILL), also on Ctrl-C, SIGTERM or an exception; the
children die with this process (PR_SET_PDEATHSIG), and a watchdog process stops whatever is left (PostgreSQL
included) if this one is killed, or after `--minutes` + 40 min in any case.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from _common import HTTP_PROFILES, SNMP_PROFILE, _host, cpu_seconds, memory_kib, split
from _summary import Figure, write_json

ROOT = Path(__file__).resolve().parents[1]
import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from tests.peers import free_port  # noqa: E402
from tests.postgres import PG_BIN, PostgresServer  # noqa: E402

SAMPLE_EVERY_S = 10.0
TICK_S = 0.5
COLLECTORS = ("c1", "c2", "c3")
LATENESS_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
GROWTH_LIMIT = 0.10
_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_libc = ctypes.CDLL(None, use_errno=True)

WATCHDOG = r"""
import os, shutil, signal, subprocess, sys, time
soak, deadline, pids, folder, keep = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def alive(pid):
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except PermissionError: pass
    return True
while alive(soak) and time.time() < deadline: time.sleep(1)
if alive(soak):  # over its time: it stops its processes itself on SIGTERM
    os.kill(soak, signal.SIGTERM); end = time.time() + 120
    while alive(soak) and time.time() < end: time.sleep(1)
    if alive(soak): os.kill(soak, signal.SIGKILL)
time.sleep(10)  # its children got SIGTERM with it (PR_SET_PDEATHSIG): a moment to stop cleanly
for line in open(pids).read().split(chr(10)):
    if line.strip():
        pid, started = (int(x) for x in line.split())
        try: now = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
        except OSError: continue
        if now == started: os.kill(pid, signal.SIGKILL)  # the same process, not a reused pid
subprocess.run(sys.argv[6:], capture_output=True, timeout=60)
if keep != "1": shutil.rmtree(folder, ignore_errors=True)
"""


class Interrupted(Exception):
    """SIGTERM or SIGINT reached the soak: stop everything and report what was measured."""


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _die_with_parent() -> None:
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the soak ends, however it ends


def code_version() -> tuple[str, str]:
    """The commit the processes run (they start from this checkout), with a word when `monitor/` differs from it;
    and a key of `monitor/`'s content, to tell whether it changed during the soak."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()

    changes = git("diff", "HEAD", "--", "monitor") + git("status", "--porcelain", "--", "monitor")
    label = (git("rev-parse", "--short", "HEAD") or "unknown") + (" + uncommitted changes" if changes else "")
    return label, git("rev-parse", "HEAD:monitor") + hashlib.sha1(changes.encode()).hexdigest()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_time(pid: int) -> int:
    """The process's start time in clock ticks (/proc/PID/stat field 22): tells a pid from its reuse."""
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[19])


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    return float(sum(values) - values[3] - values[4]), float(sum(values))


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A /metrics page as {family sample name: [(labels, value)]}; {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if (match := _LINE.match(line)) and not line.startswith("#"):
            found.setdefault(match[1], []).append((dict(_LABEL.findall(match[2] or "")), float(match[3])))
    return found


@dataclass
class CollectorReading:
    """What one collector's /metrics said: cumulative since its start."""

    polls_ok: float = 0.0
    polls_failed: float = 0.0
    lateness: list[float] = field(default_factory=lambda: [0.0] * len(LATENESS_BOUNDS))  # not cumulative
    shards_held: float = 0.0
    fenced: float = 0.0

    @classmethod
    def of(cls, metrics: dict[str, list[tuple[dict[str, str], float]]]) -> CollectorReading:
        found = cls()
        for labels, value in metrics.get("fleet_polls_total", []):
            if labels.get("protocol") in ("http", "snmp"):
                if labels.get("outcome") == "ok":
                    found.polls_ok += value
                else:
                    found.polls_failed += value
        cumulative = {
            float(labels["le"]): v for labels, v in metrics.get("fleet_scheduler_lateness_seconds_bucket", [])
        }
        before = 0.0
        for index, bound in enumerate(LATENESS_BOUNDS):
            value = cumulative.get(bound, before)
            found.lateness[index], before = value - before, value
        found.shards_held = sum(v for _, v in metrics.get("fleet_collector_shards_held", []))
        found.fenced = sum(v for _, v in metrics.get("fleet_collector_observations_fenced_total", []))
        return found

    def minus(self, other: CollectorReading) -> CollectorReading:
        return CollectorReading(
            self.polls_ok - other.polls_ok,
            self.polls_failed - other.polls_failed,
            [a - b for a, b in zip(self.lateness, other.lateness, strict=True)],
            self.shards_held,
            self.fenced - other.fenced,
        )


@dataclass
class Minute:
    """One minute of the soak."""

    minute: int
    polls_ok: float = 0.0
    polls_failed: float = 0.0
    lateness: list[float] = field(default_factory=lambda: [0.0] * len(LATENESS_BOUNDS))
    fenced: float = 0.0
    held_min: float | None = None  # the fewest shards the live collectors said they held, summed
    cpu_busy: float = 0.0  # the machine's busy and total jiffies (all cores, everyone's work)
    cpu_total: float = 0.0
    stale_max: int | None = None  # observed devices older than lease + interval (None: not judged yet)
    never_observed_max: int = 0
    oldest_s: float = 0.0
    kill: str = ""

    def p99_lateness(self) -> float | None:
        total = sum(self.lateness)
        if not total:
            return None
        seen = 0.0
        for bound, count in zip(LATENESS_BOUNDS, self.lateness, strict=True):
            seen += count
            if seen >= 0.99 * total:
                return bound
        return math.inf


@dataclass
class Kill:
    victim: str
    at_s: float
    shards: dict[int, int]  # shard -> epoch held at the kill
    takeover_s: float | None = None
    takers: dict[str, int] = field(default_factory=dict)
    restarted_at_s: float | None = None


@dataclass
class Child:
    """A process the soak started: its role ("c1", "web"...), which life of that role, the Popen."""

    role: str
    life: int
    process: subprocess.Popen[bytes]
    started: int  # /proc start time, against pid reuse
    log: Path
    rss_kib: list[tuple[float, int]] = field(default_factory=list)  # (seconds since t0, VmRSS)
    cpu_s: float = 0.0  # CPU seconds since t0 (or its start, if later)
    cpu_t0: float = 0.0
    metrics_port: int | None = None
    last: CollectorReading | None = None
    killed: bool = False
    spawned: float = field(default_factory=time.monotonic)


class Soak:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.pg = PostgresServer(folder / "pg")
        self.children: list[Child] = []
        self.descendants: dict[int, tuple[str, int]] = {}  # pid -> (name, start time)
        self.kills: list[Kill] = []
        self.minutes = [Minute(m) for m in range(args.minutes)]
        self.t0 = time.monotonic()
        self.stale_ids: set[int] = set()
        self.stale_oldest_s = 0.0
        self.polls_series: list[tuple[float, str, float]] = []  # (t, collector, polls since its last reading)
        self.epochs: dict[int, int] = {}
        self.moved_shards: set[int] = set()
        self.started = False
        self.states: dict[str, int] = {}
        self.problems: dict[str, int] = {}
        self.web_failures = 0
        self.rss_other: dict[str, list[tuple[float, int]]] = {}
        self.machine: list[tuple[float, float, float]] = []  # (t, busy, total)
        self.engine: sa.Engine | None = None
        self.ports = {"web": free_port(), "http": free_port(), "snmp": free_port(socket.SOCK_DGRAM)}
        self.env: dict[str, str] = {}
        self.pg_cpu_t0 = self.pg_cpu = 0.0

    # --- processes ------------------------------------------------------------------------------

    def spawn(self, role: str, *command: str, metrics_port: int | None = None) -> Child:
        life = sum(1 for c in self.children if c.role == role) + 1
        path = self.folder / f"{role}.{life}.log"
        with path.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "monitor", *command],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # Ctrl-C reaches the soak, which stops them in order
            )
        child = Child(role, life, process, start_time(process.pid), path, metrics_port=metrics_port)
        self.children.append(child)
        self._remember(process.pid, child.started)
        return child

    def _remember(self, pid: int, started: int) -> None:
        with (self.folder / "pids").open("a") as handle:
            handle.write(f"{pid} {started}\n")

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is None]

    def current(self, role: str) -> Child:
        return [c for c in self.children if c.role == role][-1]

    def stop(self, child: Child, grace_s: float = 15) -> None:
        if child.process.poll() is None:
            os.kill(child.process.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log(f"{child.role} did not stop within {grace_s:.0f} s: SIGKILL")
                os.kill(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=10)

    def stop_everything(self) -> None:
        order = {"c1": 0, "c2": 0, "c3": 0, "dispatcher-1": 1, "dispatcher-2": 1, "web": 2, "simulator": 3}
        for child in sorted(self.alive(), key=lambda c: order.get(c.role, 9)):
            try:
                self.stop(child)
            except Exception as exc:  # one that will not stop must not leave the others running
                log(f"stopping {child.role}: {exc}")
        for pid, (name, started) in self.descendants.items():
            try:
                if start_time(pid) == started:
                    log(f"{name} ({pid}) outlived its parent: SIGKILL")
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def wait_for(self, what: str, ready: Any, timeout_s: float, child: Child | None = None) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if child is not None and child.process.poll() is not None:
                raise RuntimeError(f"{child.role} ended ({child.process.returncode}): {tail(child.log)}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"not within {timeout_s:.0f} s: {what}" + (f"\n{tail(child.log)}" if child else ""))

    # --- set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        args = self.args
        self.pg.start()
        admin = sa.create_engine(self.pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE monitor"))
        admin.dispose()
        url = self.pg.url("monitor")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")} | {
            "MONITOR_DATABASE_URL": url,
            "MONITOR_DATA_DIR": str(self.folder / "data"),
            "MONITOR_SECRET_KEY": secrets.token_urlsafe(32),
            "MONITOR_SECRET_KEYS": Fernet.generate_key().decode(),
            "MONITOR_HOST": "127.0.0.1",
            "MONITOR_PORT": str(self.ports["web"]),
            "MONITOR_COLLECTOR_LEASE_S": f"{args.lease:g}",
        }
        for command in (("db", "upgrade"), ("fleet", "init", "--province", "lang-son", "--structure", "2020")):
            subprocess.run(
                [sys.executable, "-m", "monitor", *command],
                env=self.env,
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=300,
            )
        self.engine = sa.create_engine(url, pool_size=2)
        started = time.monotonic()
        self.insert_fleet()
        log(f"{args.devices:,} devices written in {time.monotonic() - started:.0f} s")

    def insert_fleet(self) -> None:
        assert self.engine is not None
        http, _snmp = split(self.args.devices)
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            communes = list(connection.execute(sa.text("SELECT code FROM communes ORDER BY code")).scalars())
            table = sa.Table("devices", sa.MetaData(), autoload_with=connection)
            rows: list[dict[str, Any]] = []
            for i in range(self.args.devices):
                commune = communes[i % len(communes)]
                if i < http:
                    profile = HTTP_PROFILES[i % 2]
                    kind = "bulletin_board" if profile.startswith("saobac") else "radio_cluster"
                    protocol, address, port = "http", f"http://{_host(1, i)}:{self.ports['http']}/status", None
                else:
                    profile, kind, protocol = SNMP_PROFILE, "radio_cluster", "snmp"
                    address, port = _host(2, i - http), self.ports["snmp"]
                rows.append(
                    {
                        "id": i + 1,
                        "code": f"{commune}-SK{i + 1:06d}",
                        "name": f"Thiết bị mô phỏng {i + 1}",
                        "kind": kind,
                        "commune_code": commune,
                        "profile": profile,
                        "protocol": protocol,
                        "address": address,
                        "port": port,
                        "interval_s": self.args.interval,
                        "active": True,
                        "installed_on": date(2024, 1, 1),
                        "search_text": "",
                        "vendor": "",
                        "model": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if len(rows) == 5000 or i == self.args.devices - 1:
                    connection.execute(table.insert(), rows)
                    rows = []
            connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('devices', 'id'), max(id)) FROM devices"))
        with self.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE devices"))

    def start_processes(self) -> None:
        args = self.args
        simulator = self.spawn(
            "simulator",
            "simulate",
            "run",
            "--http-port",
            str(self.ports["http"]),
            "--snmp-port",
            str(self.ports["snmp"]),
            "--snmp-v3-port",
            str(free_port(socket.SOCK_DGRAM)),
        )
        self.wait_for("the simulator serves", lambda: b"simulating" in simulator.log.read_bytes(), 600, simulator)
        web = self.spawn("web", "serve", "--workers", "1", "--no-dispatcher")
        self.wait_for("the web answers /healthz", self.web_answers, 180, web)
        for n in (1, 2):
            self.spawn(f"dispatcher-{n}", "dispatch")
        for name in COLLECTORS:
            self.start_collector(name, free_port())
        shares = args.shards // len(COLLECTORS)
        self.wait_for(
            "the three collectors share every shard",
            lambda: self.all_held() and all(len(self.held_by(n)) >= shares - 1 for n in COLLECTORS),
            300,
        )

    def start_collector(self, name: str, port: int, wait: bool = True) -> Child:
        child = self.spawn(name, "collect", "--name", name, "--metrics-port", str(port), metrics_port=port)
        if wait:
            self.wait_for(f"{name}'s /metrics answers", lambda: bool(scrape(port)), 300, child)
        return child

    def web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['web']}/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    # --- the database ---------------------------------------------------------------------------

    def shards(self) -> dict[int, tuple[str | None, int, bool]]:
        assert self.engine is not None
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT shard, owner, epoch, expires_at > now() AS current FROM collector_shards")
            ).all()
        found = {row.shard: (row.owner, row.epoch, bool(row.current)) for row in rows}
        for shard, (_owner, epoch, _current) in found.items():
            if self.epochs.get(shard, epoch) != epoch and self.started:
                self.moved_shards.add(shard)  # it changed hands during the soak (a takeover, a give-back)
            self.epochs[shard] = epoch
        return found

    def held_by(self, name: str) -> dict[int, int]:
        return {s: e for s, (owner, e, current) in self.shards().items() if owner == name and current}

    def all_held(self) -> bool:
        found = self.shards()
        return len(found) == self.args.shards and all(owner and current for owner, _e, current in found.values())

    def sample_database(self, t: float, minute: Minute | None) -> None:
        assert self.engine is not None
        limit_s = self.args.lease + self.args.interval
        with self.engine.connect() as connection:
            fresh = connection.execute(
                sa.text("""
                SELECT h.device_id, h.last_observation_at IS NULL AS never,
                       extract(epoch FROM now() - h.last_observation_at) AS age
                FROM devices d LEFT JOIN device_health h ON h.device_id = d.id
                WHERE d.active AND d.protocol IN ('http', 'snmp')
                  AND (h.last_observation_at IS NULL OR h.last_observation_at < now() - make_interval(secs => :s))
            """),
                {"s": limit_s},
            ).all()
            oldest = connection.execute(
                sa.text("SELECT coalesce(extract(epoch FROM now() - min(last_observation_at)), 0) FROM device_health")
            ).scalar_one()
            self.states = dict(
                connection.execute(sa.text("SELECT new_state, count(*) FROM state_changes GROUP BY new_state")).all()
            )
            problems = connection.execute(
                sa.text("""
                SELECT count(*) AS problems, count(*) FILTER (WHERE status = 'active') AS active,
                       count(ticket_code) AS with_ticket,
                       count(*) FILTER (WHERE status = 'active' AND ticket_code IS NULL AND source = 'health'
                                        AND activated_at < now() - interval '2 minutes') AS active_without_ticket,
                       count(*) FILTER (WHERE kind = 'collector') AS collector,
                       (SELECT count(*) FROM tickets) AS tickets,
                       (SELECT count(*) FROM tickets t WHERE NOT EXISTS
                           (SELECT 1 FROM alert_problems p WHERE p.key = t.problem_key)) AS tickets_without_problem
                FROM alert_problems""")
            ).one()
        self.problems = dict(problems._mapping)
        if minute is None:
            return
        minute.oldest_s = max(minute.oldest_s, float(oldest or 0))
        minute.never_observed_max = max(minute.never_observed_max, sum(1 for row in fresh if row.never))
        if t >= limit_s:  # the first sweep is over: an observed device older than lease + interval is stale
            stale = [row for row in fresh if not row.never]
            self.stale_ids.update(row.device_id for row in stale)
            self.stale_oldest_s = max([self.stale_oldest_s, *(float(row.age) for row in stale)])
            minute.stale_max = max(minute.stale_max or 0, len(stale))

    # --- the soak -------------------------------------------------------------------------------

    def pg_cpu_s(self) -> float:
        """CPU seconds of the PostgreSQL server and its current backends (ended backends are not counted)."""
        try:
            postmaster = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        total = 0.0
        for pid in [postmaster, *children_of(postmaster)]:
            with contextlib.suppress(OSError):  # a backend that just ended
                total += cpu_seconds(pid)
        return total

    def now(self) -> float:
        return time.monotonic() - self.t0

    def minute_at(self, t: float) -> Minute | None:
        index = int(t // 60)
        return self.minutes[index] if 0 <= index < len(self.minutes) else None

    def sample(self) -> None:
        t = self.now()
        minute = self.minute_at(min(t, len(self.minutes) * 60) - 0.001)  # the minute of the 10 s this sample closes
        for child in self.alive():
            self.read_process(child, t, minute)
        if minute is not None:
            held = sum(c.last.shards_held for c in self.alive() if c.last is not None)
            minute.held_min = held if minute.held_min is None else min(minute.held_min, held)
        self.sample_database(t, minute)
        self.shards()
        if not self.web_answers():
            self.web_failures += 1
        busy, total = machine_cpu()
        if minute is not None and self.machine:
            minute.cpu_busy += busy - self.machine[-1][1]
            minute.cpu_total += total - self.machine[-1][2]
        self.machine.append((t, busy, total))
        self.pg_cpu = self.pg_cpu_s() - self.pg_cpu_t0

    def read_process(self, child: Child, t: float, minute: Minute | None) -> None:
        try:
            child.rss_kib.append((t, memory_kib(child.process.pid)[0]))
            child.cpu_s = cpu_seconds(child.process.pid) - child.cpu_t0
        except OSError:
            return
        for pid in children_of(child.process.pid):  # the web's metrics child
            name = f"{child.role}/child"
            try:
                if pid not in self.descendants:
                    self.descendants[pid] = (name, start_time(pid))
                    self._remember(pid, self.descendants[pid][1])
                self.rss_other.setdefault(name, []).append((t, memory_kib(pid)[0]))
            except OSError:
                pass
        if child.metrics_port is not None:
            self.read_metrics(child, minute)

    def read_metrics(self, child: Child, minute: Minute | None) -> None:
        assert child.metrics_port is not None
        metrics = scrape(child.metrics_port)
        if not metrics:
            return
        reading = CollectorReading.of(metrics)
        delta = reading.minus(child.last or CollectorReading())
        child.last = reading
        self.polls_series.append((round(self.now(), 1), child.role, delta.polls_ok + delta.polls_failed))
        if minute is not None:
            minute.polls_ok += delta.polls_ok
            minute.polls_failed += delta.polls_failed
            minute.fenced += delta.fenced
            minute.lateness = [a + b for a, b in zip(minute.lateness, delta.lateness, strict=True)]

    def kill(self, victim: str) -> Kill:
        child = self.current(victim)
        self.read_metrics(child, self.minute_at(self.now()))  # keep what it counted so far
        held = self.held_by(victim)
        os.kill(child.process.pid, signal.SIGKILL)
        child.killed = True
        killed = Kill(victim, self.now(), held)
        child.process.wait(timeout=10)
        log(f"kill -9 {victim} (pid {child.process.pid}) holding {len(held)} shards")
        if (minute := self.minute_at(killed.at_s)) is not None:
            minute.kill = victim
        self.kills.append(killed)
        return killed

    def taken_over(self, killed: Kill) -> bool:
        found = self.shards()
        for shard, epoch in killed.shards.items():
            owner, now_epoch, current = found[shard]
            if not (owner and current and now_epoch > epoch):
                return False
        killed.takers = {}
        for shard in killed.shards:
            owner = found[shard][0] or "?"
            killed.takers[owner] = killed.takers.get(owner, 0) + 1
        return True

    def run(self) -> None:
        args = self.args
        end_s = args.minutes * 60
        kill_times = [
            k * args.kill_every
            for k in range(1, 10_000)
            if args.kill_every and k * args.kill_every + 2 * args.lease + args.restart_after + 10 <= end_s
        ]
        self.t0, self.started = time.monotonic(), True
        self.pg_cpu_t0 = self.pg_cpu_s()
        for child in self.alive():  # polls and CPU before t0 are the start-up's
            child.cpu_t0 = cpu_seconds(child.process.pid)
            if child.metrics_port is not None:
                child.last = CollectorReading.of(scrape(child.metrics_port))
        next_sample, watching, restart = 0.0, None, None
        while (t := self.now()) < end_s:
            if kill_times and t >= kill_times[0]:
                kill_times.pop(0)
                victim = COLLECTORS[len(self.kills) % len(COLLECTORS)]
                watching = self.kill(victim)
                restart = (watching.at_s + args.restart_after, victim)
            if restart is not None and t >= restart[0]:
                port = self.current(restart[1]).metrics_port or free_port()
                self.start_collector(restart[1], port, wait=False)  # the takeover watch goes on meanwhile
                self.kills[-1].restarted_at_s = self.now()
                restart = None
            if watching is not None:
                if self.taken_over(watching):
                    watching.takeover_s = self.now() - watching.at_s
                    log(
                        f"{watching.victim}'s {len(watching.shards)} shards held again after "
                        f"{watching.takeover_s:.1f} s by {watching.takers}"
                    )
                    watching = None
                elif t - watching.at_s > 6 * args.lease:
                    log(f"{watching.victim}'s shards not all held again within {6 * args.lease:.0f} s")
                    watching = None
            if t >= next_sample:
                self.sample()
                next_sample += SAMPLE_EVERY_S
                for child in self.children:
                    if child.process.poll() is not None and not child.killed:
                        raise RuntimeError(f"{child.role} ended by itself: {tail(child.log)}")
            time.sleep(TICK_S)
        self.sample()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- the report -------------------------------------------------------------------------------------


def rss_lives(soak: Soak) -> list[tuple[str, list[tuple[float, int]]]]:
    """Each process's VmRSS series from a minute after it started (its start-up is not growth): every life of
    a collector that lived three minutes or more, then the others."""
    found: list[tuple[str, list[tuple[float, int]]]] = []
    for child in sorted(soak.children, key=lambda c: (c.role not in COLLECTORS, c.role, c.life)):
        series = [(t, kib) for t, kib in child.rss_kib if t >= child.spawned - soak.t0 + 60]
        if len(series) >= 2 and series[-1][0] - series[0][0] >= 120:
            several = sum(1 for c in soak.children if c.role == child.role) > 1
            found.append((f"{child.role} life {child.life}" if several else child.role, series))
    found += sorted(soak.rss_other.items())
    return found


def report(soak: Soak, finished: bool) -> tuple[list[str], list[Figure], dict[str, Any]]:
    args = soak.args
    due = args.devices * 60 / args.interval
    limit_s = args.lease + args.interval
    columns = ("min", "done", "due", "failed", "p99 late", f"stale>{limit_s:.0f}s", "never", "oldest s", "fenced",
               "held", "cores", "kill")  # fmt: skip
    rows: list[tuple[str, ...]] = [columns]
    calm_done = calm_due = all_done = 0.0
    cores = os.cpu_count() or 1
    for m in soak.minutes:
        done = m.polls_ok + m.polls_failed
        if not done and m.stale_max is None and not m.oldest_s:
            continue
        p99 = m.p99_lateness()
        rows.append((
            f"{m.minute + 1}", f"{done:,.0f}", f"{due:,.0f}", f"{m.polls_failed:,.0f}",
            "-" if p99 is None else (f"≤{p99 * 1000:.0f}ms" if p99 < 1 else f"≤{p99:g}s"),
            "-" if m.stale_max is None else f"{m.stale_max:,}", f"{m.never_observed_max:,}", f"{m.oldest_s:.0f}",
            f"{m.fenced:,.0f}", "-" if m.held_min is None else f"{m.held_min:.0f}",
            "-" if not m.cpu_total else f"{m.cpu_busy / m.cpu_total * cores:.1f}", m.kill,
        ))  # fmt: skip
        all_done += done
        if not m.kill and done and m.minute > 0:  # the first minute is the start-up's hand-over
            calm_done, calm_due = calm_done + done, calm_due + due
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [" | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.append("")
    for k in soak.kills:
        took = "not within 6 leases" if k.takeover_s is None else f"{k.takeover_s:.1f} s"
        restarted = "" if k.restarted_at_s is None else f", restarted at +{k.restarted_at_s - k.at_s:.0f} s"
        lines.append(
            f"kill -9 {k.victim} at {k.at_s / 60:5.2f} min: {len(k.shards)} shards held again after {took}"
            f" (by {', '.join(f'{o} {n}' for o, n in sorted(k.takers.items()))}{restarted})"
        )
    killed = {shard for k in soak.kills for shard in k.shards}
    in_killed = sum(1 for device_id in soak.stale_ids if device_id % args.shards in killed)
    in_moved = sum(1 for device_id in soak.stale_ids if device_id % args.shards in soak.moved_shards)
    lines.append(
        f"observed devices unpolled > {limit_s:g} s: {len(soak.stale_ids):,} distinct; in shards a kill freed "
        f"{in_killed:,}, in shards that changed hands at all {in_moved:,} ({len(soak.moved_shards)} shards); the "
        f"longest {soak.stale_oldest_s:.0f} s without an observation"
    )
    takeovers = [k.takeover_s for k in soak.kills]
    states, problems = soak.states, soak.problems
    lines.append("")
    lines.append(
        f"state changes: {', '.join(f'{s} {n:,}' for s, n in sorted(states.items()))} "
        f"(a first observation is unknown -> up)"
    )
    lines.append(
        f"problems {problems.get('problems', 0)} (active {problems.get('active', 0)}, with a ticket "
        f"{problems.get('with_ticket', 0)}, collector {problems.get('collector', 0)}); tickets "
        f"{problems.get('tickets', 0)}; active without a ticket {problems.get('active_without_ticket', 0)}; "
        f"tickets without a problem {problems.get('tickets_without_problem', 0)}"
    )
    lines.append(f"web /healthz failures: {soak.web_failures}")
    lines.append("")
    lines.append(
        f"{'VmRSS MB':<20} | {'measured':>9} | {'start':>6} | {'middle':>6} | {'end':>6} | start->end | mid->end"
    )
    growths: list[float] = []
    for name, series in rss_lives(soak):
        start, middle, end = series[0][1] / 1024, series[len(series) // 2][1] / 1024, series[-1][1] / 1024
        whole = series[-1][0] - series[0][0] >= 0.8 * len(soak.minutes) * 60
        if whole:
            growths.append(end / middle - 1)
        lived = f"{series[0][0] / 60:.0f}-{series[-1][0] / 60:.0f} min"
        lines.append(
            f"{name:<20} | {lived:>9} | {start:>6.0f} | {middle:>6.0f} | {end:>6.0f} | {end / start - 1:>+9.1%} | "
            f"{end / middle - 1:>+7.1%}"
        )
    cpu_s: dict[str, float] = {}
    for child in soak.children:
        role = "dispatchers" if child.role.startswith("dispatcher") else child.role
        cpu_s[role] = cpu_s.get(role, 0.0) + child.cpu_s
    cpu_s["postgres"] = soak.pg_cpu
    if len(soak.machine) >= 2:
        (_t1, b1, n1), (t2, b2, n2) = soak.machine[0], soak.machine[-1]
        busy = (b2 - b1) / (n2 - n1) * cores
        lines.append(
            f"CPU over the soak, cores: machine busy {busy:.2f} of {cores}; this soak's processes "
            + ", ".join(f"{r} {s / max(1.0, t2):.2f}" for r, s in sorted(cpu_s.items()))
            + " (the rest is others' work)"
        )
    down = states.get("down", 0)
    checks = [
        Figure("false downs (healthy fleet)", f"{down}", "", "0", down == 0),
        Figure(
            "takeover after kill -9, worst",
            "-"
            if not takeovers
            else ("none" if None in takeovers else f"{max(t for t in takeovers if t is not None):.1f} s"),
            f"{len(takeovers)} kills",
            f"≤ {2 * args.lease:g} s (two leases)",
            None if not takeovers else all(t is not None and t <= 2 * args.lease for t in takeovers),
        ),
        Figure(
            f"devices observed then unpolled > {limit_s:g} s",
            f"{len(soak.stale_ids):,}",
            f"worst at once {max((m.stale_max or 0) for m in soak.minutes):,}",
            "0",
            not soak.stale_ids,
        ),
        Figure(
            "active problems without a ticket / tickets without a problem",
            f"{problems.get('active_without_ticket', 0)} / {problems.get('tickets_without_problem', 0)}",
            f"{problems.get('problems', 0)} problems, {problems.get('tickets', 0)} tickets",
            "0 / 0",
            not problems.get("active_without_ticket") and not problems.get("tickets_without_problem"),
        ),
        Figure(
            "VmRSS growth, middle to end, worst whole-soak process",
            "-" if not growths else f"{max(growths):+.1%}",
            "",
            f"≤ +{GROWTH_LIMIT:.0%}",
            None if not growths else max(growths) <= GROWTH_LIMIT,
        ),
        Figure(
            "polls done / due, minutes 2+ without a kill",
            "-" if not calm_due else f"{calm_done / calm_due:.1%}",
            f"{due:,.0f} due a minute; whole soak {all_done / (due * len(soak.minutes)):.1%}",
            "",
            None,
        ),
    ]
    lines.append("")
    for check in checks:
        verdict = "" if check.met is None else (" pass" if check.met else " FAIL")
        target = f" (target {check.target})" if check.target else ""
        lines.append(
            f"{check.what}: {check.figure}{target}{verdict}" + (f" [{check.reference}]" if check.reference else "")
        )
    if not finished:
        lines.append("the soak was cut short: these figures cover what ran")
    details = {
        "args": vars(args),
        "finished": finished,
        "minutes": [asdict(m) | {"p99_lateness_s": m.p99_lateness()} for m in soak.minutes],
        "kills": [asdict(k) for k in soak.kills],
        "polls_series": soak.polls_series,
        "stale_device_ids": sorted(soak.stale_ids)[:1000],
        "state_changes": states,
        "problems": problems,
        "rss_kib": {f"{c.role}#{c.life}": c.rss_kib for c in soak.children} | soak.rss_other,
        "cpu_s": cpu_s,
        "machine_cpu": soak.machine,
        "web_failures": soak.web_failures,
    }
    return lines, checks, details


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--kill-every", type=float, default=180, help="seconds between kills (0: none)")
    parser.add_argument("--restart-after", type=float, default=10, help="seconds before a killed collector restarts")
    parser.add_argument(
        "--interval", type=int, default=None, help="devices' interval_s (default 300 from 20,000 devices, 60 below)"
    )
    parser.add_argument("--lease", type=float, default=15.0, help="MONITOR_COLLECTOR_LEASE_S")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, database) afterwards")
    args = parser.parse_args()
    args.interval = args.interval or (300 if args.devices >= 20_000 else 60)
    args.shards = 64  # MONITOR_COLLECTOR_SHARDS' default
    split(args.devices)  # refuses more than the loopback layout holds
    if not (PG_BIN / "initdb").exists():
        print(f"PostgreSQL 15's server binaries are needed in {PG_BIN}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    os.chmod(folder, 0o755)  # the cluster's folder inside belongs to postgres
    soak = Soak(args, folder)
    (folder / "pids").touch()
    pg_stop = [str(PG_BIN / "pg_ctl"), "-D", str(soak.pg.data), "-m", "immediate", "-w", "stop"]
    if os.geteuid() == 0:
        pg_stop = ["runuser", "-u", "postgres", "--", *pg_stop]
    deadline = time.time() + args.minutes * 60 + 40 * 60
    watchdog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WATCHDOG,
            str(os.getpid()),
            str(deadline),
            str(folder / "pids"),
            str(folder),
            "1" if args.keep else "0",
            *pg_stop,
        ],
        start_new_session=True,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    conditions = (
        f"{args.devices:,} devices ({split(args.devices)[0]:,} HTTP, {split(args.devices)[1]:,} SNMP v2c) "
        f"over 200 communes, interval {args.interval} s, lease {args.lease:g} s, {args.shards} shards, "
        f"3 collectors, 2 dispatchers, web, PostgreSQL 15; {args.minutes} min, kill -9 every "
        f"{args.kill_every:g} s (restart after {args.restart_after:g} s); {os.cpu_count()} cores"
    )
    version, content = code_version()
    conditions += f"; code {version}"
    log(f"soak in {folder}: {conditions}")
    finished = False
    try:
        soak.set_up()
        soak.start_processes()
        log(f"every process up, the pool shared: the soak runs {args.minutes} min")
        soak.run()
        finished = True
    except Exception as exc:  # Interrupted too: stop everything, report what ran
        log(f"stopped early: {exc.__class__.__name__}: {exc}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("stopping every process")
        soak.stop_everything()
        lines, checks, details = report(soak, finished)
        if soak.engine is not None:
            soak.engine.dispose()
        try:
            soak.pg.stop("fast")
        except Exception as exc:
            log(f"stopping PostgreSQL: {exc}")
        os.kill(watchdog.pid, signal.SIGTERM)
        watchdog.wait(timeout=10)
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if code_version()[1] != content:  # a collector started again after a change runs the new code
        conditions += f" (monitor/ changed during the soak, to {code_version()[0]}: the figures mix both)"
    print(f"\nsoak: {conditions}")
    print("\n".join(lines))
    if args.json:
        write_json(args.json, "soak.py", conditions, checks, details)
    return 0 if finished and all(c.met is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
