"""A shard of the collectors' pool held by nobody (monitor.alerts.collector_watch), on a real PostgreSQL.

Its polled devices become `unknown` (never `down`), their faults and open problems stay, MQTT devices follow
shard 0 (the push role), heartbeat devices (heard by the web process) are left alone; one province-wide
`collector` problem opens, the overview and `GET /api/v1/overview` show it, and it resolves once every shard
is held again. Lapses are made by moving `expires_at` back: the real lapse of a killed collector is
tests/test_collector_pool.py's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.collector_watch import KEY, watch_shards
from monitor.alerts.models import AlertProblem, NotificationDelivery
from monitor.auth.cast import seed_cast
from monitor.config import Settings, load_settings
from monitor.db import make_engine, session_scope
from monitor.health.leases import SHARDS, Leases, ensure_shards
from monitor.health.machine import Observation
from monitor.health.models import DeviceHealthRow
from monitor.health.store import HealthStore
from monitor.inventory.models import Commune, Device
from monitor.inventory.units import init_province, load_units
from monitor.runtime import make_dispatcher
from monitor.tickets.models import Ticket
from monitor.web.app import create_app
from monitor.web.overview import overview
from tests.conftest import TEST_SECRET, _fresh_database_url, login
from tests.test_notify_support import add_channel
from tests.test_pages import sign_in

pytestmark = pytest.mark.postgres
COUNT = 4


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Settings]]:
    url = _fresh_database_url(request, "postgres", tmp_path)
    settings = load_settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path, collector_lease_s=3)
    engine = make_engine(settings)
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        commune = session.exec(select(Commune.code).where(col(Commune.district_code) == "183").limit(1)).one()
        for i, protocol in enumerate(
            ["http", "snmp", "http", "snmp", "http", "snmp", "http", "snmp", "mqtt", "heartbeat"]
        ):
            session.add(
                Device(
                    code=f"W{i:02d}",
                    name=f"W{i}",
                    kind="radio_cluster",
                    commune_code=commune,
                    protocol=protocol,
                    profile="generic-http",
                    address=f"t/{i}",
                    interval_s=60,
                )
            )
    yield engine, settings
    engine.dispose()


def _ids(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {d.code: d.id for d in session.exec(select(Device)) if d.id is not None}


def _states(engine: Engine) -> dict[str, tuple[str, list[str]]]:
    with Session(engine) as session:
        rows = session.exec(select(Device.code, DeviceHealthRow.state, DeviceHealthRow.faults).join(DeviceHealthRow))
        return {code: (state, sorted(faults)) for code, state, faults in rows}


def _lapse(engine: Engine, shards: list[int]) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(SHARDS)
            .where(SHARDS.c.shard.in_(shards))
            .values(expires_at=sa.func.now() - sa.text("interval '60 seconds'"))
        )


def test_unheld_shards_make_their_devices_unknown_and_open_one_problem_until_held_again(
    pg: tuple[Engine, Settings],
) -> None:
    engine, settings = pg
    now = datetime.now(UTC)
    assert watch_shards(engine, settings, now).shard_count == 0  # no pool yet: nothing to watch

    ids = _ids(engine)
    store = HealthStore(engine)
    down = next(code for code, i in ids.items() if i % COUNT == 1 and code != "W08" and code != "W09")
    observations = [
        Observation(device_id=i, observed_at=now - timedelta(seconds=30), reachable=True, source="http")
        for code, i in ids.items()
        if code != down
    ]
    observations += [
        Observation(device_id=ids[down], observed_at=now - timedelta(seconds=30 - k), reachable=False,
                    source="http", error="timeout")
        for k in range(3)
    ]  # fmt: skip
    store.apply(observations, now)
    make_dispatcher(settings, engine).run_once(now)
    assert _states(engine)[down] == ("down", ["offline"])

    ensure_shards(engine, COUNT)
    collector = Leases(engine, "c", shard_count=COUNT, lease_s=3)
    collector.round()
    quiet = watch_shards(engine, settings, now)
    assert quiet.shard_count == COUNT and quiet.unheld == [] and not quiet.opened

    _lapse(engine, [1, 2])
    found = watch_shards(engine, settings, now)
    assert found.unheld == [1, 2] and found.opened
    states = _states(engine)
    for code, i in ids.items():
        if code in ("W08", "W09"):  # MQTT follows shard 0, still held; heartbeats reach the web process
            assert states[code][0] == "up"
        elif i % COUNT in (1, 2):
            assert states[code][0] == "unknown", code
        else:
            assert states[code][0] == "up", code
    assert states[down] == ("unknown", ["offline"])  # its fault, and so its problem, stay
    assert found.made_unknown == sum(1 for c, i in ids.items() if i % COUNT in (1, 2) and c not in ("W08", "W09"))
    make_dispatcher(settings, engine).run_once(now)
    with Session(engine) as session:
        offline = session.exec(select(AlertProblem).where(AlertProblem.device_id == ids[down])).all()
        assert [p.status for p in offline] != [] and all(p.status != "resolved" for p in offline)
        problem = session.exec(select(AlertProblem).where(AlertProblem.key == KEY)).one()
        assert problem.status == "active" and problem.priority == "P1" and problem.details["shards"] == [1, 2]
        seen = overview(session, district_codes={"183"}, now=now)
        assert seen.collectors is not None and (seen.collectors.unheld, seen.collectors.shard_count) == (2, COUNT)

    again = watch_shards(engine, settings, now)  # nothing new to mark; the problem stays one
    assert again.made_unknown == 0 and not again.opened

    _lapse(engine, [0])
    assert watch_shards(engine, settings, now).unheld == [0, 1, 2]
    assert _states(engine)["W08"][0] == "unknown"  # shard 0 gone: nobody hears MQTT

    collector.round()  # renews its lapsed leases (nobody took them): every shard is held again
    healed = watch_shards(engine, settings, now)
    assert healed.unheld == [] and healed.resolved
    with Session(engine) as session:
        assert session.exec(select(AlertProblem).where(AlertProblem.key == KEY)).one().status == "resolved"
        assert overview(session, district_codes=None, now=now).collectors is None


# --- the province ticket ------------------------------------------------------------------------------------

ROLES = ("admin", "lanhdao", "caoloc", "dinhlap", "kythuat")
PROVINCE_WIDE = ("admin", "lanhdao")  # the province operator, and the leaders who read everything


def _province_tickets(engine: Engine) -> list[Ticket]:
    with Session(engine) as session:
        return list(session.exec(select(Ticket).where(Ticket.problem_key == KEY).order_by(col(Ticket.id))))


def _deliveries(engine: Engine) -> list[tuple[str, str | None, str]]:
    with Session(engine) as session:
        rows = session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.id)))
        return [(d.payload["notice"]["kind"], d.district_code, str(d.channel_id)) for d in rows]


@pytest.fixture
def clients(pg: tuple[Engine, Settings], tmp_path: Path) -> Iterator[dict[str, TestClient]]:
    """The fixed cast, each signed in to the real app (a page cookie, and a bearer token for the API)."""
    engine, settings = pg
    with session_scope(engine) as session:
        seed_cast(session=session)
    app = create_app(settings.model_copy(update={"cookie_secure": False}), engine)
    signed: dict[str, TestClient] = {}
    with contextlib.ExitStack() as stack:
        for role in ROLES:
            client = stack.enter_context(TestClient(app, base_url="http://127.0.0.1", follow_redirects=False))
            sign_in(client, role)
            client.headers.update(login(client, role))
            signed[role] = client
        yield signed


def test_an_unheld_shard_opens_one_p1_province_ticket_that_only_the_province_sees_until_held_again(
    pg: tuple[Engine, Settings], clients: dict[str, TestClient]
) -> None:
    engine, settings = pg
    with session_scope(engine) as session:
        province_channel = add_channel(session, "province", "webhook", {"url": "http://127.0.0.1:9/p", "secret": "s"})
        district_channel = add_channel(
            session, "cao-loc", "webhook", {"url": "http://127.0.0.1:9/d", "secret": "s"}, district_code="183"
        )
    now = datetime.now(UTC)
    ensure_shards(engine, COUNT)
    collector = Leases(engine, "c", shard_count=COUNT, lease_s=3)
    collector.round()
    _lapse(engine, [1])
    found = watch_shards(engine, settings, now)
    assert found.opened and found.ticket_code is not None

    [ticket] = _province_tickets(engine)
    assert (ticket.code, ticket.priority, ticket.scope, ticket.status) == (found.ticket_code, "P1", "province", "new")
    assert ticket.district_code is None and ticket.commune_code is None and ticket.details["shards"] == [1]
    with Session(engine) as session:
        problem = session.exec(select(AlertProblem).where(AlertProblem.key == KEY)).one()
        assert problem.ticket_code == ticket.code
        assert overview(session, district_codes=None, now=now).tickets_by_priority["P1"].open == 1
        assert overview(session, district_codes={"183"}, now=now).tickets_by_priority["P1"].open == 0
    # "opened" reaches the channel bound to no district, never a district's
    assert _deliveries(engine) == [("opened", None, str(province_channel.id))]

    code = ticket.code
    for role, client in clients.items():
        page, api = client.get(f"/tickets/{code}"), client.get(f"/api/v1/tickets/{code}")
        listed = [t["code"] for t in client.get("/api/v1/tickets").json()["items"]]
        exported = client.get("/api/v1/tickets/export", params={"format": "csv"}).text
        if role in PROVINCE_WIDE:
            assert page.status_code == 200 and "Toàn tỉnh" in page.text, role
            assert api.status_code == 200 and api.json()["district_code"] is None, role
            assert code in listed and code in client.get("/tickets").text, role
            assert any(code in line and "Toàn tỉnh" in line for line in exported.splitlines()), role
        else:  # another district's ticket, as far as a district's people can tell
            assert page.status_code == 404 and api.status_code == 404, role
            assert code not in listed and code not in exported and code not in client.get("/tickets").text, role

    assert watch_shards(engine, settings, now).ticket_code == code  # nothing new: the same ticket
    _lapse(engine, [0])
    assert watch_shards(engine, settings, now).unheld == [0, 1]
    make_dispatcher(settings, engine).reconcile_tickets(now)  # the service's problem is active: its ticket stays
    [ticket] = _province_tickets(engine)
    assert ticket.status == "new" and ticket.details["shards"] == [0, 1]

    collector.round()
    later = now + timedelta(minutes=5)
    healed = watch_shards(engine, settings, later)
    assert healed.resolved and healed.ticket_code == code
    [ticket] = _province_tickets(engine)
    assert ticket.status == "resolved" and ticket.auto_resolved
    assert _deliveries(engine)[1:] == [("resolved", None, str(province_channel.id))]
    assert all(channel != str(district_channel.id) for _, _, channel in _deliveries(engine))


def test_two_dispatchers_watching_at_once_open_one_problem_and_one_ticket(pg: tuple[Engine, Settings]) -> None:
    engine, settings = pg
    ensure_shards(engine, COUNT)
    Leases(engine, "c", shard_count=COUNT, lease_s=3).round()
    _lapse(engine, [2])
    now = datetime.now(UTC)
    watchers = 4
    start = threading.Barrier(watchers)

    def watch() -> bool:
        start.wait()
        return watch_shards(engine, settings, now).opened

    with ThreadPoolExecutor(watchers) as pool:
        opened = list(pool.map(lambda _: watch(), range(watchers)))
    assert opened.count(True) == 1
    with Session(engine) as session:
        assert len(session.exec(select(AlertProblem).where(AlertProblem.key == KEY)).all()) == 1
    assert len(_province_tickets(engine)) == 1
