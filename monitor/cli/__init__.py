"""The `monitor` command (Typer): run the service, its demo, and manage the database and the fleet.

One module per command group: `main` (the app itself: demo, serve, dispatch, collect, status), `db`, `fleet`,
`users`, `tickets`, `report`, `training`, `secrets`; `simulate` comes from monitor/simulator/cli.py, `dashboards` from
monitor/grafana/cli.py.
`_common` holds what they share (settings, a migrated engine, logging). `app` is the entry point
(`monitor = "monitor.cli:app"` in pyproject.toml) and the only name exported.
"""

from __future__ import annotations

import typer

from monitor.cli.db import db_app
from monitor.cli.fleet import fleet_app
from monitor.cli.main import app
from monitor.cli.report import report_app
from monitor.cli.report_submissions import register as register_submissions
from monitor.cli.secrets import secrets_app
from monitor.cli.tickets import tickets_app
from monitor.cli.training import training_app
from monitor.cli.users import users_app
from monitor.grafana.cli import dashboards_app
from monitor.sealing import keys_restorer
from monitor.simulator.cli import simulate_app


@app.callback()
def _keys_of_each_command(context: typer.Context) -> None:
    # A command takes its settings' keys for the sealed secrets (`_common.cli_settings`); when it ends, the
    # process's keys are as they were before (it matters when commands run in-process, as in the tests).
    context.call_on_close(keys_restorer())


app.add_typer(db_app, name="db")
app.add_typer(fleet_app, name="fleet")
app.add_typer(users_app, name="users")
app.add_typer(tickets_app, name="tickets")
register_submissions(report_app)  # `report submit` and `report submissions`
app.add_typer(report_app, name="report")
app.add_typer(training_app, name="training")
app.add_typer(secrets_app, name="secrets")
app.add_typer(simulate_app, name="simulate")
app.add_typer(dashboards_app, name="dashboards")

__all__ = ["app"]
