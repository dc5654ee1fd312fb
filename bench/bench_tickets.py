"""Benchmark of the tickets service on SQLite and PostgreSQL: the district queue under load, and a storm.

    .venv/bin/python bench/bench_tickets.py [--tickets 1000000] [--clients 50] [--think-ms 0] [--storm 10000]
                                            [--backend both] [--clients-as threads|processes] [--json FILE]

1. Loads `--tickets` tickets across the 11 districts of Lạng Sơn (1.5 % open, the rest resolved or closed over
   ten years), by executemany on SQLite and COPY on PostgreSQL, indexes built after the load.
2. The queue: `--clients` clients, each with its own engine and connection, list one district's open tickets
   by due time (the officer's view: `list_tickets(open_queue, district_codes={district})`, 50 a page, one
   request in four following the keyset cursor), back to back or with a `--think-ms` pause. The clients run
   as threads of this process (as the issue asks) and as processes: with CPython's GIL, 50 busy threads
   measure the interpreter's scheduling more than the service. Latency is measured around the service call.
   Target: p99 <= 50 ms. The query plan is printed (EXPLAIN) to show the index serving it.
3. The storm: `--storm` new problems at once through `open_or_update_tickets`, by W writers committing every
   B problems (1 × 1000 on SQLite, which has one writer at a time; 8 × 500 on PostgreSQL); the time is until
   every ticket is committed. Target: <= 5 s. One transaction per problem is measured too, for its rate.

PostgreSQL is a throw-away cluster started like the tests do (tests/postgres.py), fsync off. Everything
(clients, server, storm writers) shares this machine's CPUs: read the figures with its core count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.health.states import FaultCode  # noqa: E402
from monitor.inventory.models import Commune, Device, District  # noqa: E402
from monitor.inventory.units import init_province, load_units  # noqa: E402
from monitor.priority import Priority  # noqa: E402
from monitor.text import fold  # noqa: E402
from monitor.tickets import service  # noqa: E402
from monitor.tickets.choices import ProblemScope, TicketSource  # noqa: E402
from monitor.tickets.models import Ticket, TicketCounter  # noqa: E402
from monitor.tickets.sla import DEFAULT_TARGETS  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
FIRST = datetime(2016, 1, 1, tzinfo=UTC)
OPEN_SHARE = 0.015
RESOLVED_SHARE = 0.01
KINDS = [f.value for f in FaultCode]
QUEUE_KINDS, STORM_KINDS = KINDS[:5], KINDS[5:]  # open tickets of the load and the storm never share a problem
OPEN_MIX = ["new"] * 4 + ["acknowledged"] * 2 + ["in_progress"] * 2 + ["waiting", "reopened"]
PRIORITIES = [Priority.P1] * 1 + [Priority.P2] * 4 + [Priority.P3] * 4 + [Priority.P4] * 1
COLUMNS = [c.name for c in Ticket.__table__.columns]  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
DEVICES_PER_COMMUNE = 20
# Storm writers and problems per transaction. SQLite has one writer at a time: more writers only queue,
# and a queue of 500-problem transactions can outwait the 5 s busy timeout. PostgreSQL writers overlap.
STORM_WRITERS = {"sqlite": (1, 1000), "postgres": (8, 500)}
POLICY = service.TicketPolicy()
TARGET_P99_MS, TARGET_STORM_S = 50.0, 5.0


@dataclass(frozen=True)
class Place:
    device_id: int
    device_code: str
    commune: str
    district: str
    words: str


# --- database ------------------------------------------------------------------------------------


def seed_places(engine: Engine) -> list[Place]:
    """The province (2020 structure) and 20 devices per commune (4,000)."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(sa.select(Commune)).scalars())  # type: ignore[call-overload]
        districts = {d.code: d.name for d in session.exec(sa.select(District)).scalars()}  # type: ignore[call-overload]
        rows = []
        for commune in communes:
            for n in range(DEVICES_PER_COMMUNE):
                kind, tag = ("radio_cluster", "CL") if n < 15 else ("bulletin_board", "BT")
                rows.append(
                    {
                        "code": f"{commune.code}-{tag}{n:02d}",
                        "name": f"{tag} {n}",
                        "kind": kind,
                        "commune_code": commune.code,
                        "vendor": "",
                        "model": "",
                        "profile": "p",
                        "protocol": "heartbeat",
                        "address": "",
                        "interval_s": 60,
                        "active": True,
                        "search_text": "",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
        session.execute(sa.insert(Device.__table__), rows)  # type: ignore[attr-defined]
    with Session(engine) as session:
        places = []
        query = sa.select(Device.id, Device.code, Device.commune_code, Commune.district_code, Commune.name).join(
            Commune, Commune.code == Device.commune_code
        )
        for device_id, code, commune, district, commune_name in session.execute(query):
            places.append(Place(device_id, code, commune, district, fold(f"{commune_name} {districts[district]}")))
        return places


def ticket_rows(count: int, places: Sequence[Place], seed: int = 1) -> Iterator[dict[str, Any]]:
    """`count` tickets in creation order, codes numbered per year; open ones recent and on distinct problems."""
    rng = random.Random(seed)
    pairs = [(p, k) for p in places for k in QUEUE_KINDS]
    rng.shuffle(pairs)
    open_count = min(int(count * OPEN_SHARE), len(pairs))
    resolved_count = int(count * RESOLVED_SHARE)
    span = (datetime(2026, 10, 1, tzinfo=UTC) - FIRST).total_seconds()
    old = sorted(rng.random() * span for _ in range(count - open_count))
    recent = sorted(rng.random() * 50 * 86400 for _ in range(open_count))
    numbers: dict[int, int] = {}
    open_left = open_count
    for index in range(count):
        is_open = index >= count - open_count
        if is_open:
            created = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=recent[index - (count - open_count)])
            place, kind = pairs[open_left - 1]
            open_left -= 1
            status = rng.choice(OPEN_MIX)
        else:
            created = FIRST + timedelta(seconds=old[index])
            place, kind = rng.choice(places), rng.choice(KINDS)
            status = "resolved" if index >= count - open_count - resolved_count else "closed"
        priority = rng.choice(PRIORITIES)
        targets = DEFAULT_TARGETS[priority]
        year = created.year
        numbers[year] = numbers.get(year, 0) + 1
        code = f"LS-{year}-{numbers[year]:06d}"
        title = f"{place.device_code}: {kind}"
        resolved = None if is_open else created + timedelta(hours=rng.uniform(0.5, 60))
        closed = resolved + timedelta(days=3) if resolved is not None and status == "closed" else None
        yield {
            "id": index + 1,
            "code": code,
            "title": title,
            "description": "",
            "problem_key": f"device:{place.device_code}:{kind}",
            "scope": "device",
            "scope_code": place.device_code,
            "kind": kind,
            "device_id": place.device_id,
            "commune_code": place.commune,
            "district_code": place.district,
            "priority": priority.value,
            "source": "auto",
            "status": status,
            "assignee_id": None,
            "details": "{}",
            "occurred_at": created,
            "created_at": created,
            "last_reported_at": created,
            "acknowledged_at": None if status in ("new", "reopened") else created + timedelta(minutes=20),
            "resolved_at": resolved,
            "closed_at": closed,
            "reopened_at": created if status == "reopened" else None,
            "reopen_count": int(status == "reopened"),
            "sla_started_at": created,
            "ack_due_at": created + targets.acknowledge,
            "resolve_due_at": created + targets.resolve,
            "sla_breached": False,
            "breached_at": None,
            "escalated_at": None,
            "paused_since": created + timedelta(hours=1) if status == "waiting" else None,
            "paused_seconds": 0,
            "previous_ticket_id": None,
            "schedule_id": None,
            "auto_resolved": resolved is not None,
            "parts_cost_vnd": rng.choice([0, 0, 150_000, 450_000]),
            "labour_cost_vnd": rng.choice([0, 200_000]),
            "parts_replaced": "[]",
            "search_text": f"{code.lower()} {title.lower()} {place.words}",
            "updated_at": created,
        }


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
    return value


def load_tickets(engine: Engine, count: int, places: Sequence[Place]) -> float:
    """Bulk-load the tickets with the indexes dropped, then build them; returns the seconds taken."""
    started = time.perf_counter()
    indexes = list(TICKETS.indexes)
    with engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    rows = ticket_rows(count, places)
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with driver.cursor() as cursor:
                # A bulk load as pg_restore does it: without the row triggers (the data generation's would queue
                # one event per row until the commit), the generation moved once after (monitor/generations.py).
                cursor.execute("SET session_replication_role = replica")
                with cursor.copy(f"COPY tickets ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in COLUMNS])
                cursor.execute("SET session_replication_role = DEFAULT")
                cursor.execute("UPDATE data_generations SET tickets = tickets + 1")
        else:
            insert = f"INSERT INTO tickets ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            batch: list[list[Any]] = []
            for row in rows:
                batch.append([_sqlite_value(row[c]) for c in COLUMNS])
                if len(batch) == 50_000:
                    driver.executemany(insert, batch)
                    batch.clear()
            driver.executemany(insert, batch)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection)
        counters = connection.execute(
            sa.text("SELECT substr(code, 4, 4) AS year, count(*) FROM tickets GROUP BY substr(code, 4, 4)")
        )
        connection.execute(
            sa.insert(TicketCounter.__table__),  # type: ignore[attr-defined]
            [{"prefix": "LS", "year": int(year), "last_number": n} for year, n in counters],
        )
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT setval('tickets_id_seq', (SELECT max(id) FROM tickets))"))
        if engine.dialect.name == "sqlite":
            connection.execute(sa.text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        # VACUUM as well: it sets the hint bits and visibility map now, so that neither the first readers
        # nor autovacuum rewrite a million fresh rows while the clients are being measured.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE) tickets"))
            connection.execute(sa.text("ANALYZE"))
    return time.perf_counter() - started


# --- the queue -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def queue_query_plan(engine: Engine, district: str) -> str:
    """EXPLAIN of the listing query exactly as the service sends it."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            page = service.list_tickets(
                service.TicketFilters.open_queue(), session=session, district_codes=frozenset({district})
            )
            assert page.next_cursor is not None
            service.list_tickets(
                service.TicketFilters.open_queue(),
                session=session,
                district_codes=frozenset({district}),
                after=page.next_cursor,
            )
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]  # the second page: keyset condition included
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


@dataclass
class QueueFigures:
    requests: int
    seconds: float
    latencies_ms: list[float]
    single_ms: float


def _client(
    url: str, n: int, requests: int, districts: Sequence[str], think_ms: float, barrier: Any, results: Any
) -> None:
    """One client: its own engine (one connection), warmed up, then `requests` listings; latencies to `results`."""
    engine = make_engine(load_settings(database_url=url))
    rng = random.Random(n)
    mine: list[float] = []
    try:
        for warm in range(3):  # the connection, the compiled-statement cache
            one_request(engine, districts[(n + warm) % len(districts)], rng)
        barrier.wait()
        for _ in range(requests):
            started = time.perf_counter()
            one_request(engine, rng.choice(districts), rng)
            mine.append((time.perf_counter() - started) * 1000)
            if think_ms:
                time.sleep(rng.expovariate(1 / think_ms) / 1000)
    finally:
        engine.dispose()
        results.put(mine)


def run_queue(url: str, args: argparse.Namespace, districts: Sequence[str], processes: bool) -> QueueFigures:
    """`args.clients` clients (threads, or processes) listing a district's open queue at once."""
    single_engine = make_engine(load_settings(database_url=url))
    rng = random.Random(0)
    for _ in range(20):
        one_request(single_engine, rng.choice(districts), rng)
    single = []
    for _ in range(200):
        started = time.perf_counter()
        one_request(single_engine, rng.choice(districts), rng)
        single.append((time.perf_counter() - started) * 1000)
    single_engine.dispose()

    context = multiprocessing.get_context("fork")
    barrier: Any = context.Barrier(args.clients + 1) if processes else threading.Barrier(args.clients + 1)
    results: Any = context.SimpleQueue() if processes else queue.SimpleQueue()
    start: Callable[..., Any] = context.Process if processes else threading.Thread
    workers = [
        start(target=_client, args=(url, n, args.requests, districts, args.think_ms, barrier, results))
        for n in range(args.clients)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    latencies = [ms for _ in workers for ms in results.get()]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return QueueFigures(len(latencies), seconds, latencies, statistics.median(single))


def one_request(engine: Engine, district: str, rng: random.Random) -> None:
    with Session(engine) as session:
        filters = service.TicketFilters.open_queue()
        scope = frozenset({district})
        page = service.list_tickets(filters, session=session, district_codes=scope, limit=50)
        assert page.items
        if rng.random() < 0.25 and page.next_cursor is not None:
            service.list_tickets(filters, session=session, district_codes=scope, after=page.next_cursor, limit=50)


# --- the storm -----------------------------------------------------------------------------------


def run_storm(
    engine: Engine, pairs: Sequence[tuple[Place, str]], writers: int, batch: int, one_by_one: bool
) -> tuple[float, int]:
    """New problems reported at once, `batch` per transaction (or one per transaction when `one_by_one`);
    seconds until all are committed, and the number of tickets opened."""
    problems = [
        service.ProblemReport(
            scope=ProblemScope.DEVICE,
            scope_code=p.device_code,
            kind=k,
            title=f"{p.device_code}: {k}",
            device_id=p.device_id,
            commune_code=p.commune,
            priority=Priority.P2,
            source=TicketSource.AUTO,
            occurred_at=NOW,
        )
        for p, k in pairs
    ]
    shares = [problems[n::writers] for n in range(writers)]
    barrier = threading.Barrier(writers + 1)
    opened = [0] * writers

    def writer(n: int) -> None:
        barrier.wait()
        mine = shares[n]
        size = 1 if one_by_one else batch  # one by one: a transaction per problem, like a webhook delivery
        for start in range(0, len(mine), size):
            with session_scope(engine) as session:
                outcomes = service.open_or_update_tickets(
                    mine[start : start + size], session=session, now=NOW, policy=POLICY
                )
                opened[n] += sum(o.action.value in ("opened", "reopened_as_new") for o in outcomes)

    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(writer, n) for n in range(writers)]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        seconds = time.perf_counter() - started
    return seconds, sum(opened)


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    load_s: float
    queues: dict[str, QueueFigures]
    storm_s: float
    storm_setup: str
    single_rate: float


def bench_backend(backend: str, url: str, args: argparse.Namespace) -> Result:
    writers, batch = args.writers or STORM_WRITERS[backend][0], args.batch or STORM_WRITERS[backend][1]
    engine = make_engine(load_settings(database_url=url, database_pool_size=writers + 4))
    upgrade(engine)
    places = seed_places(engine)
    print(f"[{backend}] loading {args.tickets:,} tickets…", flush=True)
    load_s = load_tickets(engine, args.tickets, places)
    districts = sorted({p.district for p in places})
    plan = queue_query_plan(engine, districts[4])
    print(f"[{backend}] loaded in {load_s:.1f} s; the queue's plan (second page, keyset):\n{plan}", flush=True)
    engine.dispose()  # nothing open across the fork of client processes
    queues = {mode: run_queue(url, args, districts, processes=mode == "processes") for mode in args.client_modes}
    print(f"[{backend}] queue done; storm of {args.storm:,}…", flush=True)
    pairs = random.Random(2).sample([(p, k) for p in places for k in STORM_KINDS], args.storm + args.single)
    storm_s, storm_opened = run_storm(engine, pairs[: args.storm], writers, batch, one_by_one=False)
    single_s, single_opened = run_storm(engine, pairs[args.storm :], writers, batch, one_by_one=True)
    assert (storm_opened, single_opened) == (args.storm, args.single), "every storm problem opens one ticket"
    with Session(engine) as session:
        assert session.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one() == args.tickets + len(pairs)
    engine.dispose()
    return Result(backend, load_s, queues, storm_s, f"{writers}×{batch}", args.single / single_s)


def print_table(results: Sequence[Result], args: argparse.Namespace) -> None:
    think = f"think time {args.think_ms:g} ms (exponential)" if args.think_ms else "no think time"
    print()
    print(
        f"{args.tickets:,} tickets over 11 districts ({OPEN_SHARE:.1%} open). Queue: {args.clients} clients × "
        f"{args.requests} requests, {think}, one district's open tickets by due time, 50 a page, 1 in 4 "
        f"following the cursor. Storm: {args.storm:,} new problems through open_or_update_tickets by W writers "
        f"committing every B problems (W×B); 1-by-1: one transaction per problem, measured on {args.single:,}."
    )
    header = (
        "backend",
        "clients as",
        "1 client",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "req/s",
        "load s",
        "storm W×B",
        "storm s",
        "1-by-1 /s",
    )
    print(" | ".join(f"{h:>10}" for h in header))
    for r in results:
        for mode, figures in r.queues.items():
            lat = figures.latencies_ms
            cells = [
                r.backend,
                mode,
                f"{figures.single_ms:.2f}",
                f"{percentile(lat, 0.50):.1f}",
                f"{percentile(lat, 0.95):.1f}",
                f"{percentile(lat, 0.99):.1f}",
                f"{max(lat):.1f}",
                f"{figures.requests / figures.seconds:.0f}",
                f"{r.load_s:.1f}",
                r.storm_setup,
                f"{r.storm_s:.2f}",
                f"{r.single_rate:.0f}",
            ]
            print(" | ".join(f"{c:>10}" for c in cells))
    print(f"targets: p99 <= {TARGET_P99_MS:.0f} ms, storm <= {TARGET_STORM_S:.0f} s")


def summary_figures(results: Sequence[Result], args: argparse.Namespace) -> list[Figure]:
    """The queue's p99 beside one client's latency, and the storm beside one transaction per problem."""
    figures = []
    for r in results:
        for mode, q in r.queues.items():
            figures.append(
                Figure(
                    f"{r.backend}: a district's queue, {args.clients} clients as {mode}: p99",
                    f"{percentile(q.latencies_ms, 0.99):.1f} ms",
                    f"1 client alone {q.single_ms:.2f} ms (median)",
                    f"≤ {TARGET_P99_MS:.0f} ms",
                    percentile(q.latencies_ms, 0.99) <= TARGET_P99_MS,
                )
            )
        figures.append(
            Figure(
                f"{r.backend}: storm of {args.storm:,} new problems, {r.storm_setup} writers × batch",
                f"{r.storm_s:.2f} s",
                f"one transaction per problem: {r.single_rate:,.0f} problems/s",
                f"≤ {TARGET_STORM_S:.0f} s",
                r.storm_s <= TARGET_STORM_S,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=1_000, help="problems opened one call each, for the rate")
    parser.add_argument("--writers", type=int, help="storm writers (default: 1 on SQLite, 8 on PostgreSQL)")
    parser.add_argument("--batch", type=int, help="problems per storm transaction (default: 1000 SQLite, 500 PG)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between a client's requests")
    parser.add_argument(
        "--clients-as",
        dest="client_modes",
        action="append",
        choices=["threads", "processes"],
        help="run the clients as threads of this process and/or as processes (default: both)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    args.client_modes = args.client_modes or ["threads", "processes"]

    results = []
    base = Path(tempfile.mkdtemp(prefix="bench-tickets-"))
    try:
        if args.backend in ("sqlite", "both"):
            results.append(bench_backend("sqlite", f"sqlite:///{base / 'bench.db'}", args))
        if args.backend in ("postgres", "both"):
            # Its own folder, not under `base`: mkdtemp folders are private to root, the server runs as postgres.
            pg_base = Path(tempfile.mkdtemp(prefix="bench-tickets-pg-"))
            server = PostgresServer(pg_base).start()
            try:
                admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(sa.text("CREATE DATABASE bench"))
                admin.dispose()
                results.append(bench_backend("postgres", server.url("bench"), args))
            finally:
                server.stop()
                shutil.rmtree(pg_base, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_table(results, args)
    if args.json:
        conditions = f"{args.tickets:,} tickets, {args.clients} clients × {args.requests} requests"
        details = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "results": [
                {
                    "backend": r.backend,
                    "load_s": r.load_s,
                    "storm_s": r.storm_s,
                    "storm_setup": r.storm_setup,
                    "single_rate": r.single_rate,
                    "queues": {
                        mode: {
                            "requests": q.requests,
                            "seconds": q.seconds,
                            "single_ms": q.single_ms,
                            **{f"p{n}_ms": percentile(q.latencies_ms, n / 100) for n in (50, 95, 99)},
                        }
                        for mode, q in r.queues.items()
                    },
                }
                for r in results
            ],
        }
        write_json(args.json, "bench_tickets.py", conditions, summary_figures(results, args), details)


if __name__ == "__main__":
    main()
