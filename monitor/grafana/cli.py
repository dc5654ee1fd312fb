"""`monitor dashboards …`: write the Grafana dashboards as JSON, or upload them to a Grafana.

Mounted by monitor/cli/ as `app.add_typer(dashboards_app, name="dashboards")`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.grafana.client import GrafanaClient, GrafanaError, push
from monitor.grafana.dashboards import all_dashboards, read_dashboards, write_dashboards

DEFAULT_FOLDER = "Giám sát thông tin cơ sở"

dashboards_app = typer.Typer(
    help="Grafana dashboards (Vietnamese first): leadership, district, operations, collectors.",
    no_args_is_help=True,
)


@dashboards_app.command("build")
def build(
    output: Annotated[Path, typer.Option("--output", "-o", help="folder to write the JSON files into")] = Path(
        "dashboards"
    ),
) -> None:
    """Write every dashboard as JSON (what Grafana provisioning and `push` read)."""
    for path in write_dashboards(output):
        typer.echo(f"wrote {path}")


@dashboards_app.command("push")
def push_command(
    url: Annotated[str, typer.Option(help="Grafana's address, e.g. https://grafana.example.vn")],
    token: Annotated[
        str, typer.Option(envvar="GRAFANA_TOKEN", help="a service account token (or GRAFANA_TOKEN)", show_default=False)
    ],
    folder: Annotated[str, typer.Option(help="Grafana folder, created if missing")] = DEFAULT_FOLDER,
    prometheus_url: Annotated[
        str | None,
        typer.Option(help="also create or update the Prometheus data source (uid fleet-prometheus) at this URL"),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(help="push the JSON files of this folder instead of the dashboards built in", file_okay=False),
    ] = None,
) -> None:
    """Upload the dashboards to a Grafana (same uids: pushing again replaces them)."""
    dashboards = read_dashboards(from_dir) if from_dir is not None else all_dashboards()
    if not dashboards:
        typer.secho(f"error: no dashboard (*.json) in {from_dir}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    try:
        with GrafanaClient(url, token) as client:
            uploaded = push(client, dashboards, folder=folder, prometheus_url=prometheus_url)
    except GrafanaError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    for item in uploaded:
        typer.echo(f"{item.uid}: version {item.version} {url.rstrip('/')}{item.url}")
