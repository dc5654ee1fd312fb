"""How the processes run: the web server, a collector, and the demo that runs everything in one process.

Each function owns the life of its parts: start in order, stop in reverse on Ctrl-C or SIGTERM, and end
within `shutdown_timeout_s` whatever happens (`monitor.shutdown.Stopper`, which says what it could not save).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, MutableSequence, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy.engine import Engine

from monitor.alerts.collector_watch import watch_shards
from monitor.alerts.dispatcher import Dispatcher
from monitor.alerts.notify import DeliveryStats, deliver_due, open_senders, purge_deliveries
from monitor.collectors.mqtt import EmbeddedBroker
from monitor.collectors.pool import PoolMember
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings
from monitor.db import session_scope, utcnow
from monitor.failures import FailureReport
from monitor.health.leases import Leases, ensure_shards
from monitor.inventory.demo import DemoPorts
from monitor.metrics import CollectorSource, MetricsServer, MetricsSource, collector_exporter, collector_metrics_port
from monitor.policies import Policies, delivery_policy
from monitor.reports.reminders import send_report_reminders
from monitor.reports.service import keep_up
from monitor.shutdown import Stopper, wait_for_stop
from monitor.web.app import create_app
from monitor.web.balance import BalancedConnections, ConnectionBalance
from monitor.web.serving import server_config

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)
DISPATCH_EVERY_S = 2.0
REMINDERS_EVERY_S = 3600.0  # the annual report's reminders go by the day: once an hour is plenty
DEMO_SCENARIOS = ("random-faults:per_day=2",)


def make_dispatcher(settings: Settings, engine: Engine, name: str = "dispatcher") -> Dispatcher:
    """The deployment's dispatcher: its alert rules and ticket policy (built once, here)."""
    policies = Policies.build(settings)
    return Dispatcher(engine, rules=policies.alerts, ticket_policy=policies.tickets, name=name)


async def dispatch_forever(dispatcher: Dispatcher, every_s: float = DISPATCH_EVERY_S) -> None:
    """Run dispatcher cycles until cancelled; a failing cycle (the database away) is reported and retried."""
    failures = FailureReport(log, "dispatcher cycle", every_s)
    while True:
        try:
            report = await asyncio.to_thread(dispatcher.run_once)
            failures.worked()
            if report.opened or report.resolved:
                log.info(
                    "problems: %d opened (%d grouped), %d resolved, %d suppressed; tickets %s",
                    report.opened,
                    report.grouped,
                    report.resolved,
                    report.suppressed,
                    ", ".join(report.tickets[:10]) or "-",
                )
        except Exception as exc:
            failures.failed(exc)
        await asyncio.sleep(every_s)


async def deliver_forever(settings: Settings, engine: Engine, stats: DeliveryStats) -> None:
    """Send queued notifications until cancelled (digests per recipient; retries with backoff)."""
    policy = delivery_policy(settings)
    failures = FailureReport(log, "sending notifications", settings.notify_interval_s)
    last_purge = 0.0
    async with open_senders() as senders:
        while True:
            try:
                await deliver_due(engine=engine, now=utcnow(), policy=policy, senders=senders, stats=stats)
                if time.monotonic() - last_purge > 3600:
                    await asyncio.to_thread(_purge, engine, settings)
                    last_purge = time.monotonic()
                failures.worked()
            except Exception as exc:
                failures.failed(exc)
            await asyncio.sleep(settings.notify_interval_s)


def _purge(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        purge_deliveries(session=session, before=utcnow() - timedelta(days=settings.notify_retention_days))


async def reports_forever(settings: Settings, engine: Engine) -> None:
    """Keep the reports' spans and daily roll-ups up with the state changes until cancelled."""
    failures = FailureReport(log, "keeping the uptime roll-ups", settings.report_rollup_every_s)
    while True:
        try:
            await asyncio.to_thread(keep_up, engine, utcnow(), lag_s=settings.report_rollup_lag_s)
            failures.worked()
        except Exception as exc:
            failures.failed(exc)
        await asyncio.sleep(settings.report_rollup_every_s)


async def reminders_forever(settings: Settings, engine: Engine, every_s: float = REMINDERS_EVERY_S) -> None:
    """Queue the annual results report's deadline reminders (each once, whichever process runs it) until cancelled."""
    failures = FailureReport(log, "queueing the annual report's reminders", every_s)
    while True:
        try:
            queued = await asyncio.to_thread(send_report_reminders, engine, utcnow(), settings)
            if queued:
                log.info("annual report reminders queued: %s", ", ".join(f"{k} ({v})" for k, v in queued.items()))
            failures.worked()
        except Exception as exc:
            failures.failed(exc)
        await asyncio.sleep(every_s)


async def watch_collectors_forever(settings: Settings, engine: Engine) -> None:
    """Look at the collectors' pool every lease period until cancelled: a shard nobody holds makes its devices
    unknown and opens the province's `collector` problem (monitor.alerts.collector_watch)."""
    failures = FailureReport(log, "watching the collectors' shards", settings.collector_lease_s)
    while True:
        try:
            if failures.failures:
                # The database was away: the collectors could not renew their leases either. Once it answers,
                # give them a lease to claim their shards again before judging any (no false `collector` alarm).
                await asyncio.to_thread(_database_answers, engine)
                await asyncio.sleep(settings.collector_lease_s)
            await asyncio.to_thread(watch_shards, engine, settings, utcnow())
            failures.worked()
        except Exception as exc:
            failures.failed(exc)
        await asyncio.sleep(settings.collector_lease_s)


def _database_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")


def alert_jobs(settings: Settings, engine: Engine, name: str, stats: DeliveryStats) -> list[Any]:
    """The dispatcher, the notification worker, the reports' roll-ups, the annual report's reminders and the
    watch of the collectors' shards, as coroutines to run in the background."""
    return [
        dispatch_forever(make_dispatcher(settings, engine, name)),
        deliver_forever(settings, engine, stats),
        reports_forever(settings, engine),
        reminders_forever(settings, engine),
        watch_collectors_forever(settings, engine),
    ]


@contextlib.asynccontextmanager
async def background(*coroutines: Any) -> AsyncIterator[None]:
    """Run coroutines as tasks for the duration of the block, cancelling them at its end."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_web(
    settings: Settings,
    engine: Engine,
    host: str,
    port: int,
    *,
    with_dispatcher: bool,
    sockets: list[socket.socket] | None = None,
    balance: ConnectionBalance | None = None,
) -> None:
    """The web process, with the dispatcher in it unless the deployment runs `monitor dispatch` apart.

    `sockets`: the listening socket of a worker of the pool (`run_web_pool`); `balance`: its share of the
    pool's connections (monitor.web.balance).
    """
    app = create_app(settings, engine)
    server = _server(app, settings, host, port, served=None if balance is None else BalancedConnections(app, balance))
    jobs = alert_jobs(settings, engine, f"web-{port}", app.state.delivery_stats) if with_dispatcher else []
    if balance is not None:
        balance.held = lambda: len(server.server_state.connections)
        jobs.append(balance.keep_publishing())
    stopper = Stopper(settings.shutdown_timeout_s)
    # What is built by now lives as long as the process: out of the collector's sight, a full collection
    # no longer walks the app, the templates and the ORM's mappers on every request's garbage.
    gc.collect()
    gc.freeze()
    with stopper.installed(server.stop):
        async with background(*jobs):
            await server.serve(sockets=sockets)


def run_web_forever(settings: Settings, engine: Engine, host: str, port: int, *, with_dispatcher: bool) -> None:
    """`monitor serve`: one web process, or `settings.web_workers` of them sharing the port (`run_web_pool`)."""
    if settings.web_workers == 1:
        event_loop_run(run_web(settings, engine, host, port, with_dispatcher=with_dispatcher))
        return
    engine.dispose()  # the workers open their own; the supervisor's dispatcher opens this one again
    event_loop_run(run_web_pool(settings, engine, host, port, with_dispatcher=with_dispatcher))


def event_loop_run(main: Coroutine[Any, Any, None]) -> None:
    """Run a web process's loop on uvloop (installed with uvicorn's standard extras; asyncio's own otherwise).

    A page's request spends a tenth of its time in the loop's machinery (`bench/bench_ui.py`); uvloop's is C.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the lock; a platform without it runs asyncio's loop
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def run_web_pool(settings: Settings, engine: Engine, host: str, port: int, *, with_dispatcher: bool) -> None:
    """Several web processes on one port, supervised: the kernel hands each new connection to one of them.

    Each worker listens on the port with its own socket (SO_REUSEPORT), so the kernel spreads connections
    evenly by their addresses. On one shared socket the first worker to wake took a whole burst: 46 of wrk's
    50 keep-alive connections on one worker, 4 on the other, and the page's tail latency doubled
    (bench/bench_ui.py); a reverse proxy's few long-lived upstream connections would pile up the same way. A
    worker that dies takes its socket with it, so new connections go to the others at once.

    The supervisor checks first that the port is free, starts `settings.web_workers` processes (spawned:
    nothing of this process's state is shared) and starts a worker again when one dies (not more often than
    once a second per slot). It
    runs the dispatcher itself when asked, so that one process dispatches, as one `monitor dispatch` would.
    Every worker is stateless (sessions, sign-in throttle and idempotency keys live in the database); each
    keeps its own bounds (`web_threads`, `web_client_max_active`, `web_max_connections`), so a pool of N
    allows N times each. A worker ends by itself when its supervisor is gone (killed with -9).
    On SIGTERM or Ctrl-C the supervisor asks each worker to stop, gives them `shutdown_timeout_s`, then kills.
    """
    uvicorn.Config(app="", host=host, port=port).bind_socket().close()  # in use: the usual error, and exit
    context = multiprocessing.get_context("spawn")
    counts = context.Array("i", settings.web_workers, lock=False)  # connections held, one slot per worker
    supervisor = os.getpid()
    workers: list[multiprocessing.process.BaseProcess | None] = [None] * settings.web_workers
    started = [0.0] * settings.web_workers

    def start(slot: int) -> None:
        counts[slot] = 0  # a dead worker's connections died with it
        process = context.Process(
            target=_pool_worker,
            args=(settings, host, port, supervisor, counts, slot),
            name=f"monitor-web-{slot}",
            daemon=False,
        )
        process.start()
        workers[slot], started[slot] = process, time.monotonic()

    stopping = asyncio.Event()
    stopper = Stopper(settings.shutdown_timeout_s)
    jobs = alert_jobs(settings, engine, f"web-{port}", DeliveryStats()) if with_dispatcher else []
    for slot in range(settings.web_workers):
        start(slot)
    log.info("web pool: %d workers on %s:%d", settings.web_workers, host, port)
    try:
        with stopper.installed(stopping.set):
            async with background(*jobs):
                while not stopping.is_set():
                    for slot, process in enumerate(workers):
                        if process is not None and not process.is_alive() and not stopping.is_set():
                            if time.monotonic() - started[slot] < 1.0:
                                continue
                            log.error("web worker %s ended (code %s): starting it again", process.pid, process.exitcode)
                            start(slot)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), 0.5)
    finally:
        await asyncio.to_thread(_stop_workers, [w for w in workers if w is not None], settings.shutdown_timeout_s)


def _stop_workers(workers: Sequence[multiprocessing.process.BaseProcess], deadline_s: float) -> None:
    for process in workers:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker's Stopper finishes the requests under way
    end = time.monotonic() + deadline_s
    for process in workers:
        process.join(max(0.0, end - time.monotonic()))
        if process.is_alive():
            log.error("web worker %s did not stop within %.0f s: killed", process.pid, deadline_s)
            process.kill()
            process.join(5)


def reuse_port_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on (host, port) that the pool's other workers share through SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.bind((host, port))
        listening.listen(backlog)
    except OSError:
        listening.close()
        raise
    return listening


def _pool_worker(
    settings: Settings, host: str, port: int, supervisor: int, counts: MutableSequence[int], slot: int
) -> None:
    """One worker of `run_web_pool` (a spawned process): serve on its own socket of the port until told to stop."""
    from monitor.db import make_engine

    os.setpgrp()  # Ctrl-C reaches the supervisor alone, which stops its workers in order
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_end_with, args=(supervisor,), name="supervisor-watch", daemon=True).start()
    listening = reuse_port_socket(host, port)
    balance = ConnectionBalance(counts, slot)
    engine = make_engine(settings)
    event_loop_run(run_web(settings, engine, host, port, with_dispatcher=False, sockets=[listening], balance=balance))


def _end_with(supervisor: int) -> None:
    """Stop this worker (SIGTERM to itself) once its supervisor is gone: nobody would stop or replace it."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    log.error("the web pool's supervisor %d is gone: stopping", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


async def run_dispatcher(settings: Settings, engine: Engine) -> None:
    """A dispatcher process, until Ctrl-C or SIGTERM (a cycle cut short is rolled back and done again)."""
    async with background(*alert_jobs(settings, engine, "dispatcher", DeliveryStats())):
        await wait_for_stop(Stopper(settings.shutdown_timeout_s))


class _Server(uvicorn.Server):
    """uvicorn's server, leaving the signals to the process's Stopper.

    uvicorn would install its own handlers and re-raise the signal once it has shut down, which would kill
    the process before the collector and the simulator beside it are stopped.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        """Stop taking requests and end `serve()` (open connections get a short grace)."""
        self.should_exit = True


def _server(
    app: FastAPI,
    settings: Settings,
    host: str,
    port: int,
    *metrics: MetricsSource,
    served: Callable[..., Any] | None = None,
) -> _Server:
    """The server of `app` (or of `served`, an ASGI app wrapped around it)."""
    for source in metrics:  # the demo's one /metrics also shows its in-process collector's work
        app.state.metrics.add_source(source)
    app.state.warm_metrics = True
    config = server_config(served or app, settings, host, port)  # configures logging
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, QuietMachineTraffic) for existing in access.filters):
        access.addFilter(QuietMachineTraffic())
    return _Server(config)


class QuietMachineTraffic(logging.Filter):
    """Keep devices' accepted heartbeats and Prometheus' scrapes out of the access log.

    Thousands of devices push every minute: their successful requests would bury the people's ones.
    Refused heartbeats and failed scrapes (status 400 and above) are still logged.
    """

    QUIET_PREFIXES = ("/api/v1/heartbeats/", "/metrics")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        _client, _method, path, _version, status = args
        quiet = isinstance(path, str) and path.startswith(self.QUIET_PREFIXES)
        return not (quiet and isinstance(status, int) and status < 400)


async def run_collector(
    settings: Settings, engine: Engine, shard: tuple[int, int], metrics_port: int | None = None
) -> None:
    """A collector process: polls its shard until Ctrl-C or SIGTERM; its metrics on `metrics_port`
    (default: 9180 + the shard's index, on MONITOR_HOST)."""
    collector = Collector(
        settings,
        engine,
        registry=load_profiles(settings.profiles_dir),
        shard=shard,
        mqtt_url=settings.mqtt_url,
        trap_port=settings.snmp_trap_port,
    )
    port = collector_metrics_port(shard[0]) if metrics_port is None else metrics_port
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics_server = MetricsServer(collector_exporter(collector), settings.host, port, token=token)
    stopper = Stopper(settings.shutdown_timeout_s)
    stopper.report(lambda: _unsaved(collector))
    await collector.start()
    try:
        await metrics_server.start()
        await wait_for_stop(stopper)
    finally:
        await metrics_server.stop()
        await collector.stop()


async def run_pool_collector(settings: Settings, engine: Engine, name: str, metrics_port: int | None = None) -> None:
    """A collector of the pool (PostgreSQL): leases its share of the shards until Ctrl-C or SIGTERM, then gives
    them back; its metrics on `metrics_port` (default 9180: give each collector of a host its own)."""
    ensure_shards(engine, settings.collector_shards)
    pool = PoolMember(Leases(engine, name, shard_count=settings.collector_shards, lease_s=settings.collector_lease_s))
    collector = Collector(
        settings,
        engine,
        registry=load_profiles(settings.profiles_dir),
        pool=pool,
        mqtt_url=settings.mqtt_url,
        trap_port=settings.snmp_trap_port,
    )
    port = collector_metrics_port(0) if metrics_port is None else metrics_port
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics_server = MetricsServer(collector_exporter(collector), settings.host, port, token=token)
    stopper = Stopper(settings.shutdown_timeout_s)
    stopper.report(lambda: _unsaved(collector))
    log.info(
        "collector %s joins the pool: %d shards, leases of %.0f s",
        name,
        settings.collector_shards,
        settings.collector_lease_s,
    )
    await collector.start()
    try:
        await metrics_server.start()
        await wait_for_stop(stopper)
    finally:
        await metrics_server.stop()
        await collector.stop()


def _unsaved(collector: Collector) -> str | None:
    unsaved = collector.observations_unsaved
    return f"{unsaved} observations of the collector not saved" if unsaved else None


def port_free(port: int, kind: socket.SocketKind = socket.SOCK_STREAM, host: str = "0.0.0.0") -> bool:
    """Whether `port` can be bound now (the simulator binds the wildcard address to answer all of 127/8)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def choose_demo_ports() -> DemoPorts:
    """The demo fleet's usual ports when they are free, else free ones (another demo runs on this machine)."""
    usual = DemoPorts()
    if (
        port_free(usual.http)
        and port_free(usual.snmp, socket.SOCK_DGRAM)
        and port_free(usual.snmp_v3, socket.SOCK_DGRAM)
        and port_free(usual.mqtt, host="127.0.0.1")
    ):
        return usual
    return DemoPorts(
        http=_free_port(socket.SOCK_STREAM),
        snmp=_free_port(socket.SOCK_DGRAM),
        snmp_v3=_free_port(socket.SOCK_DGRAM),
        mqtt=_free_port(socket.SOCK_STREAM),
    )


async def run_demo(
    settings: Settings,
    engine: Engine,
    *,
    seed: int,
    port: int,
    scenarios: Sequence[str] = DEMO_SCENARIOS,
    ports: DemoPorts = DemoPorts(),
) -> None:
    """Everything in one process: an MQTT broker, the simulated fleet, the collector and the web app."""
    from monitor.simulator import Simulator  # the demo is the one place that runs the simulator in-process
    from monitor.simulator.source import devices_from_inventory

    broker: EmbeddedBroker | None = None
    mqtt_url = settings.mqtt_url
    if mqtt_url is None:
        broker = EmbeddedBroker(port=ports.mqtt)
        await broker.start()
        mqtt_url = broker.url
    simulator = Simulator(
        await asyncio.to_thread(devices_from_inventory, settings),
        seed=seed,
        http_port=ports.http,
        snmp_port=ports.snmp,
        snmp_v3_port=ports.snmp_v3,
        mqtt_url=mqtt_url,
        service_url=f"http://127.0.0.1:{port}",
        scenarios=scenarios,
        data_dir=settings.data_dir,
    )
    collector = Collector(
        settings, engine, registry=load_profiles(settings.profiles_dir), mqtt_url=mqtt_url, trap_port=None
    )
    app = create_app(settings, engine)
    server = _server(app, settings, "127.0.0.1", port, CollectorSource(collector))
    stopper = Stopper(settings.shutdown_timeout_s)
    stopper.report(lambda: _unsaved(collector))
    await simulator.start()
    try:
        await collector.start()
        try:
            with stopper.installed(server.stop):
                async with background(*alert_jobs(settings, engine, "demo", app.state.delivery_stats)):
                    await server.serve()
        finally:
            await collector.stop()
    finally:
        await simulator.stop()
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.stop()
