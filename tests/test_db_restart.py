"""PostgreSQL restarts under load, and every process of the service reconnects by itself.

Real processes on a private PostgreSQL (its own, since it is restarted): `monitor serve --workers 2
--no-dispatcher`, `monitor dispatch`, two `monitor collect` in the pool, and the simulated fleet. A thread
drives the API with a personal bearer token (device lists and ticket comments) and counts the answers. The
database is stopped (`fast`, as a restart or a switch-over does) for longer than a collector's lease, then
started again on the same data directory and port. Afterwards:
- no process ended;
- while the database was away the API answered 503 with a problem body (never a 500, never a hang), and 200
  again within seconds of its return;
- the dispatcher turns a fault that appears after the restart into a problem and a ticket;
- the collectors hold every shard again and poll every device;
- no device was declared down for the database's absence;
- each process told of the outage in a few lines, not a line per retry.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.auth.cast import seed_cast
from monitor.auth.models import User
from monitor.auth.tokens import create_token
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.inventory.choices import DeviceKind, Protocol
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune
from monitor.inventory.service import apply_fleet_rows
from monitor.inventory.units import init_province, load_units
from tests.conftest import TEST_SECRET
from tests.peers import free_port, stop_process
from tests.postgres import PostgresServer

pytestmark = pytest.mark.postgres
SHARDS = 8
LEASE_S = 3.0
INTERVAL_S = 4
DOWN_S = 5.0  # longer than a lease: every shard lapses while the database is away
BACK_WITHIN_S = 5.0  # the API answers 200 again this soon after the database is back
LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (?:INFO|WARNING|ERROR) (\S+: .*)$")


@dataclass
class Answer:
    at: float
    status: int | str  # an HTTP status, or the transport error's name
    seconds: float
    content_type: str = ""
    title: str = ""
    key: str = ""  # the Idempotency-Key of a comment


@dataclass
class Service:
    engine: Engine
    server: PostgresServer
    env: dict[str, str]
    folder: Path
    base: str
    token: str
    device_ids: list[int]
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "monitor", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
        )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def query(self, statement: str) -> list[sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(statement)).all())


class Load:
    """A thread that sends API requests one after another and keeps every answer."""

    def __init__(self, base: str, token: str, ticket: str) -> None:
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        # A new connection per request: the kernel hands them to either web worker, so both are exercised.
        self._client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._ticket = ticket
        self._thread = threading.Thread(target=self._run, name="api-load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            started, key = time.monotonic(), "" if turn % 3 else f"comment-{turn}"
            try:
                answer = self.comment(key) if key else self._client.get("/api/v1/devices", params={"limit": 20})
            except httpx.HTTPError as exc:
                self.answers.append(Answer(started, type(exc).__name__, time.monotonic() - started, key=key))
                time.sleep(0.05)
                continue
            kind = answer.headers.get("content-type", "")
            title = answer.json().get("title", "") if kind.startswith("application/problem+json") else ""
            self.answers.append(Answer(started, answer.status_code, time.monotonic() - started, kind, title, key))
            time.sleep(0.05)

    def comment(self, key: str) -> httpx.Response:
        """A comment on the ticket, as a page's queue sends it: with its Idempotency-Key."""
        return self._client.post(
            f"/api/v1/tickets/{self._ticket}/comments", json={"text": key}, headers={"Idempotency-Key": key}
        )

    def since(self, at: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= at]


def _wait(condition: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if callable(condition) and condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    # Not under pytest's tmp folder, which is private to root (the server runs as postgres).
    base = Path(tempfile.mkdtemp(prefix="monitor-test-pg-restart-"))
    server = PostgresServer(base).start()
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("CREATE DATABASE monitor"))
    admin.dispose()
    url = server.url("monitor")
    engine = make_engine(load_settings(database_url=url))
    upgrade(engine)
    http_port, snmp_port, web_port = free_port(), free_port(), free_port()
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(col(Commune.district_code) == "183")))[:4]
        rows = []
        for row in generate_demo_rows(communes, seed=7, today=date(2026, 1, 1)):
            if row.protocol is Protocol.HTTP:
                rows.append(
                    replace(row, address=row.address.replace(":18080/", f":{http_port}/"), interval_s=INTERVAL_S)
                )
            elif row.protocol is Protocol.SNMP and row.port == 16161:
                rows.append(replace(row, port=snmp_port, interval_s=INTERVAL_S))
        apply_fleet_rows(rows, session=session)
        seed_cast(session=session)
        officer = session.exec(select(User).where(User.username == "caoloc")).one()
        _row, token = create_token(officer, session=session, note="load")
    with engine.connect() as connection:
        ids = list(connection.execute(sa.text("SELECT id FROM devices WHERE active")).scalars())
    rules = tmp_path / "rules.yml"
    rules.write_text("group_wait_s: 0\n")  # a new problem is acted on at the next cycle
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {
        "MONITOR_DATABASE_URL": url,
        "MONITOR_DATA_DIR": str(tmp_path),
        "MONITOR_SECRET_KEY": TEST_SECRET,
        "MONITOR_PORT": str(web_port),
        "MONITOR_HOST": "127.0.0.1",
        "MONITOR_COOKIE_SECURE": "false",
        "MONITOR_SHUTDOWN_TIMEOUT_S": "5",
        "MONITOR_ALERT_RULES_FILE": str(rules),
        "MONITOR_COLLECTOR_SHARDS": str(SHARDS),
        "MONITOR_COLLECTOR_LEASE_S": str(LEASE_S),
        "MONITOR_HTTP_TIMEOUT_S": "1",
        "MONITOR_SNMP_TIMEOUT_S": "0.5",
        "MONITOR_SNMP_RETRIES": "0",
    }
    found = Service(engine, server, env, tmp_path, f"http://127.0.0.1:{web_port}", token, ids)
    try:
        found.start(
            "simulator",
            *("simulate", "run", "--seed", "7", "--http-port", str(http_port), "--snmp-port", str(snmp_port)),
            *("--snmp-v3-port", str(free_port())),
        )
        found.start("web", "serve", "--workers", "2", "--no-dispatcher")
        found.start("dispatcher", "dispatch")
        for name in ("c1", "c2"):
            found.start(name, "collect", "--name", name, "--metrics-port", str(free_port()))
        yield found
    finally:
        for process in found.processes.values():
            stop_process(process, grace_s=10)
        engine.dispose()
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _all_held(service: Service) -> bool:
    rows = service.query("SELECT owner, expires_at > now() AS current FROM collector_shards")
    return len(rows) == SHARDS and all(row.owner in {"c1", "c2"} and row.current for row in rows)


def _records_between(text: str, start: datetime, end: datetime) -> list[str]:
    """The log's records (not a traceback's lines) stamped within [start, end]; the processes log local time."""
    found = []
    for match in map(LOG_RECORD.match, text.splitlines()):
        if match and start <= datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").astimezone() <= end:
            found.append(match.group(2))
    return found


def test_every_process_reconnects_after_postgresql_restarts_under_load(service: Service) -> None:
    started = time.monotonic()
    _wait(lambda: _answers(f"{service.base}/healthz"), 30, "the web answers")
    _wait(lambda: _all_held(service), 30, "the two collectors share every shard")
    _wait(
        lambda: (
            all(r.polled for r in service.query("SELECT last_observation_at IS NOT NULL AS polled FROM device_health"))
            and len(service.query("SELECT 1 FROM device_health")) == len(service.device_ids)
        ),
        20,
        "every device polled",
    )
    headers = {"Authorization": f"Bearer {service.token}"}
    ticket = httpx.post(
        f"{service.base}/api/v1/tickets",
        json={"commune_code": service.query("SELECT commune_code FROM devices LIMIT 1")[0][0], "title": "Loa rè"},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text

    code_of_ticket = ticket.json()["code"]
    with Load(service.base, service.token, code_of_ticket) as load:
        time.sleep(2)
        down_at, down_clock = time.monotonic(), datetime.now(UTC).replace(microsecond=0)
        service.server.restart(DOWN_S)
        up_at = time.monotonic()
        _wait(lambda: any(a.status == 200 for a in load.since(up_at)), BACK_WITHIN_S, "the API answers 200 again")
        _wait(lambda: _all_held(service), 3 * LEASE_S, "every shard held again")
        back = service.query("SELECT now() AS now")[0].now
        _wait(
            lambda: all(
                r.last_observation_at > back for r in service.query("SELECT last_observation_at FROM device_health")
            ),
            LEASE_S + INTERVAL_S + 4,
            "every device polled again",
        )
        time.sleep(1)
        back_clock = datetime.now(UTC)

    # A fault after the restart becomes a problem and a ticket: the dispatcher works again.
    code, device_id = service.query(
        f"SELECT code, id FROM devices WHERE protocol = 'http' AND kind = '{DeviceKind.RADIO_CLUSTER.value}' "
        "ORDER BY code LIMIT 1"
    )[0]
    subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "inject", "--device", code, "--fault", "amplifier_fault"],
        env=service.env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    _wait(
        lambda: service.query(
            f"SELECT 1 FROM alert_problems WHERE device_id = {device_id} AND kind = 'amplifier_fault' "
            "AND status = 'active' AND ticket_code IS NOT NULL"
        ),
        INTERVAL_S + 10,
        "the fault's problem and ticket opened",
    )

    for name, process in service.processes.items():
        assert process.poll() is None, f"{name} ended:\n{service.log(name)[-3000:]}"

    # While the database was away: 503 with a problem body, quickly; never a 500 nor a hang.
    during = [a for a in load.answers if down_at <= a.at <= up_at]
    statuses = Counter(a.status for a in load.answers)
    assert during and all(a.status in {503, 200, 201} for a in during), statuses
    refused = [a for a in during if a.status == 503]
    assert len(refused) >= 5, statuses
    assert all(a.content_type.startswith("application/problem+json") for a in refused)
    assert {a.title for a in refused} <= {"Database unavailable", "Service busy"}, {a.title for a in refused}
    assert max(a.seconds for a in load.answers) < 3.0, "a request hung while the database was away"
    assert set(statuses) <= {200, 201, 503}, statuses
    # A comment refused meanwhile, sent again with its key, is applied now (the key was not kept as used).
    resent = next(a.key for a in refused if a.key)
    again = httpx.post(
        f"{service.base}/api/v1/tickets/{code_of_ticket}/comments",
        json={"text": resent},
        headers={**headers, "Idempotency-Key": resent},
    )
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers, again.text
    settled = load.answers[-20:]  # after the return, both workers answer (one left without a database would 503)
    assert len(settled) == 20 and all(a.status in {200, 201} for a in settled), [a.status for a in settled]

    # No device declared down for it, nor made unknown: the shards lapsed with the database, not the collectors.
    assert not service.query("SELECT device_id, reason FROM state_changes WHERE new_state IN ('down', 'unknown')")
    assert not service.query("SELECT device_id FROM device_health WHERE state IN ('down', 'unknown')")
    assert not service.query("SELECT key FROM alert_problems WHERE kind = 'collector'")

    # Each process told of the outage in a few lines: none repeated per retry, nor per request refused.
    for name in ("web", "dispatcher", "c1", "c2"):
        records = _records_between(service.log(name), down_clock, back_clock + timedelta(seconds=1))
        said = "\n".join(records)
        assert any(word in said for word in ("unavailable", "failed")), f"{name} did not tell the outage:\n{said}"
        repeated = Counter(re.sub(r"\d+", "#", record) for record in records)
        assert len(records) <= 15 and max(repeated.values()) <= 3, f"{name}: {len(records)} records:\n{said}"
    assert time.monotonic() - started < 55
