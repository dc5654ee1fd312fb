"""Benchmark of alerts: a district-wide power cut, and a device going dark, ours beside Prometheus -> Alertmanager.

    .venv/bin/python bench/bench_alerts.py [--devices 10000] [--per-commune 100] [--backend both] [--quick]
                                           [--json FILE]

1. **Storm** (`_alerts_storm.py`): `--devices` devices in one district (Huyện Cao Lộc, its real communes and
   synthetic ones, about `--per-commune` a commune), all up, then a power cut: three sweeps of failed polls
   through `HealthStore.apply` (default policy: three failures), the dispatcher (default rules) every 2 s
   on a virtual clock until quiet, then `deliver_due` to a local webhook receiver, SMTP server and Telegram
   stand-in with the district's officers and technicians and the province's administrator as recipients.
   On a fresh SQLite file and a throw-away PostgreSQL cluster (tests/postgres.py, fsync off).
   Targets: at most one ticket per commune; one digest per recipient per channel.
2. **Dark to ticket** (`_alerts_latency.py`), one radio cluster: our path on a virtual clock (failed polls at
   t0 + 15, 30, 45 s, group_wait 60 s); our path in real time (the real collector polling a simulated device
   every 15 s); the same fault through a real Prometheus (scrape and evaluation every 15 s,
   `fleet_device_up == 0` for 1m) and a real Alertmanager (group_wait 30 s) into the service's receiver.
   The two real paths run side by side from the same t0 (about two minutes).

`--quick`: 1,000 devices, and every interval of part 2 divided by 15 (a smoke check of the whole pipeline).
Needs Debian's `prometheus`, `prometheus-alertmanager` and PostgreSQL 15 server binaries. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from _alerts_latency import dark_to_ticket_virtual, run_realtime  # noqa: E402
from _alerts_setup import PathFigures, Timing  # noqa: E402
from _alerts_storm import DISTRICT, StormFigures, build_district_fleet, run_storm  # noqa: E402
from _summary import Figure, write_json  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, upgrade  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

SECRET = "bench-secret-key-not-a-placeholder"
LABEL_W, CELL_W = 60, 22
DASH = "—"
KINDS = ("webhook", "email", "telegram")


# --- runs -----------------------------------------------------------------------------------------


def storm_on(url: str, folder: Path, devices: int, per_commune: int) -> StormFigures:
    """The storm on the (empty) database at `url`."""
    engine = make_engine(load_settings(database_url=url, secret_key=SECRET, data_dir=folder))
    try:
        upgrade(engine)
        fleet = build_district_fleet(engine, devices, per_commune)
        return asyncio.run(run_storm(engine, fleet))
    finally:
        engine.dispose()


def storm_on_postgres(devices: int, per_commune: int) -> StormFigures:
    """The storm on a throw-away PostgreSQL cluster, stopped and removed afterwards."""
    # Its own folder, not under the benchmark's: mkdtemp folders are private to root, the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="bench-alerts-pg-"))
    server = PostgresServer(folder).start()
    try:
        admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE bench_alerts"))
        admin.dispose()
        return storm_on(server.url("bench_alerts"), folder, devices, per_commune)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the table ------------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _s(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _by_kind(values: dict[str, Any], show: Callable[[Any], str] = str) -> str:
    return " / ".join(show(values.get(kind, 0)) for kind in KINDS)


def tickets_per_scope(f: StormFigures) -> dict[str, int]:
    """Tickets the storm opened, by scope."""
    counts = {"district": 0, "commune": 0, "device": 0}
    for _key, scope, _commune in f.tickets:
        counts[scope] = counts.get(scope, 0) + 1
    return counts


def busiest_commune(f: StormFigures) -> int:
    """The most tickets opened in one commune (district tickets belong to none)."""
    counts: dict[str, int] = {}
    for _key, _scope, commune in f.tickets:
        if commune:
            counts[commune] = counts.get(commune, 0) + 1
    return max(counts.values(), default=0)


def tickets_ok(f: StormFigures) -> bool:
    """At most one ticket per commune, and no more tickets than communes; at least one ticket at all."""
    return 0 < len(f.tickets) <= f.communes and busiest_commune(f) <= 1


def digests_ok(f: StormFigures) -> bool:
    """Every expected recipient got exactly one message per channel, and nobody else got any."""
    expected = f.expected_messages()
    return all(
        set(f.messages.get(kind, {})) == expected[kind] and all(n == 1 for n in f.messages[kind].values())
        for kind in KINDS
    )


def _problems(f: StormFigures) -> str:
    def count(scope: str, *statuses: str) -> int:
        return sum(f.problems.get((scope, status), 0) for status in statuses)

    open_ = ("active", "pending")
    return (
        f"{count('district', *open_)} / {count('commune', *open_)} / "
        f"{count('device', *open_)} / {_n(count('device', 'suppressed'))}"
    )


STORM_ROWS: list[tuple[str, Callable[[StormFigures], str], str, Callable[[StormFigures], bool] | None]] = [
    (
        "Devices / communes (of which synthetic)",
        lambda f: f"{_n(f.devices)} / {f.communes} ({f.synthetic_communes})",
        "",
        None,
    ),
    ("Fleet built (rows inserted), s", lambda f: _s(f.build_s), "", None),
    ("All up: HealthStore.apply of one success each, s", lambda f: _s(f.up_apply_s), "", None),
    ("Power cut: HealthStore.apply, sweeps 1 / 2 / 3, s", lambda f: " / ".join(_s(s) for s in f.sweeps_s), "", None),
    ("  state changes written (by sweep 3)", lambda f: _n(f.state_changes), "", None),
    (
        "Dispatcher: claiming cycles (up to 5,000 changes each), wall s",
        lambda f: f"{len(f.claiming)} in {_s(sum(c.wall_s for c in f.claiming))}",
        "",
        None,
    ),
    (
        "Dispatcher: cycles grouping problems, wall s",
        lambda f: f"{len(f.folding)} in {_s(sum(c.wall_s for c in f.folding))}",
        "",
        None,
    ),
    ("Dispatcher wall time until the ticket is committed, s", lambda f: _s(f.to_ticket_s), "", None),
    ("Dispatcher wall time, every cycle until quiet, s", lambda f: _s(sum(c.wall_s for c in f.cycles)), "", None),
    (
        "  slowest cycle / a quiet cycle during the outage, s",
        lambda f: f"{_s(max(c.wall_s for c in f.cycles), 2)} / {_s(f.cycles[-1].wall_s, 2)}",
        "",
        None,
    ),
    (
        "Ticket committed, after the state changes (virtual), s",
        lambda f: _s(f.after_changes_s(f.tickets_at) if f.tickets_at else None),
        "",
        None,
    ),
    (
        "  the same, counted from the power cut (3 sweeps 15 s apart)",
        lambda f: _s(f.after_cut_s(f.tickets_at) if f.tickets_at else None),
        "",
        None,
    ),
    (
        "Last device folded into its group (virtual), s",
        lambda f: _s(f.after_changes_s(f.folding[-1].at, f.folding[-1].wall_s) if f.folding else None),
        "",
        None,
    ),
    ("Problems open: district / commune / device; device suppressed", _problems, "", None),
    (
        "Tickets opened: district / commune / device",
        lambda f: " / ".join(str(n) for n in tickets_per_scope(f).values()),
        "≤ 1 per commune",
        tickets_ok,
    ),
    ("  most tickets in one commune", lambda f: str(busiest_commune(f)), "", None),
    ("Deliveries queued: webhook / e-mail / Telegram", lambda f: _by_kind(f.deliveries), "", None),
    (
        "Messages received: webhook / e-mail / Telegram",
        lambda f: _by_kind({k: sum(v.values()) for k, v in f.messages.items()}),
        "1 digest per recipient",
        digests_ok,
    ),
    ("  recipients expected", lambda f: _by_kind({k: len(v) for k, v in f.expected_messages().items()}), "", None),
    ("  deliver_due runs / wall s", lambda f: f"{f.deliver_runs} / {_s(f.deliver_s, 2)}", "", None),
]


def _cell(show: Callable[[Any], str], value: Any) -> str:
    try:
        return show(value)
    except (KeyError, TypeError, ValueError, AssertionError, ZeroDivisionError):
        return "?"


def _verdict(check: Callable[[StormFigures], bool], figures: StormFigures | str) -> str:
    if not isinstance(figures, StormFigures):
        return DASH
    try:
        return "pass" if check(figures) else "FAIL"
    except (KeyError, TypeError, ValueError):
        return "FAIL"


def render_storm(storms: dict[str, StormFigures | str]) -> list[str]:
    """The storm's table: one column per backend, then the target and pass/FAIL per backend."""
    names = list(storms)
    lines = [
        f"{'Storm: district-wide power cut':<{LABEL_W}}" + "".join(f"{n:>{CELL_W}}" for n in names) + "  target",
        "-" * (LABEL_W + CELL_W * len(names) + 36),
    ]
    for label, show, target, check in STORM_ROWS:
        cells = "".join(
            f"{(_cell(show, f) if isinstance(f, StormFigures) else DASH):>{CELL_W}}" for f in storms.values()
        )
        verdict = "" if check is None else " / ".join(_verdict(check, f) for f in storms.values())
        lines.append(f"{label:<{LABEL_W}}{cells}  {target:<24}{verdict}".rstrip())
    for name, f in storms.items():
        if isinstance(f, str):
            lines.append(f"  {name}: not run ({f})")
    return lines


LATENCY_ROWS = [
    ("Dark (ours) / marked down in the database (Prometheus)", "t0", "t0", "t0"),
    ("Down committed (ours) / 0 scraped by Prometheus", "down", "down", "seen_zero"),
    ("Problem pending (ours) / alert pending, activeAt", "problem", "problem", "pending"),
    ("Problem active (ours) / alert firing", "active", "active", "firing"),
]


def render_latency(
    timing: Timing, virtual: PathFigures | str, ours: PathFigures | str, prom: PathFigures | str
) -> list[str]:
    """The dark-to-ticket table: seconds after t0 for each path, side by side."""
    paths = [virtual, ours, prom]
    heads = ["ours, virtual clock", "ours, real time", "Prometheus→AM, real"]
    lines = [
        f"{'Device dark → ticket (s after t0)':<{LABEL_W}}" + "".join(f"{h:>{CELL_W}}" for h in heads),
        "-" * (LABEL_W + CELL_W * 3),
    ]

    def at(path: PathFigures | str, key: str) -> str:
        if isinstance(path, str):
            return DASH
        return "0.0" if key == "t0" else _s(path.milestones.get(key))

    for label, *keys in LATENCY_ROWS:
        lines.append(f"{label:<{LABEL_W}}" + "".join(f"{at(p, k):>{CELL_W}}" for p, k in zip(paths, keys, strict=True)))
    tickets = [DASH if isinstance(p, str) else _s(p.ticket_s) for p in paths]
    lines.append(f"{'Ticket created':<{LABEL_W}}" + "".join(f"{t:>{CELL_W}}" for t in tickets))
    ours_range, prom_range = timing.ours_range_s(), timing.prometheus_range_s()
    fixed = timing.failures * timing.poll_s + timing.group_wait_s  # the virtual run's polls have one phase
    virtual_range = (fixed, fixed + 2 * timing.dispatch_every_s)
    ranges = [f"{lo:.0f} – {hi:.0f}" for lo, hi in (virtual_range, ours_range, prom_range)]
    lines.append(
        f"{'  possible range, by the phases of polls/scrapes and cycles':<{LABEL_W}}"
        + "".join(f"{r:>{CELL_W}}" for r in ranges)
    )
    if not isinstance(ours, str) and not isinstance(prom, str) and ours.ticket_s and prom.ticket_s:
        label, gap = "  Prometheus path minus ours, both real, same t0", prom.ticket_s - ours.ticket_s
        lines.append(f"{label:<{LABEL_W}}{'':>{2 * CELL_W}}{gap:>+{CELL_W}.1f}")
    for path in paths:
        if isinstance(path, str):
            lines.append(f"  not run: {path}")
        elif path.error:
            lines.append(f"  {path.name}: {path.error}")
    return lines


def render(
    args: argparse.Namespace,
    timing: Timing,
    storms: dict[str, StormFigures | str],
    latency: tuple[PathFigures | str, PathFigures | str, PathFigures | str],
    elapsed_s: float,
    load: float,
) -> str:
    """The whole report."""
    t = timing
    lines = [
        "Alerts benchmark: a district-wide power cut, and a device dark to its ticket, ours vs Prometheus→Alertmanager",
        f"Python {platform.python_version()}, {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs; "
        f"load average at start {load:.1f}; district {DISTRICT} (Huyện Cao Lộc); "
        f"{'--quick; ' if args.quick else ''}took {elapsed_s / 60:.1f} min",
        "",
        *render_storm(storms),
        "",
        *render_latency(timing, *latency),
        "",
        f"Ours: polls every {t.poll_s:.3g} s, HTTP timeout {t.http_timeout_s:.3g} s, {t.failures} failures to "
        f"declare down, collector flush {t.flush_s:.3g} s,",
        f"  dispatcher every {t.dispatch_every_s:.3g} s, group_wait {t.group_wait_s:.3g} s.",
        f"Prometheus: scrape {t.scrape_s:.3g} s, evaluation {t.evaluation_s:.3g} s, `fleet_device_up == 0` for "
        f"{t.for_s:.3g} s, /metrics snapshot up to {t.metrics_max_age_s:.3g} s old;",
        f"  Alertmanager group_wait {t.am_group_wait_s:.3g} s, group_interval {t.am_group_interval_s:.3g} s.",
        "Notes: the storm runs on a virtual clock (each dispatcher cycle's wall time plus the 2 s pause between",
        "cycles); wall times are real. The virtual dark-to-ticket run feeds failed polls at t0 + 1, 2, 3 poll",
        "intervals (the worst poll phase, no timeout). The Prometheus path's t0 is the moment the database says",
        "down (one failed observation, failures_to_down=1): its `for` stands where our confirmation count stands;",
        "our real path's t0 is the device going dark. The alert rule sets `kind: offline`: `fleet_device_up`",
        "carries the device kind in `kind`, which the receiver would otherwise take as the problem's kind.",
    ]
    return "\n".join(lines)


def summary_figures(
    devices: int,
    timing: Timing,
    storms: dict[str, StormFigures | str],
    latency: tuple[PathFigures | str, PathFigures | str, PathFigures | str],
) -> list[Figure]:
    """The storm's targets per backend, and dark to ticket beside the Prometheus path of the same run."""
    figures = []
    for name, f in storms.items():
        what = f"{name}: power cut of {devices:,} devices in one district"
        if isinstance(f, str):
            figures.append(Figure(f"{what}: tickets", f"not run ({f})", "", "≤ 1 per commune", False))
            continue
        opened = " / ".join(str(n) for n in tickets_per_scope(f).values())
        figures += [
            Figure(
                f"{what}: tickets opened, district / commune / device",
                opened,
                f"{f.communes} communes; most in one commune {busiest_commune(f)}",
                "≤ 1 per commune",
                tickets_ok(f),
            ),
            Figure(
                f"{what}: messages received, webhook / e-mail / Telegram",
                _by_kind({k: sum(v.values()) for k, v in f.messages.items()}),
                "recipients expected " + _by_kind({k: len(v) for k, v in f.expected_messages().items()}),
                "1 digest per recipient",
                digests_ok(f),
            ),
            Figure(f"{what}: dispatcher wall time until the ticket is committed", f"{f.to_ticket_s:.1f} s"),
        ]
    _virtual, ours, prom = latency
    scale = "" if timing.poll_s == Timing().poll_s else f" (intervals divided by {Timing().poll_s / timing.poll_s:g})"
    lo, hi = timing.ours_range_s()
    ours_s = ours if isinstance(ours, str) else _s(ours.ticket_s) + " s"
    prom_s = prom if isinstance(prom, str) else _s(prom.ticket_s) + " s"
    figures.append(
        Figure(
            f"a device dark to its ticket, real time{scale}",
            ours_s,
            f"Prometheus→Alertmanager {prom_s}; our possible range {lo:.0f}–{hi:.0f} s",
        )
    )
    return figures


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    """Parse the arguments, run every part, print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=None, help="devices in the storm (default 10,000; quick 1,000)")
    parser.add_argument("--per-commune", type=int, default=100, help="devices per commune in the storm")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="1,000 devices; part 2's intervals divided by 15")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, peer logs)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    devices = args.devices or (1000 if args.quick else 10_000)
    timing = Timing().scaled(15) if args.quick else Timing()
    started, load = time.perf_counter(), os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    try:
        latency = _latency(folder, timing)
        storms: dict[str, StormFigures | str] = {}
        if args.backend in ("sqlite", "both"):
            print(f"storm on SQLite, {devices:,} devices…", file=sys.stderr, flush=True)
            storms["SQLite"] = storm_on(f"sqlite:///{folder / 'storm.db'}", folder, devices, args.per_commune)
        if args.backend in ("postgres", "both"):
            print(f"storm on PostgreSQL, {devices:,} devices…", file=sys.stderr, flush=True)
            try:
                storms["PostgreSQL"] = storm_on_postgres(devices, args.per_commune)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                storms["PostgreSQL"] = f"{type(exc).__name__}: {exc}"
        print(render(args, timing, storms, latency, time.perf_counter() - started, load))
        ok = all(isinstance(f, StormFigures) and tickets_ok(f) and digests_ok(f) for f in storms.values())
        if args.json:
            details = {
                "storms": {n: f if isinstance(f, str) else storm_details(f) for n, f in storms.items()},
                "dark_to_ticket": {
                    p.name if isinstance(p, PathFigures) else f"path {i}": p if isinstance(p, str) else asdict(p)
                    for i, p in enumerate(latency)
                },
                "timing": asdict(timing),
            }
            conditions = f"{devices:,} devices in the storm, {'--quick' if args.quick else 'real intervals'}"
            write_json(
                args.json, "bench_alerts.py", conditions, summary_figures(devices, timing, storms, latency), details
            )
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if ok else 1)


def storm_details(f: StormFigures) -> dict[str, Any]:
    """The storm's figures as JSON can hold them."""
    return {
        "devices": f.devices,
        "communes": f.communes,
        "build_s": f.build_s,
        "up_apply_s": f.up_apply_s,
        "sweeps_s": f.sweeps_s,
        "state_changes": f.state_changes,
        "to_ticket_s": f.to_ticket_s,
        "cycles_wall_s": [c.wall_s for c in f.cycles],
        "tickets_by_scope": tickets_per_scope(f),
        "busiest_commune": busiest_commune(f),
        "deliveries": f.deliveries,
        "messages": {k: dict(v) for k, v in f.messages.items()},
        "deliver_s": f.deliver_s,
        "tickets_ok": tickets_ok(f),
        "digests_ok": digests_ok(f),
    }


def _latency(folder: Path, timing: Timing) -> tuple[PathFigures | str, PathFigures | str, PathFigures | str]:
    print("dark to ticket: ours on a virtual clock…", file=sys.stderr, flush=True)
    virtual: PathFigures | str = dark_to_ticket_virtual(folder, timing)
    missing = [b for b in ("prometheus", "prometheus-alertmanager") if shutil.which(b) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed"
        return virtual, reason, reason
    print("dark to ticket: both real paths side by side (about 2 min; --quick: 15 s)…", file=sys.stderr, flush=True)
    try:
        ours, prom = run_realtime(folder / "realtime", timing)
    except RuntimeError as exc:
        return virtual, str(exc), str(exc)
    return virtual, ours, prom


if __name__ == "__main__":
    main()
