"""A small builder of Grafana dashboard JSON (schema 39, Grafana 10 and later): panels, their queries, their
layout in rows of 24 columns, the `$district` variable, and the committed form of a dashboard.

The dashboards themselves are in `monitor.grafana.dashboards`; `expressions` lists every PromQL query of one, for
tests/test_prometheus.py to check against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

DATASOURCE_UID = "fleet-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
TAGS = ["fleet-monitor"]
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target of a panel: `legend` uses Grafana's {{label}} syntax; `table` asks for one instant row
    per series (labels as columns) rather than a time series."""

    expr: str
    legend: str = ""
    table: bool = False
    instant: bool = False

    def target(self, ref: str) -> Json:
        target: Json = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "refId": ref,
            "legendFormat": self.legend,
        }
        if self.table:
            return target | {"format": "table", "instant": True, "range": False}
        if self.instant:
            return target | {"instant": True, "range": False}
        return target | {"instant": False, "range": True}


def _thresholds(steps: Sequence[tuple[str, float | None]]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def panel(
    kind: str,
    title: str,
    queries: Sequence[Query],
    *,
    width: int,
    height: int,
    unit: str = "short",
    description: str = "",
    steps: Sequence[tuple[str, float | None]] = (("green", None),),
    options: Json | None = None,
    overrides: Sequence[Json] = (),
    transformations: Sequence[Json] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    custom: Json | None = None,
) -> Json:
    """A panel without its place yet (`layout` gives it `gridPos` and `id`)."""
    defaults: Json = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": _thresholds(steps)}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom is not None:
        defaults["custom"] = custom
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)],
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": options or {},
        "transformations": list(transformations),
        "gridPos": {"w": width, "h": height},
    }


def stat(title: str, expr: str, *, unit: str = "short", width: int = 4, **kwargs: Any) -> Json:
    """A single big number (the last value)."""
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
    return panel(
        "stat", title, [Query(expr, instant=True)], width=width, height=4, unit=unit, options=options, **kwargs
    )


def bars(
    title: str, queries: Sequence[Query], *, unit: str = "short", width: int = 12, height: int = 8, **kw: Any
) -> Json:
    """Horizontal bars, one per series (the last value)."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
    }
    return panel("bargauge", title, queries, width=width, height=height, unit=unit, options=options, **kw)


def timeseries(title: str, queries: Sequence[Query], *, unit: str = "short", width: int = 12, **kwargs: Any) -> Json:
    """Lines over the dashboard's time range."""
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi"},
    }
    custom = {"lineWidth": 2, "fillOpacity": 10, "showPoints": "never", "spanNulls": False}
    return panel(
        "timeseries", title, queries, width=width, height=8, unit=unit, options=options, custom=custom, **kwargs
    )


def table(
    title: str, queries: Sequence[Query], columns: dict[str, str], *, width: int = 24, height: int = 10, **kw: Any
) -> Json:
    """Rows of series; `columns` maps the labels and values kept to their headings, in order."""
    merge = [{"id": "merge", "options": {}}] if len(queries) > 1 else []
    organize = {
        "id": "organize",
        "options": {
            "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "province": True},
            "indexByName": {name: i for i, name in enumerate(columns)},
            "renameByName": columns,
        },
    }
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return panel("table", title, queries, width=width, height=height, options=options,
                 transformations=[*merge, organize], **kw)  # fmt: skip


def time_column(name: str) -> Json:
    """An override showing a Unix time in milliseconds (Vietnam time in the browser) as a date and time."""
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": "dateTimeAsLocal"}]}


def layout(panels: Sequence[Json]) -> list[Json]:
    """Place panels left to right in rows of 24 columns, numbering them."""
    placed: list[Json] = []
    x = y = row_height = 0
    for number, item in enumerate(panels, start=1):
        grid = item["gridPos"]
        if x + grid["w"] > 24:
            x, y, row_height = 0, y + row_height, 0
        placed.append(item | {"id": number, "gridPos": grid | {"x": x, "y": y}})
        x += grid["w"]
        row_height = max(row_height, grid["h"])
    return placed


def district_variable(*, multi: bool) -> Json:
    """`$district`: the districts (or maintenance areas) by name, their codes as values."""
    return {
        "name": "district",
        "label": "Huyện — District",
        "type": "query",
        "datasource": DATASOURCE,
        # qryType 3: Grafana's "query result" variable query for Prometheus.
        "query": {"qryType": 3, "query": "query_result(fleet_district_info)", "refId": "districts"},
        "definition": "query_result(fleet_district_info)",
        "regex": '/district="(?<value>[^"]+)".*district_name="(?<text>[^"]+)"/',
        "refresh": 1,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*" if multi else None,
        "current": {},
        "options": [],
        "hide": 0,
    }


def dashboard(uid: str, title: str, description: str, panels: Sequence[Json], *, variables: Sequence[Json] = (),
              time_from: str = "now-24h", refresh: str = "1m") -> Json:  # fmt: skip
    """A whole dashboard for Grafana 10 and later (schema 39)."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "weekStart": "monday",
        "liveNow": False,
        "links": [{"type": "dashboards", "tags": TAGS, "asDropdown": True, "title": "Bảng khác — Other dashboards"}],
        "annotations": {"list": []},
        "templating": {"list": list(variables)},
        "panels": layout(panels),
    }


def render(dashboard_json: Json) -> str:
    """The committed form of a dashboard: indented, keys sorted, Vietnamese kept as it is, a final newline."""
    return json.dumps(dashboard_json, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*\w+\)$")
_QUERY_RESULT = re.compile(r"^query_result\((?P<expr>.*)\)$", re.S)


def expressions(dashboard_json: Json) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query of a dashboard: panel targets and template variables (Grafana's
    `query_result(EXPR)` and `label_values(METRIC, LABEL)` unwrapped to their PromQL)."""
    for item in dashboard_json.get("panels", []):
        for target in item.get("targets", []):
            if target.get("expr"):
                yield f"{dashboard_json['uid']} / {item['title']} / {target['refId']}", target["expr"]
    for variable in dashboard_json.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        if match := _QUERY_RESULT.match(text):
            text = match["expr"]
        elif match := _LABEL_VALUES.match(text):
            text = match["metric"]
        if text:
            yield f"{dashboard_json['uid']} / ${variable['name']}", text


__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "Json",
    "Query",
    "bars",
    "dashboard",
    "district_variable",
    "expressions",
    "layout",
    "panel",
    "render",
    "stat",
    "table",
    "time_column",
    "timeseries",
]
