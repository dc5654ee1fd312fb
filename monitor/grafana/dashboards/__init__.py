"""Grafana dashboards of the fleet, built from Python and committed as JSON in `dashboards/`.

Four dashboards, Vietnamese first, one module each: **Lãnh đạo** (`leadership`: the province's uptime now, over
30 and 365 days, by district against the target, the plan's coverage, tickets and SLA), **Huyện** (`district`:
one district, `$district`: what is down, tickets by status and age, time to repair), **Vận hành**
(`operations`, for technicians: what is down now and since when, a map of devices coloured by state, faults,
recent changes) and **Bộ thu thập** (`collectors`: poll rates, errors, latency, lateness, scrape size). Each
module builds its dashboard row by row of panels, one function per row.

They read one Prometheus data source of fixed uid (`builder.DATASOURCE_UID`, provisioned by deploy/grafana/),
mostly through the recording rules of deploy/prometheus/rules/recording.yml. Every query is checked against a
real Prometheus by tests/test_prometheus.py; `monitor dashboards build` writes the JSON again after a change
here, and tests/test_dashboards.py fails while the committed JSON differs from what this package builds.
"""

from __future__ import annotations

import json
from pathlib import Path

from monitor.grafana.builder import Json, render
from monitor.grafana.dashboards.collectors import collectors
from monitor.grafana.dashboards.district import district
from monitor.grafana.dashboards.leadership import leadership
from monitor.grafana.dashboards.operations import operations


def all_dashboards() -> dict[str, Json]:
    """Every dashboard by its file name in `dashboards/`."""
    return {
        "leadership.json": leadership(),
        "district.json": district(),
        "operations.json": operations(),
        "collectors.json": collectors(),
    }


def write_dashboards(folder: Path) -> list[Path]:
    """Write every dashboard's JSON into `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in all_dashboards().items():
        path = folder / name
        path.write_text(render(content), encoding="utf-8")
        written.append(path)
    return written


def read_dashboards(folder: Path) -> dict[str, Json]:
    """The dashboards saved in `folder` (*.json), by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


__all__ = ["all_dashboards", "read_dashboards", "write_dashboards"]
