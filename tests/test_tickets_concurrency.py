"""Many writers at once, each with its own connection: one problem still gets exactly one open ticket.

The PostgreSQL tests are the real proof (concurrent transactions, the partial unique index deciding);
SQLite serialises writers, which the service asks for with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from monitor.config import load_settings
from monitor.db import make_engine, session_scope
from monitor.inventory.models import Device
from monitor.inventory.units import init_province, load_units
from monitor.tickets import service
from monitor.tickets.choices import TicketOutcomeAction
from monitor.tickets.lifecycle import ProblemReport
from monitor.tickets.models import Ticket
from monitor.tickets.policy import TicketPolicy
from tests.postgres import PostgresServer
from tests.test_tickets_support import DONG_DANG, T0, hours, report

WRITERS = 16
POLICY = TicketPolicy()


def _province(url: str) -> Engine:
    engine = make_engine(load_settings(database_url=url, database_pool_size=WRITERS + 4))
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        session.add(
            Device(
                code="06184-CL01",
                name="Cụm loa chợ",
                kind="radio_cluster",
                commune_code=DONG_DANG,
                profile="p",
                protocol="heartbeat",
            )
        )
    return engine


@pytest.fixture
def postgres_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh migrated PostgreSQL database (cloned from the session's template) holding the province."""
    server: PostgresServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    engine = _province(server.url(name))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    import shutil

    path = tmp_path / "monitor.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    engine = _province(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def the_problem(engine: Engine) -> ProblemReport:
    with Session(engine) as session:
        device_id = session.exec(select(Device.id).where(col(Device.code) == "06184-CL01")).one()
    assert device_id is not None
    return report("06184-CL01", {"06184-CL01": device_id})


def all_at_once(engine: Engine, problem: ProblemReport, now_offset: timedelta = timedelta(0)) -> Counter[str]:
    """WRITERS threads, each with its own session, released together on a barrier; the outcomes counted."""
    barrier = threading.Barrier(WRITERS)

    def write(n: int) -> tuple[str, str]:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            outcome = service.open_or_update_ticket(
                problem, session=session, now=T0 + now_offset + timedelta(milliseconds=n), policy=POLICY
            )
            session.commit()
            return outcome.action.value, outcome.ticket.code

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    assert len({code for _, code in results}) == 1, results
    return Counter(action for action, _ in results)


def open_tickets(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Ticket.code).where(sa.text("status NOT IN ('resolved', 'closed')"))))


def ticket_total(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Ticket)).one()


def resolve(engine: Engine, problem: ProblemReport) -> None:
    with session_scope(engine) as session:
        service.resolve_problem(problem.key, session=session, recovered_at=T0 + hours(1), policy=POLICY)


@pytest.mark.postgres
def test_sixteen_writers_opening_one_problem_at_once_on_postgresql_make_exactly_one_ticket(
    postgres_engine: Engine,
) -> None:
    problem = the_problem(postgres_engine)
    outcomes = all_at_once(postgres_engine, problem)
    assert outcomes == Counter({"opened": 1, "unchanged": WRITERS - 1})
    assert open_tickets(postgres_engine) == ["LS-2026-000001"]


@pytest.mark.postgres
def test_sixteen_writers_reporting_a_returning_problem_at_once_on_postgresql_reopen_it_once(
    postgres_engine: Engine,
) -> None:
    problem = the_problem(postgres_engine)
    all_at_once(postgres_engine, problem)
    resolve(postgres_engine, problem)
    assert all_at_once(postgres_engine, problem, hours(3)) == Counter({"reopened": 1, "unchanged": WRITERS - 1})
    resolve(postgres_engine, problem)
    later = all_at_once(postgres_engine, problem, hours(48))
    assert later == Counter({TicketOutcomeAction.REOPENED_AS_NEW.value: 1, "unchanged": WRITERS - 1})
    assert open_tickets(postgres_engine) == ["LS-2026-000002"]
    assert ticket_total(postgres_engine) == 2


def test_sixteen_writers_opening_one_problem_at_once_on_sqlite_make_exactly_one_ticket(sqlite_engine: Engine) -> None:
    problem = the_problem(sqlite_engine)
    assert all_at_once(sqlite_engine, problem) == Counter({"opened": 1, "unchanged": WRITERS - 1})
    assert open_tickets(sqlite_engine) == ["LS-2026-000001"]
