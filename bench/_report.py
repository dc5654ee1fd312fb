"""The table of `bench_collect.py`: figures side by side per fleet size, the targets, pass or FAIL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import INTERVAL_S
from _summary import Figure

LABEL_W, CELL_W, TARGET_W = 44, 12, 22
DASH = "—"
TARGET_FLEET = 100_000  # the fleet-wide targets are stated for 100,000 devices


@dataclass(frozen=True)
class Row:
    """One line: a label, a cell per (fleet, column), and optionally a target with its check."""

    label: str
    service: Callable[[dict[str, Any]], str]
    blackbox: Callable[[dict[str, Any]], str] = lambda run: ""
    snmp_exporter: Callable[[dict[str, Any]], str] = lambda run: ""
    target: str = ""
    check: Callable[[dict[str, Any]], bool | None] | None = None  # None: not applicable to this fleet


# --- figures --------------------------------------------------------------------------------------


def per_1000(phase: dict[str, Any], protocol: str | None = None) -> float | None:
    """CPU seconds per 1,000 polls over a phase's steady window (= milliseconds per poll)."""
    polls = phase["window_polls"][protocol] if protocol else sum(phase["window_polls"].values())
    return 1000 * phase["window_cpu_s"] / polls if polls else None


def ref_per_1000(reference: dict[str, Any]) -> float | None:
    return 1000 * reference["cpu_s"] / reference["probes"] if reference.get("probes") else None


def share(phase: dict[str, Any]) -> float:
    """Average CPU share of one core over the steady window."""
    return float(phase["window_cpu_s"] / phase["window_s"]) if phase["window_s"] else 0.0


def apply_share(run: dict[str, Any]) -> float:
    """HealthStore.apply's CPU per second at the fleet's rate (devices / 60 observations a second)."""
    return float(run["apply"]["cpu_per_1000_s"] * run["devices"] / INTERVAL_S / 1000)


def _f(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _mb(kib: int | None) -> str:
    return DASH if not kib else f"{kib / 1024:.0f} MB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _ref(key: str, show: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """A reference cell: 'not installed' / 'error' / the figure."""

    def cell(run: dict[str, Any]) -> str:
        reference = run.get(key) or {}
        if reference.get("missing"):
            return "not installed"
        if "error" in reference:
            return "error"
        return show(reference) if reference else DASH

    return cell


def _big(run: dict[str, Any]) -> bool:
    return bool(run["devices"] >= TARGET_FLEET)


def keeps_schedule(run: dict[str, Any]) -> bool:
    """Every device polled within the interval, nothing missed or skipped, under half a core."""
    mixed = run["mixed"]
    sweep = mixed["sweep_s"]
    rate = sum(mixed["window_polls"].values()) / mixed["window_s"] if mixed["window_s"] else 0.0
    return (
        share(mixed) < 0.5
        and sweep is not None
        and sweep <= INTERVAL_S + INTERVAL_S / 60
        and mixed["missed"] == 0
        and mixed["skipped_still_running"] == 0
        and rate >= 0.97 * mixed["expected_polls_per_s"]
    )


ROWS = [
    Row(
        "HTTP: CPU s per 1,000 polls",
        lambda r: _f(per_1000(r["http"], "http")),
        blackbox=_ref("blackbox", lambda b: _f(ref_per_1000(b))),
        target="≤ 0.25 (0.25 ms/poll)",
        check=lambda r: (v := per_1000(r["http"], "http")) is not None and v <= 0.25,
    ),
    Row(
        "SNMP, 3 OIDs (generic-mib2): CPU s / 1,000",
        lambda r: _f(per_1000(r["snmp3"], "snmp")),
        snmp_exporter=_ref("snmp_exporter", lambda s: _f(ref_per_1000(s))),
        target="≤ 0.10 (0.10 ms/poll)",
        check=lambda r: (v := per_1000(r["snmp3"], "snmp")) is not None and v <= 0.10,
    ),
    Row("SNMP, 12 OIDs (daiviet-rx-snmp): CPU s / 1,000", lambda r: _f(per_1000(r["snmp"], "snmp"))),
    Row("Mixed fleet: CPU s per 1,000 polls", lambda r: _f(per_1000(r["mixed"]))),
    Row(
        "CPU share of one core, steady state",
        lambda r: f"{share(r['mixed']):.1%}",
        blackbox=_ref("blackbox", lambda b: f"{b['cpu_s'] / b['window_s']:.1%}"),
        snmp_exporter=_ref("snmp_exporter", lambda s: f"{s['cpu_s'] / s['window_s']:.1%}"),
        target="100k every 60 s, < 50 %",
        check=lambda r: keeps_schedule(r) if _big(r) else None,
    ),
    Row(
        "Polls per second, done / due",
        lambda r: (
            f"{sum(r['mixed']['window_polls'].values()) / r['mixed']['window_s']:.0f}/"
            f"{r['mixed']['expected_polls_per_s']:.0f}"
        ),
        blackbox=_ref("blackbox", lambda b: f"{b['probes'] / b['window_s']:.0f}/{b['rate_per_s']:.0f}"),
        snmp_exporter=_ref("snmp_exporter", lambda s: f"{s['probes'] / s['window_s']:.0f}/{s['rate_per_s']:.0f}"),
    ),
    Row(
        "Full sweep, scheduled (60 slots), s",
        lambda r: _f(r["mixed"]["sweep_s"], 1),
    ),
    Row(
        "Full sweep, all at once (poll_all_now), s",
        lambda r: _f(r["mixed"]["burst"]["seconds"], 1) if "burst" in r["mixed"] else DASH,
    ),
    Row(
        "Resident memory (VmRSS), steady",
        lambda r: _mb(r["mixed"]["rss_kib"]),
        blackbox=_ref("blackbox", lambda b: _mb(b["rss_kib"])),
        snmp_exporter=_ref("snmp_exporter", lambda s: _mb(s["rss_kib"])),
        target="≤ 150 MB at 100k",
        check=lambda r: r["mixed"]["rss_kib"] <= 150 * 1024 if _big(r) else None,
    ),
    Row(
        "  peak (VmHWM) during the scheduled run",
        lambda r: _mb(r["mixed"]["hwm_kib"]),
        blackbox=_ref("blackbox", lambda b: _mb(b["hwm_kib"])),
        snmp_exporter=_ref("snmp_exporter", lambda s: _mb(s["hwm_kib"])),
    ),
    Row("  before the first poll (imports, targets)", lambda r: _mb(r["mixed"]["rss_ready_kib"])),
    Row("  after the all-at-once sweep", lambda r: _mb(r["mixed"].get("burst", {}).get("rss_kib"))),
    Row("Scheduler lateness p50", lambda r: _ms(r["mixed"]["lateness_p50_s"])),
    Row(
        "Scheduler lateness p99",
        lambda r: _ms(r["mixed"]["lateness_p99_s"]),
        target="< 1 s",
        check=lambda r: r["mixed"]["lateness_p99_s"] < 1.0,
    ),
    Row("Scheduler lateness max", lambda r: _ms(r["mixed"]["lateness_max_s"])),
    Row(
        "Slot runs / missed / skipped polls",
        lambda r: f"{r['mixed']['slot_runs']}/{r['mixed']['missed']}/{r['mixed']['skipped_still_running']}",
    ),
    Row(
        "Failed polls (kinds below)",
        lambda r: str(sum(r["mixed"]["errors"].values())),
        blackbox=_ref("blackbox", lambda b: str(b["failed"])),
        snmp_exporter=_ref("snmp_exporter", lambda s: str(s["failed"])),
    ),
    Row("HealthStore.apply, SQLite: CPU s / 1,000 obs", lambda r: _f(r["apply"]["cpu_per_1000_s"])),
    Row("  = share of one core at devices/60 s", lambda r: f"{apply_share(r):.1%}"),
    Row(
        "  service total: collection + apply",
        lambda r: f"{share(r['mixed']) + apply_share(r):.1%}",
    ),
]


# --- layout ---------------------------------------------------------------------------------------


def _verdict(row: Row, runs: list[dict[str, Any]]) -> str:
    if row.check is None:
        return ""
    verdicts = []
    for run in runs:
        try:
            ok = row.check(run)
        except (KeyError, TypeError, ZeroDivisionError):
            ok = False
        verdicts.append(DASH if ok is None else ("pass" if ok else "FAIL"))
    return " / ".join(verdicts)


def _cell(show: Callable[[dict[str, Any]], str], run: dict[str, Any]) -> str:
    try:
        return show(run)
    except (KeyError, TypeError, ZeroDivisionError):
        return "?"


def render(runs: list[dict[str, Any]], context: dict[str, Any]) -> str:
    """The whole report: header, table, failed polls by kind, notes."""
    loop = next((r["mixed"]["loop"] for r in runs if "mixed" in r), "?")
    lines = [
        "Collection benchmark: the service vs Prometheus exporters, same simulated devices, same run",
        f"Python {context['python']}, event loop {loop}, {context['cpus']} CPUs; simulator and drivers on CPU 0, "
        f"each measured process alone on CPU 1{'' if context['pinned'] else ' (NOT pinned)'}; "
        f"scheduled run {context['duration_s']:.0f} s, other phases {context['phase_s']:.0f} s; "
        f"took {context['elapsed_s'] / 60:.1f} min",
        "",
    ]
    group_w = 3 * CELL_W
    head1 = " " * LABEL_W + "".join(f"{format(r['devices'], ',') + ' devices':^{group_w}}" for r in runs)
    head2 = f"{'':<{LABEL_W}}" + "".join(
        f"{'service':>{CELL_W}}{'blackbox':>{CELL_W}}{'snmp_exp.':>{CELL_W}}" for _ in runs
    )
    head1 += f"  {'target':<{TARGET_W}} result"
    lines += [head1, head2, "-" * (LABEL_W + group_w * len(runs) + TARGET_W + 12)]
    for row in ROWS:
        cells = "".join(
            f"{_cell(show, r):>{CELL_W}}" for r in runs for show in (row.service, row.blackbox, row.snmp_exporter)
        )
        lines.append(f"{row.label:<{LABEL_W}}{cells}  {row.target:<{TARGET_W}} {_verdict(row, runs)}".rstrip())
    lines.append("")
    for run in runs:
        lines.append(f"Failed polls and events, {run['devices']:,} devices:")
        for phase in ("mixed", "http", "snmp", "snmp3"):
            data = run.get(phase, {})
            errors = ", ".join(f"{k}={v}" for k, v in data.get("errors", {}).items()) or "none"
            events = ", ".join(f"{k}={v}" for k, v in data.get("events", {}).items()) or "none"
            burst = data.get("burst", {}).get("errors")
            extra = ""
            if burst is not None:
                extra = "; all-at-once sweep failed: " + (", ".join(f"{k}={v}" for k, v in burst.items()) or "none")
            lines.append(
                f"  {phase:<6} failed: {errors}; events: {events}{extra}; "
                f"simulator busy {data.get('simulator_share', 0):.0%} of CPU 0"
            )
        for key in ("blackbox", "snmp_exporter"):
            ref = run.get(key, {})
            if ref.get("missing"):
                lines.append(f"  {key}: not installed")
            elif "error" in ref:
                lines.append(f"  {key}: {ref['error'][:200]}")
            elif ref:
                failures = ", ".join(f"{k}={v}" for k, v in ref["failures"].items()) or "none"
                latency = 1000 * ref["latency_p99_s"]
                lines.append(f"  {key} ({ref['version']}): failed {failures}; probe latency p99 {latency:.0f} ms")
        apply = run.get("apply")
        if apply:
            lines.append(
                f"  HealthStore.apply: {apply['observations']:,} observations in {apply['batches']} batches of "
                f"{apply['batch_size']} (0.5 s of polls), {apply['wall_s']:.1f} s wall; bringing the fleet up first "
                f"took {apply['setup_s']:.0f} s"
            )
    lines += [
        "",
        "Notes: CPU is user+system time of the measured process over its steady window (service: after every",
        "device was polled once; others: after a 5 s warm-up), per 1,000 completed polls = milliseconds per poll.",
        "Exporters probe their own half of the fleet (HTTP or SNMP) at that half's rate, driven over keep-alive HTTP;",
        "their CPU includes answering the driver, as it would include answering Prometheus (not counted here).",
        "The service's observations are counted and dropped; saving them is the HealthStore.apply line.",
        "Lateness: every slot run's delay (APScheduler's submit time minus its scheduled time), exact percentiles.",
    ]
    return "\n".join(lines)


def summary_figures(runs: list[dict[str, Any]]) -> list[Figure]:
    """The rows with a target, per fleet size: the service's figure beside the exporters' of the same run."""
    figures = []
    for run in runs:
        for row in ROWS:
            if row.check is None:
                continue
            try:
                ok = row.check(run)
            except (KeyError, TypeError, ZeroDivisionError):
                ok = False
            references = [
                f"{name} {cell}"
                for name, show in (("blackbox_exporter", row.blackbox), ("snmp_exporter", row.snmp_exporter))
                if (cell := _cell(show, run))
            ]
            what = f"{run['devices']:,} devices: {row.label.strip()}"
            figures.append(Figure(what, _cell(row.service, run), "; ".join(references), row.target, ok))
    return figures
