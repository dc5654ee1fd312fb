"""The FastAPI application factory: wires settings, database and routers; nothing imports it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from monitor import __version__
from monitor.alerts.notify import DeliveryStats
from monitor.auth.service import LoginThrottle, SignedIn
from monitor.collectors.profiles import load_profiles
from monitor.config import Settings
from monitor.db import ensure_migrated, make_engine
from monitor.health.store import HealthStore, policy_from_settings
from monitor.metrics import web_exporter
from monitor.policies import Policies
from monitor.web.answers import GenerationsReader, KeptAnswers
from monitor.web.api import (
    alerts,
    audit,
    auth,
    fleet_import,
    fleet_map,
    heartbeats,
    inventory,
    metrics,
    notifications,
    overview,
    report_submissions,
    reports,
    ticket_bulk,
    tickets,
    training,
    user_admin,
    users,
)
from monitor.web.docs import install_docs
from monitor.web.guard import GuardLimits, RequestGuard
from monitor.web.idempotency import IdempotencyMiddleware
from monitor.web.openapi import install_openapi
from monitor.web.problems import install_problem_handlers
from monitor.web.ui import install_pages
from monitor.web.ui.tickets import QueueRead, TicketRead

HEALTHZ_DATABASE_WAIT_S = 1.0  # /healthz answers within about this, whatever the database does


def is_upload(method: str, path: str) -> bool:
    """Requests whose body may be as large as an upload (photos, a scanned signed report, a fleet file): the rest
    get the smaller JSON cap."""
    return method == "POST" and path.endswith(("/attachments", "/submissions", "/fleet/import"))


class DatabaseProbe:
    """Asks the database `SELECT 1` on a thread of its own, one question at a time.

    /healthz must answer while the request threads are all busy and the pool is empty: it waits at most
    HEALTHZ_DATABASE_WAIT_S for the answer and says "degraded" when none came, without piling up questions.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="healthz")
        self._pending: concurrent.futures.Future[None] | None = None

    def _ask(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    async def check(self) -> str:
        """ "ok", "busy" (no answer in time: locked, or every connection in use) or "unreachable"."""
        if self._pending is None or self._pending.done():
            self._pending = self._executor.submit(self._ask)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._pending)), HEALTHZ_DATABASE_WAIT_S)
        except TimeoutError:
            return "busy"
        except sa.exc.TimeoutError:
            return "busy"
        except sa.exc.SQLAlchemyError:
            return "unreachable"
        return "ok"

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the web application; refuses to start on a database that is not migrated."""
    settings.require_real_secrets()
    engine = engine or make_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The database work of every request runs on these threads (routes are plain `def`).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.effective_web_threads
        await asyncio.to_thread(ensure_migrated, engine)
        if app.state.warm_metrics:  # a served process: the first scrape should not wait for the labels
            app.state.metrics.warm()
        try:
            yield
        finally:
            app.state.metrics.close()  # ends the metrics worker (it would also end with this process)
            app.state.database_probe.close()
            app.state.generations.close()

    app = FastAPI(
        title="Giám sát hệ thống thông tin cơ sở — Fleet monitor",
        version=__version__,
        description="Giám sát cụm loa và bảng tin điện tử, phiếu sửa chữa theo huyện. "
        "Monitoring of radio clusters and bulletin boards, with repair tickets routed to districts.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.policies = Policies.build(settings)
    app.state.engine = engine
    # Failed device authentications: 10 per (address, device) and 100 per address in 15 minutes.
    app.state.device_auth_throttles = (LoginThrottle(max_failures=10), LoginThrottle(max_failures=100))
    app.state.database_probe = DatabaseProbe(engine)
    app.state.profiles = load_profiles(settings.profiles_dir)
    # What this process keeps while the data under it is unchanged (monitor.web.answers): the ticket queues it
    # answered (the API's, as JSON; the page's, as read), what a ticket's page read of its history, and who each
    # session token it saw belongs to.
    app.state.kept_queues = KeptAnswers[bytes]()
    app.state.kept_queue_pages = KeptAnswers[QueueRead]()
    app.state.kept_ticket_pages = KeptAnswers[TicketRead]()
    app.state.kept_sign_ins = KeptAnswers[SignedIn](max_bytes=4 * 1024 * 1024)
    app.state.generations = GenerationsReader(engine, settings.database_pool_timeout_s)
    app.state.health_store = HealthStore(engine, policy_from_settings(settings))
    app.state.heartbeat_last_seen = {}
    app.state.delivery_stats = DeliveryStats()  # the notification worker of this process counts here
    app.state.metrics = web_exporter(engine, delivery_stats=app.state.delivery_stats)
    app.state.warm_metrics = False  # set by monitor.runtime for the processes it serves
    install_problem_handlers(app, engine)
    install_docs(app)
    app.add_middleware(IdempotencyMiddleware)  # inside the guard: an action sent twice is applied once
    app.add_middleware(
        RequestGuard,
        limits=GuardLimits(
            max_body_bytes=settings.web_max_body_bytes,
            max_upload_bytes=settings.web_max_upload_bytes,
            body_idle_timeout_s=settings.web_body_idle_timeout_s,
            body_timeout_s=settings.web_body_timeout_s,
            client_max_receiving=settings.web_client_max_receiving,
            client_max_active=settings.effective_client_max_active,
            queue_timeout_s=settings.web_queue_timeout_s,
        ),
        is_upload=is_upload,
    )
    app.include_router(auth.router)
    app.include_router(inventory.router)
    app.include_router(fleet_map.router)
    app.include_router(fleet_import.router)
    app.include_router(heartbeats.router)
    app.include_router(metrics.router)
    app.include_router(alerts.router)
    app.include_router(notifications.router)
    app.include_router(tickets.router)
    app.include_router(ticket_bulk.router)
    app.include_router(reports.router)
    app.include_router(overview.router)
    app.include_router(report_submissions.router)
    app.include_router(training.router)
    app.include_router(users.router)
    app.include_router(user_admin.router)
    app.include_router(audit.router)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> Any:
        """Liveness and database reachability, for load balancers and monitoring.

        Answers within about a second whatever the database does: `ok`; `degraded` (200) while the database
        is busy or every connection is in use (the process is alive and will recover by itself); 503 when the
        database cannot be reached at all.
        """
        database = await app.state.database_probe.check()
        if database == "unreachable":
            return JSONResponse({"status": "error", "database": database, "version": __version__}, status_code=503)
        status = "ok" if database == "ok" else "degraded"
        return {"status": status, "database": database, "version": __version__}

    install_pages(app)  # the pages for people, after the API's error handlers (it answers pages' errors as pages)
    install_openapi(app)  # last: it documents and completes the routes above
    return app
