"""`make bench`: every benchmark of the project, one after the other, and one table of all their figures.

    .venv/bin/python bench/run_all.py [--only api_pg,ui] [--quick] [--out DIR] [--list] [--table-of DIR]

Each benchmark runs as its own process with `--json FILE` (see bench/_summary.py), at the size listed in
BENCHMARKS: its own defaults where they fit in about half an hour on two cores, smaller options where not
(the table says which). Its output goes to `OUT/NAME.log`, its figures to `OUT/NAME.json`; OUT is a new
folder under /tmp unless `--out` names one. Then one Markdown table:

    benchmark (size) | what | figure | reference (same run) | target | met?

A benchmark that fails, times out or writes no figures is a row saying so; the others still run, and the exit
status is 1 (missed targets are the table's business: they leave it 0). `--quick`
runs every benchmark at a toy size, to check the whole chain in a few minutes (its figures mean little).
Ctrl-C stops the running benchmark (SIGINT, so it stops its servers) and prints what was measured so far.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
GRACE_S = 60  # after SIGINT, how long a benchmark gets to stop its servers before it is killed


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as `make bench` runs it."""

    name: str
    script: str
    size: str  # the size that runs, as the table states it
    args: str  # its options for that size
    minutes: float  # expected, on two cores
    quick: str  # its options for --quick

    def timeout_s(self, quick: bool) -> float:
        return 15 * 60 if quick else max(15 * 60, 3 * self.minutes * 60)


BENCHMARKS = [
    Benchmark(
        "collect",
        "bench_collect.py",
        "100,000 devices; scheduled run 90 s, phases 10 s (defaults: also 10,000; 130 s, 30 s)",
        "--devices 100000 --duration 90 --phase-seconds 10",
        5.5,
        "--devices 1000 --duration 20 --phase-seconds 5",
    ),
    Benchmark(
        "alerts",
        "bench_alerts.py",
        "storm of 10,000 devices, both backends; dark to ticket at 1/15 of the intervals (--quick)",
        "--quick --devices 10000",
        2.5,
        "--quick --devices 500",
    ),
    Benchmark(
        "tickets",
        "bench_tickets.py",
        "1,000,000 tickets, both backends, 50 clients as processes (default: also as threads)",
        "--clients-as processes",
        4.0,
        "--tickets 50000 --clients 10 --requests 10 --storm 500 --single 50 --clients-as processes",
    ),
    Benchmark(
        "metrics",
        "bench_metrics.py",
        "100,000 devices (default: also 10,000); API 1 round of 15 s each way, Prometheus 25 s",
        "--devices 100000 --api-devices 100000 --rounds 1 --api-seconds 15 --prometheus-seconds 25",
        4.5,
        "--devices 2000 --api-devices 2000 --rounds 1 --api-seconds 3 --prometheus-seconds 12",
    ),
    Benchmark(
        "api",
        "bench_api.py",
        "SQLite, 100,000 tickets, one web process, wrk -c50 -d10s",
        "--duration 10",
        2.0,
        "--tickets 20000 --duration 2 --connections 10",
    ),
    Benchmark(
        "api_pg",
        "bench_api_pg.py",
        "PostgreSQL, 1,000,000 tickets, 2 web workers, wrk -c50 -d10s, py-spy",
        "--profile",
        4.5,
        "--tickets 20000 --duration 2 --connections 10",
    ),
    Benchmark(
        "reports",
        "bench_reports.py",
        "PostgreSQL, 100,000 devices (default: also SQLite)",
        "--backend postgres",
        5.0,
        "--devices 2000 --backend postgres",
    ),
    Benchmark(
        "annual",
        "bench_annual.py",
        "the demo's province and year, both backends",
        "",
        1.5,
        "--fleet 500 --backend sqlite",
    ),
    Benchmark(
        "ui",
        "bench_ui.py",
        "the demo's province and year (SQLite), 2 web workers, wrk -c50 -d10s",
        "",
        1.5,
        "--duration 2 --connections 10",
    ),
]


@dataclass
class Outcome:
    """What one benchmark left: its exit, its time, its summary (None when it wrote none)."""

    benchmark: Benchmark
    command: list[str]
    seconds: float = 0.0
    exit_code: int | None = None
    problem: str = ""
    summary: dict[str, Any] | None = None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(benchmark: Benchmark, out: Path, quick: bool) -> Outcome:
    """Run one benchmark to its end (or its timeout) and read its summary."""
    figures = out / f"{benchmark.name}.json"
    figures.unlink(missing_ok=True)
    args = (benchmark.quick if quick else benchmark.args).split()
    command = [sys.executable, str(BENCH / benchmark.script), *args, "--json", str(figures)]
    outcome = Outcome(benchmark, command)
    started = time.monotonic()
    with (out / f"{benchmark.name}.log").open("wb") as output:
        # Its own session: Ctrl-C in the terminal reaches run_all only, which stops the benchmark in order.
        process = subprocess.Popen(
            command, cwd=BENCH.parent, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            outcome.exit_code = process.wait(timeout=benchmark.timeout_s(quick))
        except subprocess.TimeoutExpired:
            outcome.problem = f"timed out after {benchmark.timeout_s(quick) / 60:.0f} min"
            outcome.exit_code = stop(process)
        except KeyboardInterrupt:
            outcome.problem = "interrupted"
            outcome.exit_code = stop(process)
            raise
        finally:
            outcome.seconds = time.monotonic() - started
            outcome.summary = read_summary(figures)
            if outcome.summary is None and not outcome.problem:  # a non-zero exit with figures: a target missed
                outcome.problem = f"exit {outcome.exit_code}: {last_line(out / f'{benchmark.name}.log')}"
    return outcome


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGINT (the benchmark's `finally` blocks stop its servers), then SIGKILL to its process group."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["summary"]
    except (OSError, ValueError, KeyError):
        return None
    return summary


def last_line(log_path: Path) -> str:
    """The last non-empty line of a benchmark's output: usually its error."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


# --- the table ------------------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _met(met: bool | None, target: str) -> str:
    if met is None:
        return "n/a at this size" if target else "—"
    return "yes" if met else "**NO**"


def table(outcomes: list[Outcome], quick: bool) -> str:
    """One row per figure; a benchmark's size is stated on its first row."""
    lines = [
        "| benchmark (size) | what | figure | reference (same run) | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        b = o.benchmark
        first = f"`{b.script}` ({'--quick: ' + b.quick if quick else b.size})"
        figures = (o.summary or {}).get("figures", [])
        if not figures:
            why = o.problem or "wrote no figures"
            lines.append(f"| {_cell(first)} | did not finish | {_cell(why)} | see {b.name}.log | | failed |")
            continue
        for n, f in enumerate(figures):
            cells = [first if n == 0 else f"`{b.script}`", f["what"], f["figure"], f["reference"], f["target"]]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + f" | {_met(f['met'], f['target'])} |")
        if o.problem:
            lines.append(f"| `{b.script}` | (the run) | {_cell(o.problem)} | see {b.name}.log | | failed |")
    return "\n".join(lines)


def runs_table(outcomes: list[Outcome]) -> str:
    lines = ["| benchmark | conditions | took | exit |", "|---|---|---:|---:|"]
    for o in outcomes:
        conditions = (o.summary or {}).get("conditions", "") or " ".join(o.command[2:])
        lines.append(
            f"| `{o.benchmark.script}` | {_cell(conditions)} | {o.seconds / 60:.1f} min "
            f"| {o.exit_code if o.exit_code is not None else '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names (see --list)")
    parser.add_argument("--quick", action="store_true", help="every benchmark at a toy size: checks the chain")
    parser.add_argument("--out", type=Path, help="folder for each benchmark's log and JSON (default: a new one)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks, their sizes and expected time")
    parser.add_argument("--table-of", type=Path, metavar="DIR", help="print the table of an earlier run's folder")
    args = parser.parse_args()
    chosen = BENCHMARKS
    if args.only:
        names = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = names - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))} (see --list)")
        chosen = [b for b in BENCHMARKS if b.name in names]
    if args.list:
        for b in chosen:
            print(f"{b.name:<8} ~{b.minutes:4.1f} min  {b.script}: {b.size}")
        print(f"total ~{sum(b.minutes for b in chosen):.0f} min")
        return
    if args.table_of:
        found = [Outcome(b, [], summary=read_summary(args.table_of / f"{b.name}.json")) for b in chosen]
        print(table([o for o in found if o.summary is not None], args.quick))
        return
    out = (args.out or Path(tempfile.mkdtemp(prefix="bench-all-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    expected = sum(b.minutes for b in chosen)
    load_before = os.getloadavg()
    started = time.monotonic()
    log(f"{len(chosen)} benchmarks{' (--quick)' if args.quick else f', about {expected:.0f} min'}; logs in {out}")
    outcomes: list[Outcome] = []
    try:
        for b in chosen:
            log(f"{b.name}: {b.script} {'(quick)' if args.quick else f'~{b.minutes:g} min'}")
            outcome = run(b, out, args.quick)
            outcomes.append(outcome)
            state = outcome.problem or "ok"
            log(f"{b.name}: {outcome.seconds / 60:.1f} min, {state}")
    except KeyboardInterrupt:
        log("interrupted: the table of what was measured so far")
    load_after = os.getloadavg()
    print()
    print(
        f"Benchmarks of {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, took "
        f"{(time.monotonic() - started) / 60:.0f} min; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after (other work on the machine shows in every rate)"
    )
    print()
    print(table(outcomes, args.quick))
    print()
    print(runs_table(outcomes))
    print()
    print(f"Each benchmark's full output and figures: {out}/NAME.log, NAME.json")
    # Missed targets are the table's business; the exit status says whether every benchmark ran.
    sys.exit(1 if any(o.problem for o in outcomes) or len(outcomes) < len(chosen) else 0)


if __name__ == "__main__":
    main()
