"""Grafana, as this service needs it: a small builder of dashboard JSON (`builder`), the four dashboards of the
fleet (`dashboards`), a client of Grafana's HTTP API that uploads them (`client`) and the `monitor dashboards`
command group (`cli`, mounted by monitor/cli/ and not exported here, so that using the rest needs no Typer).

The names below are the package's public API.
"""

from __future__ import annotations

from monitor.grafana.builder import (
    DATASOURCE,
    DATASOURCE_UID,
    Json,
    Query,
    bars,
    dashboard,
    district_variable,
    expressions,
    layout,
    panel,
    render,
    stat,
    table,
    time_column,
    timeseries,
)
from monitor.grafana.client import GrafanaClient, GrafanaError, Uploaded, folder_uid, push
from monitor.grafana.dashboards import all_dashboards, read_dashboards, write_dashboards

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "GrafanaClient",
    "GrafanaError",
    "Json",
    "Query",
    "Uploaded",
    "all_dashboards",
    "bars",
    "dashboard",
    "district_variable",
    "expressions",
    "folder_uid",
    "layout",
    "panel",
    "push",
    "read_dashboards",
    "render",
    "stat",
    "table",
    "time_column",
    "timeseries",
    "write_dashboards",
]
