"""The FastAPI application factory: wires settings, database and routers; nothing imports it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from monitor import __version__
from monitor.alerts.notify import DeliveryStats
from monitor.auth.service import LoginThrottle
from monitor.collectors.profiles import load_profiles
from monitor.config import Settings
from monitor.db import ensure_migrated, make_engine
from monitor.health.store import HealthStore, policy_from_settings
from monitor.metrics_fleet import web_exporter
from monitor.web.api import alerts, auth, heartbeats, inventory, metrics, notifications, tickets
from monitor.web.deps import EngineDep
from monitor.web.problems import install_problem_handlers


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the web application; refuses to start on a database that is not migrated."""
    settings.require_real_secrets()
    engine = engine or make_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_migrated(engine)
        if app.state.warm_metrics:  # a served process: the first scrape should not wait for the labels
            app.state.metrics.warm()
        try:
            yield
        finally:
            app.state.metrics.close()  # ends the metrics worker (it would also end with this process)

    app = FastAPI(
        title="Giám sát hệ thống thông tin cơ sở — Fleet monitor",
        version=__version__,
        description="Giám sát cụm loa và bảng tin điện tử, phiếu sửa chữa theo huyện. "
        "Monitoring of radio clusters and bulletin boards, with repair tickets routed to districts.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.login_throttle = LoginThrottle()
    app.state.profiles = load_profiles(settings.profiles_dir)
    app.state.health_store = HealthStore(engine, policy_from_settings(settings))
    app.state.heartbeat_last_seen = {}
    app.state.delivery_stats = DeliveryStats()  # the notification worker of this process counts here
    app.state.metrics = web_exporter(engine, delivery_stats=app.state.delivery_stats)
    app.state.warm_metrics = False  # set by monitor.runtime for the processes it serves
    install_problem_handlers(app)
    app.include_router(auth.router)
    app.include_router(inventory.router)
    app.include_router(heartbeats.router)
    app.include_router(metrics.router)
    app.include_router(alerts.router)
    app.include_router(notifications.router)
    app.include_router(tickets.router)

    @app.get("/healthz", tags=["service"])
    async def healthz(db: EngineDep) -> Any:
        """Liveness and database reachability, for load balancers and monitoring."""
        try:
            with db.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": "ok", "version": __version__}

    return app
