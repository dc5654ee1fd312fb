"""Benchmark of the uptime reports: a year of history for a large fleet, with and without the daily roll-ups.

    .venv/bin/python bench/bench_reports.py [--devices 100000] [--backend sqlite|postgres|both] [--seed 1]
                                            [--json FILE]

For each backend: a province of 11 districts and 200 communes (Lạng Sơn, 2020), --devices devices spread over
them (radio clusters, bulletin boards, station controllers), and a year of state spans written directly
(each device: about 12 outages of hours, 6 degraded spells and 2 unknown gaps, from a seeded generator, the
same every run). Then, timed with a wall clock on an otherwise idle machine:

1. roll-up    every day of the year rolled up from the spans (`rollup.rebuild`), as after a restore;
2. province   `uptime_report` for the year by district (the leadership's table), from the roll-ups;
3. district   the same for each district alone (an officer's), the slowest of the 11 and their median;
4. devices    one district's year by device (read from the spans, not the roll-ups);
5. reference  the province's year computed from the spans alone (no roll-up listed), the way a report
              without roll-ups would have to.

Target (issue 13): the province and each district under 2 s on PostgreSQL at 100,000 devices.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.i18n import LOCAL_ZONE  # noqa: E402
from monitor.inventory.models import Commune  # noqa: E402
from monitor.inventory.units import init_province, load_units  # noqa: E402
from monitor.reports.models import StateSpan, UptimeDay  # noqa: E402
from monitor.reports.rollup import rebuild  # noqa: E402
from monitor.reports.uptime import GroupBy, uptime_report  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

YEAR_START = datetime(2026, 1, 1, tzinfo=LOCAL_ZONE).astimezone(UTC)
FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
NOW = datetime(2027, 1, 1, 6, 0, tzinfo=LOCAL_ZONE).astimezone(UTC)  # the report is made on the next morning
KINDS = (("radio_cluster", 0.80), ("bulletin_board", 0.15), ("station_controller", 0.05))
SPANS = StateSpan.__table__  # type: ignore[attr-defined]
TARGET_S, TARGET_DEVICES = 2.0, 100_000  # issue 13: on PostgreSQL at 100,000 devices


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def device_spans(rng: random.Random, device_id: int) -> Iterator[tuple[int, str, datetime, datetime | None]]:
    """A year of one device: up, broken by outages, degraded spells and unknown gaps (seeded)."""
    events = []
    for state, count, mean_h in (("down", 12, 3.0), ("degraded", 6, 2.0), ("unknown", 2, 0.5)):
        for _ in range(rng.randint(count // 2, count + count // 2)):
            start = YEAR_START + timedelta(seconds=rng.uniform(0, 365 * 86_400 - 86_400))
            events.append((start, start + timedelta(hours=rng.expovariate(1 / mean_h)), state))
    at = YEAR_START
    for start, end, state in sorted(events):
        if start <= at:
            continue
        yield device_id, "up", at, start
        yield device_id, state, start, end
        at = end
    yield device_id, "up", at, None


def seed(engine: Engine, devices: int, seed_value: int) -> int:
    """The province, the devices and their spans; the number of spans."""
    rng = random.Random(seed_value)
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = [c.code for c in session.connection().execute(sa.select(Commune.__table__.c.code))]  # type: ignore[attr-defined]
    created = YEAR_START - timedelta(days=30)
    rows = []
    for index in range(1, devices + 1):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        commune = communes[index % len(communes)]
        rows.append(
            {
                "id": index,
                "code": f"{commune}-B{index:06d}",
                "name": f"Thiết bị {index}",
                "kind": kind,
                "commune_code": commune,
                "profile": "vietloa-ip200-http",
                "protocol": "http",
                "address": "",
                "interval_s": 60,
                "installed_on": date(2024, 1, 1) + timedelta(days=rng.randint(0, 600)),
                "active": True,
                "search_text": "",
                "created_at": created,
                "updated_at": created,
                "vendor": "",
                "model": "",
            }
        )
    with engine.begin() as connection:
        table = sa.Table("devices", sa.MetaData(), autoload_with=connection)
        for start in range(0, len(rows), 5000):
            connection.execute(table.insert(), rows[start : start + 5000])
    count = 0
    batch: list[tuple[int, str, datetime, datetime | None]] = []
    for device_id in range(1, devices + 1):
        batch.extend(device_spans(rng, device_id))
        if len(batch) >= 200_000 or device_id == devices:
            _write_spans(engine, batch)
            count += len(batch)
            batch = []
    return count


def _write_spans(engine: Engine, batch: list[tuple[int, str, datetime, datetime | None]]) -> None:
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy("COPY state_spans (device_id, state, started_at, ended_at) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in batch:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        return
    with engine.begin() as connection:
        connection.execute(
            SPANS.insert(), [{"device_id": d, "state": s, "started_at": a, "ended_at": b} for d, s, a, b in batch]
        )


def _close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same figures to the second (SQLite sums spans to the millisecond, PostgreSQL to the microsecond)."""

    def same(key: str) -> bool:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            return abs(x - y) < (1.0 if key.endswith("_s") else 1e-6)
        return bool(x == y)

    return a.keys() == b.keys() and all(same(key) for key in a)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


@dataclass
class Result:
    backend: str
    devices: int
    spans: int
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def bench_backend(backend: str, url: str, args: argparse.Namespace) -> Result:
    engine = make_engine(load_settings(database_url=url))
    upgrade(engine)
    log(f"{backend}: seeding {args.devices:,} devices and a year of spans")
    seconds, spans = timed(lambda: seed(engine, args.devices, args.seed))
    log(f"{backend}: {spans:,} spans in {seconds:.0f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    result = Result(backend, args.devices, spans)

    def session_call(function: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with session_scope(engine) as session:
                return function(session)

        return run

    seconds, days = timed(session_call(lambda s: rebuild(s, NOW, lag_s=0)))
    result.figures["roll-up of the year"] = seconds
    log(f"{backend}: rolled up {days} days in {seconds:.1f} s")

    province = session_call(lambda s: uptime_report(s, FIRST, LAST, now=NOW, by=GroupBy.DISTRICT))
    province()  # warm the caches once, as a running service has them
    seconds, report = timed(province)
    result.figures["province by district"] = seconds
    total = report.total.figures
    result.notes.append(f"province availability {total.seconds.availability:.4%}, {total.outages.count:,} outages")
    districts = [row.key for row in report.rows]
    times = []
    for code in districts:
        seconds, _ = timed(session_call(lambda s, code=code: uptime_report(s, FIRST, LAST, now=NOW, districts=[code])))
        times.append(seconds)
    result.figures["a district (slowest of 11)"] = max(times)
    result.figures["a district (median)"] = statistics.median(times)
    seconds, rows = timed(
        session_call(lambda s: uptime_report(s, FIRST, LAST, now=NOW, districts=[districts[0]], by=GroupBy.DEVICE))
    )
    result.figures["a district by device"] = seconds
    result.notes.append(f"district {districts[0]}: {len(rows.rows):,} devices")

    with engine.begin() as connection:  # the reference: no roll-up listed, everything from the spans
        listed = connection.execute(sa.select(UptimeDay.__table__)).all()  # type: ignore[attr-defined]
        connection.execute(UptimeDay.__table__.delete())  # type: ignore[attr-defined]
    seconds, raw = timed(province)
    result.figures["reference: province from spans"] = seconds
    same = all(_close(a.as_dict(), b.as_dict()) for a, b in zip(raw.rows, report.rows, strict=True))
    result.notes.append(
        f"from the spans alone, the same figures as from the roll-ups (to the second): {'yes' if same else 'NO'}"
    )
    with engine.begin() as connection:
        connection.execute(UptimeDay.__table__.insert(), [dict(row._mapping) for row in listed])  # type: ignore[attr-defined]
    engine.dispose()
    return result


def print_table(results: list[Result]) -> None:
    print()
    print(f"Uptime for {FIRST:%d/%m/%Y}–{LAST:%d/%m/%Y}, wall seconds (target: province and district under 2 s)")
    names = list(results[0].figures)
    header = "".join(f"{r.backend + f' ({r.devices:,} dev, {r.spans:,} spans)':>40}" for r in results)
    print(f"{'':32}{header}")
    for name in names:
        cells = "".join(f"{r.figures[name]:>40.3f}" for r in results)
        print(f"{name:32}{cells}")
    for r in results:
        for note in r.notes:
            print(f"  {r.backend}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    results = []
    base = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        if args.backend in ("postgres", "both"):
            pg_base = Path(tempfile.mkdtemp(prefix="bench-reports-pg-"))
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
        if args.backend in ("sqlite", "both"):
            results.append(bench_backend("sqlite", f"sqlite:///{base / 'bench.db'}", args))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_table(results)
    if args.json:
        details = {"args": vars(args), "results": [asdict(r) for r in results]}
        conditions = f"{args.devices:,} devices, a year of spans, seed {args.seed}"
        write_json(args.json, "bench_reports.py", conditions, summary_figures(results), details)


def summary_figures(results: list[Result]) -> list[Figure]:
    """The province and the slowest district beside the province from the spans alone, per backend."""
    out = []
    for r in results:
        applies = r.backend == "postgres" and r.devices >= TARGET_DEVICES
        reference = f"province from the spans alone {r.figures['reference: province from spans']:.2f} s"
        for name in ("province by district", "a district (slowest of 11)"):
            seconds = r.figures[name]
            out.append(
                Figure(
                    f"{r.backend}, {r.devices:,} devices: uptime of the year, {name}",
                    f"{seconds:.2f} s",
                    reference,
                    f"< {TARGET_S:g} s on PostgreSQL at {TARGET_DEVICES:,}",
                    seconds < TARGET_S if applies else None,
                )
            )
        out.append(
            Figure(
                f"{r.backend}, {r.devices:,} devices: roll-up of the year", f"{r.figures['roll-up of the year']:.1f} s"
            )
        )
    return out


if __name__ == "__main__":
    main()
