"""Benchmark of the API on PostgreSQL with two web workers: a district's ticket queue at 1,000,000 tickets, under wrk.

    .venv/bin/python bench/bench_api_pg.py [--tickets 1000000] [--connections 50] [--duration 10]
                                           [--churn 20] [--keep DIR] [--profile] [--json FILE]

1. A throw-away PostgreSQL 15 cluster (tests/postgres.py: loopback, fsync off), the demo's province and fleet
   (`seed_demo`, seed 1: 1,844 devices), the demo's people (`seed_cast`), `--tickets` tickets loaded like
   bench_tickets.py (COPY, 1.5 % open, indexes built after), then `VACUUM ANALYZE` as autovacuum would.
   `--keep DIR` builds it in DIR and keeps it; a later run with the same DIR and `--tickets` reuses it.
2. `monitor serve --workers N --no-dispatcher` on a free loopback port; Cao Lộc's officer (`caoloc`) signs in
   and wrk (`-t2 -c{connections} -d{duration}s --latency`, after 3 s of warm-up) asks for their queue,
   `GET /api/v1/tickets?limit=50` with the bearer token. Beside it, in the same run: `/healthz` (HTTP and one
   `SELECT 1`), the queue from one connection (one request's own latency), the queue with one worker, the
   50 connections as one client address, and the queue while another connection changes one of
   the district's tickets `--churn` times a second (20: far more than a province's people do; each change
   makes every worker read the queue again instead of giving the answer it kept, monitor/web/answers.py).
3. CPU during each measured run, per request: the web processes (supervisor and workers), PostgreSQL (every
   backend), wrk itself, and the whole machine (which includes anybody else's work on it).
4. `--profile`: once more, the queue with two workers while py-spy samples each worker; where their time goes,
   by package and by function (profiling slows them: those figures are not the measured ones).

50 clients are 50 people: wrk connects from 127.0.0.1, as a reverse proxy on the same machine does, and each
request carries one of 50 client addresses in `X-Forwarded-For` (a wrk script), which uvicorn takes as the
client's address from a proxy it trusts (127.0.0.1 by default, FORWARDED_ALLOW_IPS). The service runs with its
default settings: the web guard's per-address share (MONITOR_WEB_CLIENT_MAX_ACTIVE, half the threads) then
applies to each person, as in production. Beside it, the same 50 connections as one address (an office behind
one NAT, or a proxy that passes no address): the guard then works that address's requests a few at a time.

Target (issue 14): the queue at >= 1,000 requests/s with p99 <= 50 ms from 50 clients, two web workers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from bench_api import PEOPLE, parse_wrk, write_people_script  # noqa: E402
from bench_tickets import Place, load_tickets  # noqa: E402

from monitor.auth.cast import DEMO_PASSWORD, seed_cast  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.inventory.demo import seed_demo  # noqa: E402
from monitor.inventory.models import Commune, Device, District  # noqa: E402
from monitor.text import fold  # noqa: E402
from tests.peers import free_port, stop_process  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

OFFICER = "caoloc"  # Cán bộ phụ trách Cao Lộc (district 183), from monitor.auth.cast
QUEUE = "/api/v1/tickets?limit=50"
WARMUP_S = 3
DEFAULT_PG_THREADS = 4  # the service's default web_threads on PostgreSQL (monitor/config.py)
PG_THREADS = DEFAULT_PG_THREADS  # `--threads`
TARGET_RPS, TARGET_P99_MS = 1000.0, 50.0
PY_SPY = ("py-spy", "/tmp/tools/bin/py-spy")
_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the database ---------------------------------------------------------------------------------


def build(url: str, tickets: int) -> None:
    """The demo's province, fleet and people, `tickets` tickets, then VACUUM ANALYZE."""
    engine = make_engine(load_settings(database_url=url))
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            seed_demo(session=session, seed=1)
            seed_cast(session=session)
        with engine.connect() as connection:
            query = (
                sa.select(Device.id, Device.code, Device.commune_code)
                .add_columns(Commune.district_code, Commune.name, District.name)
                .join(Commune, Commune.code == Device.commune_code)
                .join(District, District.code == Commune.district_code)
            )
            places = [Place(i, code, c, d, fold(f"{cn} {dn}")) for i, code, c, d, cn, dn in connection.execute(query)]
        log(f"{len(places):,} devices; loading {tickets:,} tickets")
        seconds = load_tickets(engine, tickets, places)
        log(f"loaded in {seconds:.0f} s; VACUUM ANALYZE")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
            connection.execute(sa.text("CHECKPOINT"))  # a kept cluster then restarts without replaying the load
    finally:
        engine.dispose()


def start_database(folder: Path, tickets: int) -> tuple[PostgresServer, str]:
    """The cluster in `folder`: started again when it holds `tickets` tickets already, else built afresh."""
    marker = folder / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("tickets") == tickets:
        log(f"reusing the database in {folder}")
        server = PostgresServer(folder).start_again()
        kept = make_engine(load_settings(database_url=server.url("bench")))
        upgrade(kept)  # kept by an older checkout: brought to this code's migrations
        kept.dispose()
        return server, server.url("bench")
    if (folder / "data").exists():
        shutil.rmtree(folder / "data")
    marker.unlink(missing_ok=True)
    server = PostgresServer(folder).start()
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("CREATE DATABASE bench"))
    admin.dispose()
    build(server.url("bench"), tickets)
    marker.write_text(json.dumps({"tickets": tickets}))
    return server, server.url("bench")


# --- CPU of process trees and of the machine --------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """`root` and every live process descended from it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process tree, its reaped children included."""
    total = 0
    for pid in process_tree(root):
        if (fields := _stat(pid)) is not None:
            total += sum(int(v) for v in fields[11:15])
    return total / _TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores spent on anything (all of /proc/stat's time but idle and iowait)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICKS


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


# --- the web service and wrk ------------------------------------------------------------------------


@dataclass
class Run:
    """One measured wrk run and the CPU spent during it (milliseconds per request)."""

    name: str
    workers: int
    connections: int
    client_max_active: int
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    web_cpu_ms: float
    postgres_cpu_ms: float
    wrk_cpu_ms: float
    machine_cpu_ms: float
    seconds: float


class Service:
    """`monitor serve --workers N --no-dispatcher` on a free loopback port, stopped by its pid."""

    def __init__(self, folder: Path, url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.client_max_active = max(1, PG_THREADS // 2)  # the service's default (monitor/config.py)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env |= {
            "MONITOR_DATABASE_URL": url,
            "MONITOR_SECRET_KEY": secrets.token_hex(32),
            "MONITOR_HOST": "127.0.0.1",
            "MONITOR_PORT": str(self.port),
            "MONITOR_DATA_DIR": str(folder),
            "MONITOR_COOKIE_SECURE": "false",
        }
        if PG_THREADS != DEFAULT_PG_THREADS:
            env["MONITOR_WEB_THREADS"] = str(PG_THREADS)
        self.log_path = folder / f"serve-{workers}.log"
        with self.log_path.open("wb") as out:
            command = [sys.executable, "-m", "monitor", "serve", "--no-dispatcher", "--workers", str(workers)]
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                    if answer.status == 200 and len(self.worker_pids()) >= workers:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"monitor serve did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the workers (`monitor-web-N`), or the process itself alone."""
        if self.workers == 1:
            return [self.process.pid]
        pids = []
        for pid in process_tree(self.process.pid)[1:]:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.spawn" in command or b"spawn_main" in command:
                pids.append(pid)
        return pids

    def sign_in(self, username: str) -> str:
        body = json.dumps({"username": username, "password": DEMO_PASSWORD}).encode()
        request = urllib.request.Request(f"{self.base}/api/v1/auth/login", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.load(answer)["token"])

    def stop(self) -> None:
        stop_process(self.process, grace_s=15)


def wrk_command(token: str, connections: int, people: Path | None = None) -> list[str]:
    """wrk with the bearer token; `people`: the script that gives each request one of PEOPLE addresses."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", "-H", f"Authorization: Bearer {token}"]
    return [*command, "-s", str(people)] if people is not None else command


class TicketChurn:
    """A writer that changes one of the officer's district's open tickets `per_second` times a second (a plain
    UPDATE, as any process would write), on its own thread and connection: every change moves the tickets'
    generation, so each web worker makes the queue again after it instead of giving the kept one."""

    def __init__(self, url: str, per_second: float) -> None:
        self.engine = sa.create_engine(url)
        self.interval = 1 / per_second
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ticket-churn", daemon=True)

    def _run(self) -> None:
        change = sa.text(
            "UPDATE tickets SET title = title WHERE id = (SELECT id FROM tickets WHERE district_code = '183' "
            "AND status IN ('new', 'acknowledged', 'in_progress', 'waiting') ORDER BY resolve_due_at LIMIT 1)"
        )
        while not self.stopping.wait(self.interval):
            with self.engine.begin() as connection:
                connection.execute(change)

    def __enter__(self) -> TicketChurn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.engine.dispose()


def measure(
    name: str,
    service: Service,
    postgres: int,
    path: str,
    token: str,
    connections: int,
    duration: int,
    people: Path | None = None,
) -> Run:
    """A warm-up, then the measured wrk run with the CPU of each party read around it (`people`: the wrk script
    giving the requests PEOPLE addresses)."""
    command = wrk_command(token, connections, people)
    url = service.base + path
    subprocess.run([*command, f"-d{WARMUP_S}s", url], check=True, capture_output=True, timeout=WARMUP_S + 60)
    web0, pg0, wrk0, machine0 = (
        tree_cpu_seconds(service.process.pid),
        tree_cpu_seconds(postgres),
        children_cpu_seconds(),
        machine_busy_seconds(),
    )
    started = time.monotonic()
    done = subprocess.run(
        [*command, f"-d{duration}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    seconds = time.monotonic() - started
    web, pg = tree_cpu_seconds(service.process.pid) - web0, tree_cpu_seconds(postgres) - pg0
    wrk, machine = children_cpu_seconds() - wrk0, machine_busy_seconds() - machine0
    figures = parse_wrk(done.stdout)
    per = 1000 / max(figures["requests"], 1)
    run = Run(
        name,
        service.workers,
        connections,
        service.client_max_active,
        web_cpu_ms=web * per,
        postgres_cpu_ms=pg * per,
        wrk_cpu_ms=wrk * per,
        machine_cpu_ms=machine * per,
        seconds=seconds,
        **figures,
    )
    log(
        f"{name}: {run.rps:,.0f} req/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, non-2xx {run.non_2xx}, "
        f"CPU ms/request web {run.web_cpu_ms:.2f} + PostgreSQL {run.postgres_cpu_ms:.2f} + wrk {run.wrk_cpu_ms:.2f} "
        f"(machine {run.machine_cpu_ms:.2f})"
    )
    return run


# --- where the time goes: py-spy ------------------------------------------------------------------------


# A sample's thread, told by a frame of its stack: the event loop (HTTP, middleware, the guard, sending), or
# a request thread (monitor/web/bodies.py: the route's database work and its response).
THREAD_ROLES = {"event loop": "event_loop_run (monitor/runtime.py", "request threads": "(monitor/web/bodies.py"}
WRAPPERS = ("event_loop_run", "_pool_worker", "in_one_thread.<locals>.run.<locals>.work")


def py_spy() -> str | None:
    for candidate in PY_SPY:
        if found := shutil.which(candidate):
            return found
    return None


def profile(service: Service, token: str, args: argparse.Namespace, folder: Path, people: Path) -> dict[str, Any]:
    """py-spy on every worker while wrk asks for the queue: the samples of the thread holding the GIL (`--gil`,
    i.e. the interpreter's CPU time; waits on PostgreSQL and idle threads are not in them), by package and by
    the service's functions."""
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy not found"}
    command = wrk_command(token, args.connections, people)
    subprocess.run([*command, f"-d{WARMUP_S}s", service.base + QUEUE], check=True, capture_output=True, timeout=60)
    spies = []
    for pid in service.worker_pids():
        out = folder / f"py-spy-{pid}.txt"
        spy = [
            binary,
            "record",
            "-p",
            str(pid),
            "-d",
            str(args.duration),
            "-f",
            "raw",
            "-r",
            "200",
            "-o",
            str(out),
            "--gil",
        ]
        spies.append((out, subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    wrk = subprocess.run(
        [*command, f"-d{args.duration}s", "--latency", service.base + QUEUE],
        check=True,
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
    )
    for _out, spy in spies:
        spy.wait(timeout=args.duration + 60)
    stacks: Counter[str] = Counter()
    for out, _spy in spies:
        if out.exists():
            for line in out.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if count.isdigit():
                    stacks[stack] += int(count)
    total = sum(stacks.values())
    if not total:
        return {"error": "py-spy recorded nothing (ptrace not permitted?)"}
    threads: dict[str, Counter[str]] = {role: Counter() for role in THREAD_ROLES}
    functions: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        role = next((r for r, marker in THREAD_ROLES.items() if marker in stack), "other")
        threads.setdefault(role, Counter())[_package(frames[-1])] += count
        for frame in {f for f in frames if "(monitor/" in f and not any(w in f for w in WRAPPERS)}:
            functions[frame.rsplit(":", 1)[0] + ")"] += count
    figures = parse_wrk(wrk.stdout)
    return {
        "samples": total,
        "rps_while_profiled": figures["rps"],
        "threads": {
            role: {"share": sum(c.values()) / total, "self": {k: v / total for k, v in c.most_common()}}
            for role, c in threads.items()
            if c
        },
        "monitor_functions": {k: v / total for k, v in functions.most_common(20)},
    }


def _package(frame: str) -> str:
    """`execute (sqlalchemy/orm/session.py:2351)` -> `sqlalchemy`; `wait (threading.py:359)` -> `threading`."""
    match = re.search(r"\(([^():]+)(?::\d+)?\)$", frame)
    where = match[1] if match else frame
    return where.split("/")[0].removesuffix(".py")


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured wrk run")
    parser.add_argument("--workers", type=int, default=2, help="web processes of the measured configuration")
    parser.add_argument("--threads", type=int, default=DEFAULT_PG_THREADS, help="MONITOR_WEB_THREADS of each worker")
    parser.add_argument("--keep", type=Path, help="build the database in this folder and keep it; reuse it if there")
    parser.add_argument(
        "--churn", type=float, default=20.0, help="ticket changes a second in the reference run that writes"
    )
    parser.add_argument("--profile", action="store_true", help="then sample the workers with py-spy")
    parser.add_argument("--no-references", action="store_true", help="the measured run alone (a quick look)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    global PG_THREADS
    PG_THREADS = args.threads
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk (make bench installs it)")

    work = Path(tempfile.mkdtemp(prefix="bench-api-pg-"))
    # PostgreSQL's folder is not under `work`: mkdtemp folders are private, the cluster runs as postgres.
    pg_folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-api-pg-db-"))
    pg_folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    load = os.getloadavg()[0]
    server: PostgresServer | None = None
    runs: list[Run] = []
    profiled: dict[str, Any] = {}
    people = write_people_script(work)
    try:
        server, url = start_database(pg_folder, args.tickets)
        postgres = postmaster_pid(server)
        churned = f"reference: queue, its tickets changing {args.churn:g} times a second"
        # (web workers, [(run, path, connections, one address per person?)])
        plan: list[tuple[int, list[tuple[str, str, int, bool]]]] = [
            (
                args.workers,
                [
                    (f"queue, {args.workers} workers", QUEUE, args.connections, True),
                    (churned, QUEUE, args.connections, True),
                    ("reference: /healthz", "/healthz", args.connections, True),
                    ("reference: queue, 1 connection", QUEUE, 1, True),
                    ("reference: queue, the 50 connections from one address", QUEUE, args.connections, False),
                ],
            ),
            (1, [("reference: queue, 1 worker", QUEUE, args.connections, True)]),
        ]
        if args.no_references:
            plan = [(args.workers, plan[0][1][:1])]
        for workers, measured in plan:
            service = Service(work, url, workers)
            try:
                token = service.sign_in(OFFICER)
                log(f"monitor serve --workers {workers} (pid {service.process.pid}, workers {service.worker_pids()})")
                for name, path, connections, as_people in measured:
                    script = people if as_people else None
                    with TicketChurn(url, args.churn) if name == churned else contextlib.nullcontext():
                        runs.append(measure(name, service, postgres, path, token, connections, args.duration, script))
                if args.profile and workers == args.workers:
                    log("profiling the workers with py-spy")
                    profiled = profile(service, token, args, args.keep or work, people)
            finally:
                service.stop()
    finally:
        if server is not None:
            if args.keep:  # a kept cluster restarts without replaying what the runs wrote
                engine = sa.create_engine(server.url("bench"))
                with contextlib.suppress(sa.exc.SQLAlchemyError), engine.connect() as connection:
                    connection.execute(sa.text("CHECKPOINT"))
                engine.dispose()
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(pg_folder, ignore_errors=True)
    elapsed = time.monotonic() - started
    conditions = (
        f"PostgreSQL 15 (fsync off), {args.tickets:,} tickets, demo fleet; monitor serve --workers {args.workers}; "
        f"wrk -t2 -c{args.connections} -d{args.duration}s, one of {PEOPLE} client addresses a request "
        "(X-Forwarded-For); "
        f"default settings; {os.cpu_count()} cores, load average {load:.1f} at start"
    )
    print_report(runs, profiled, args, conditions, elapsed)
    if args.json:
        details = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": [asdict(r) for r in runs]}
        details["profile"] = profiled
        write_json(args.json, "bench_api_pg.py", conditions, summary_figures(runs, args), details)


def summary_figures(runs: list[Run], args: argparse.Namespace) -> list[Figure]:
    by_name = {r.name: r for r in runs}
    queue = by_name.get(f"queue, {args.workers} workers")
    if queue is None:
        return []
    churned = f"reference: queue, its tickets changing {args.churn:g} times a second"
    refs = [by_name[n] for n in (churned, "reference: /healthz", "reference: queue, 1 worker") if n in by_name]
    clean = queue.non_2xx == 0 and queue.socket_errors == 0
    what = f"officer's queue GET {QUEUE}, {args.connections} clients, {args.workers} workers"
    reference_rps = "; ".join(f"{r.name.removeprefix('reference: ')} {r.rps:,.0f}" for r in refs)
    reference_p99 = "; ".join(f"{r.name.removeprefix('reference: ')} {r.p99_ms:.1f} ms" for r in refs)
    single = by_name.get("reference: queue, 1 connection")
    if single is not None:
        reference_p99 += f"; 1 connection {single.p99_ms:.1f} ms"
    return [
        Figure(f"{what}: req/s", f"{queue.rps:,.0f}", reference_rps, f"≥ {TARGET_RPS:,.0f}", queue.rps >= TARGET_RPS),
        Figure(
            f"{what}: p99",
            f"{queue.p99_ms:.1f} ms",
            reference_p99,
            f"≤ {TARGET_P99_MS:.0f} ms",
            queue.p99_ms <= TARGET_P99_MS and clean,
        ),
        Figure(
            f"{what}: CPU per request (web + PostgreSQL + wrk)",
            f"{queue.web_cpu_ms:.2f} + {queue.postgres_cpu_ms:.2f} + {queue.wrk_cpu_ms:.2f} ms",
            next(
                (f"/healthz {r.web_cpu_ms:.2f} + {r.postgres_cpu_ms:.2f} ms" for r in refs if "healthz" in r.name), ""
            ),
        ),
        ceiling(queue, what),
    ]


def ceiling(queue: Run, what: str) -> Figure:
    """The most these cores could answer at that CPU per request, each core busy all the time.

    The target is a budget: 50 closed-loop clients see a mean latency of clients / throughput (Little's law),
    so a p99 of 50 ms needs at least 1,000 req/s, and 1,000 req/s on these cores leaves cores / 1,000 s of CPU
    for each request, its web worker, PostgreSQL and wrk together (2 ms on 2 cores).
    """
    cores = os.cpu_count() or 1
    spent_ms = queue.web_cpu_ms + queue.postgres_cpu_ms + queue.wrk_cpu_ms
    best = cores * 1000 / spent_ms if spent_ms > 0 else 0.0
    budget_ms = cores * 1000 / TARGET_RPS
    return Figure(
        f"{what}: ceiling on {cores} cores at {spent_ms:.2f} ms CPU a request",
        f"{best:,.0f} req/s",
        f"budget {budget_ms:.2f} ms a request",
        f"≥ {TARGET_RPS:,.0f}",
        best >= TARGET_RPS,
    )


def print_report(
    runs: list[Run], profiled: dict[str, Any], args: argparse.Namespace, conditions: str, elapsed: float
) -> None:
    print()
    print(f"API on PostgreSQL: {conditions}; took {elapsed / 60:.1f} min")
    print(
        f"The {PEOPLE} client addresses stand for {PEOPLE} people behind a reverse proxy on this machine; "
        "'per-address share' is MONITOR_WEB_CLIENT_MAX_ACTIVE, each address's requests worked on at once."
    )
    print()
    print(
        "| run | workers | conns | per-address share | req/s | p50 ms | p90 ms | p99 ms | non-2xx | sock err "
        "| CPU ms/req: web | PostgreSQL | wrk | machine |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.name} | {r.workers} | {r.connections} | {r.client_max_active} | {r.rps:,.0f} | {r.p50_ms:.1f} "
            f"| {r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.non_2xx} | {r.socket_errors} | {r.web_cpu_ms:.2f} "
            f"| {r.postgres_cpu_ms:.2f} | {r.wrk_cpu_ms:.2f} | {r.machine_cpu_ms:.2f} |"
        )
    print()
    for figure in summary_figures(runs, args):
        if figure.target:
            verdict = "met" if figure.met else "NOT met"
            print(f"target {figure.what}: {figure.figure} (target {figure.target}): {verdict}")
    if profiled:
        print()
        if "error" in profiled:
            print(f"py-spy: {profiled['error']}")
            return
        print(
            f"Where the workers' CPU goes (py-spy --gil: {profiled['samples']:,} samples of the thread holding the "
            f"GIL; {profiled['rps_while_profiled']:,.0f} req/s while profiled):"
        )
        for role, split in profiled["threads"].items():
            packages = ", ".join(f"{k} {v:.0%}" for k, v in list(split["self"].items())[:10])
            print(f"  {role}: {split['share']:.0%} of the samples; by package of the innermost frame: {packages}")
        print("  the service's functions (inclusive):")
        for name, share in profiled["monitor_functions"].items():
            print(f"    {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
