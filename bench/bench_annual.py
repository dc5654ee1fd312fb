"""Benchmark of the plan's annual results report: the province's and a district's report in every format.

    .venv/bin/python bench/bench_annual.py [--fleet demo|100000] [--backend sqlite|postgres|both] [--json FILE]

`--fleet demo` (default): the demo's province (seed 1: 1,844 devices, 200 communes) with its seeded year of
history, tickets worked through the ticket service, planned inspections and training, as `monitor demo`
writes it. `--fleet N`: N devices with a year of state spans written directly (bench_reports.py's generator:
about 20 spans a device), no tickets. For each backend, timed with a wall clock after one warm-up run:

1. figures      everything the report says (`annual_figures`: uptime by district, kind and commune, SLA,
                incidents, coverage, training, the yearly review with its per-device flags and estimate);
2. docx, pdf, xlsx, html   the same document written in each format (`annual_document` once, then each);
3. reference    the province's uptime by district alone (`uptime_report`), the one figure every uptime page
                already computes: what the whole report costs beside it.

Target (issue 13): the province's annual report under 10 s at the demo's size, in each format.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from monitor.config import Settings, load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.i18n import LOCAL_ZONE  # noqa: E402
from monitor.inventory.models import District  # noqa: E402
from monitor.reports.annual import annual_figures  # noqa: E402
from monitor.reports.annual_document import annual_document  # noqa: E402
from monitor.reports.annual_render import ANNUAL_FORMATS, render_annual  # noqa: E402
from monitor.reports.service import keep_up  # noqa: E402
from monitor.reports.uptime import GroupBy, uptime_report  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=LOCAL_ZONE).astimezone(UTC)  # a morning in December, reports due soon
YEAR = 2026
DISTRICT = "183"  # Cao Lộc
TARGET_S = 10.0  # issue 13: the province's report, each format, at the demo's size


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def seed_demo_year(engine: Engine) -> str:
    from monitor.auth.cast import seed_cast
    from monitor.inventory.demo import seed_demo
    from monitor.reports.backfill import backfill_year

    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
        seed_cast(session=session)
    with session_scope(engine) as session:
        result = backfill_year(session, seed=1, now=NOW)
    keep_up(engine, NOW, lag_s=0)
    return f"demo seed 1: {result.devices:,} devices, {result.outages:,} outages, {result.tickets:,} tickets"


def seed_large(engine: Engine, devices: int) -> str:
    import bench_reports

    from monitor.reports.rollup import rebuild

    spans = bench_reports.seed(engine, devices, 1)
    with session_scope(engine) as session:
        rebuild(session, NOW, lag_s=0)
    return f"{devices:,} devices, {spans:,} spans, no tickets"


def bench_backend(backend: str, url: str, fleet: str) -> tuple[str, dict[str, float]]:
    settings: Settings = load_settings(database_url=url)
    engine = make_engine(settings)
    upgrade(engine)
    log(f"{backend}: seeding the {fleet} fleet")
    seconds, what = timed(lambda: seed_demo_year(engine) if fleet == "demo" else seed_large(engine, int(fleet)))
    log(f"{backend}: {what} in {seconds:.0f} s")
    if engine.dialect.name == "postgresql":  # the statistics a running database has (autovacuum), not a bulk load's
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    figures: dict[str, float] = {}
    for label, code in (("province", None), ("district", DISTRICT)):

        def gather(code: str | None = code) -> Any:
            with Session(engine) as session:
                unit = None if code is None else session.get(District, code)
                return annual_figures(session, YEAR, now=NOW, settings=settings, district=unit)

        gather()  # warm the caches once, as a running service has them
        seconds, result = timed(gather)
        figures[f"{label}: figures"] = seconds
        build, document = timed(lambda result=result: annual_document(result, settings))
        for fmt in ANNUAL_FORMATS:
            write, body = timed(lambda fmt=fmt, document=document: render_annual(document, fmt))
            figures[f"{label}: {fmt} (figures + file)"] = seconds + build + write
            figures[f"{label}: {fmt} size (kB)"] = len(body) / 1024

    def reference() -> Any:
        with Session(engine) as session:
            last = NOW.astimezone(LOCAL_ZONE).date()
            return uptime_report(session, date(YEAR, 1, 1), last, now=NOW, by=GroupBy.DISTRICT)

    reference()
    figures["reference: province uptime by district"] = timed(reference)[0]
    engine.dispose()
    return what, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", default="demo", help="demo, or a number of devices")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    results: list[tuple[str, str, dict[str, float]]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-annual-"))
    try:
        if args.backend in ("sqlite", "both"):
            what, figures = bench_backend("sqlite", f"sqlite:///{work / 'annual.db'}", args.fleet)
            results.append(("SQLite", what, figures))
        if args.backend in ("postgres", "both"):
            pg_base = Path(tempfile.mkdtemp(prefix="bench-annual-pg-"))  # its own folder: the server runs as postgres
            server = PostgresServer(pg_base).start()
            try:
                what, figures = bench_backend("postgres", server.url(), args.fleet)
                results.append(("PostgreSQL", what, figures))
            finally:
                server.stop()
                shutil.rmtree(pg_base, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"Annual results report {YEAR}, wall seconds (target: the province under 10 s at the demo's size)")
    print(f"{'':44}" + "".join(f"{name:>14}" for name, _, _ in results))
    for key in results[0][2]:
        print(f"{key:44}" + "".join(f"{figures[key]:>14.2f}" for _, _, figures in results))
    for name, what, _ in results:
        print(f"  {name}: {what}")
    if args.json:
        details = {"fleet": args.fleet, "results": [{"backend": n, "what": w, "figures": f} for n, w, f in results]}
        write_json(args.json, "bench_annual.py", f"fleet {args.fleet}", summary_figures(results, args.fleet), details)


def summary_figures(results: list[tuple[str, str, dict[str, float]]], fleet: str) -> list[Figure]:
    """The province's report in each format beside its uptime by district alone, per backend."""
    out = []
    for name, _what, figures in results:
        reference = f"province uptime by district {figures['reference: province uptime by district']:.2f} s"
        for fmt in ANNUAL_FORMATS:
            seconds = figures[f"province: {fmt} (figures + file)"]
            out.append(
                Figure(
                    f"{name}, fleet {fleet}: the province's annual report, {fmt} (figures + file)",
                    f"{seconds:.2f} s",
                    reference,
                    f"< {TARGET_S:g} s at the demo's size",
                    seconds < TARGET_S if fleet == "demo" else None,
                )
            )
    return out


if __name__ == "__main__":
    main()
