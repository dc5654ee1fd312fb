"""Migration 0013 (a ticket's district may be NULL) on a database holding tickets, SQLite and PostgreSQL.

SQLite rebuilds `tickets` to drop the NOT NULL: nothing that refers to a ticket may be lost (foreign keys
cascade on a plain DROP), and the partial indexes and CHECK constraints must come back exactly as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.db import current_revision, head_revision, make_engine, session_scope, upgrade
from monitor.inventory.units import init_province, load_units
from monitor.tickets.models import Ticket
from tests.postgres import PostgresServer

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
TICKETS = Ticket.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database brought to revision 0012, holding the province."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = f"m_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = server.url(name)
    engine = make_engine(load_settings(database_url=url))
    upgrade(engine, "0012")
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
    yield engine
    engine.dispose()


def _ticket(connection: sa.Connection, code: str, key: str, status: str, district: str | None) -> int:
    values = {
        "code": code,
        "title": "Cụm loa mất kết nối",
        "description": "",
        "problem_key": key,
        "scope": "device",
        "scope_code": "D1",
        "kind": "offline",
        "district_code": district,
        "priority": "P2",
        "source": "auto",
        "status": status,
        "details": {},
        "created_at": sa.func.now(),
        "reopen_count": 0,
        "sla_started_at": sa.func.now(),
        "resolve_due_at": sa.func.now(),
        "sla_breached": False,
        "paused_seconds": 0,
        "auto_resolved": False,
        "parts_cost_vnd": 0,
        "labour_cost_vnd": 0,
        "parts_replaced": [],
        "search_text": "",
        "updated_at": sa.func.now(),
    }
    return int(connection.execute(sa.insert(TICKETS).values(values).returning(TICKETS.c.id)).scalar_one())


def _index_definitions(engine: Engine) -> dict[str, str]:
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            rows = c.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets'"
            )
        else:
            rows = c.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets'")
        return {name: " ".join((sql or "").split()) for name, sql in rows}


def test_0013_lets_a_ticket_have_no_district_and_loses_nothing_of_the_tickets_before_it(at_0012: Engine) -> None:
    engine = at_0012
    with engine.begin() as c:
        first = _ticket(c, "LS-2026-000001", "device:D1:offline", "resolved", "183")
        _ticket(c, "LS-2026-000002", "device:D1:offline", "new", "183")
        c.execute(sa.text("INSERT INTO ticket_events (ticket_id, at, kind, note) VALUES (:t, now(), 'created', '')"
                          if engine.dialect.name == "postgresql" else
                          "INSERT INTO ticket_events (ticket_id, at, kind, note) VALUES (:t, CURRENT_TIMESTAMP, "
                          "'created', '')"), {"t": first})  # fmt: skip
        c.execute(sa.text("INSERT INTO ticket_pauses (ticket_id, started_at, reason) VALUES (:t, :at, 'parts')"),
                  {"t": first, "at": "2026-12-01 00:00:00"})  # fmt: skip
    indexes = _index_definitions(engine)
    assert "uq_tickets_open_problem_key" in indexes

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _index_definitions(engine) == indexes  # the partial indexes came back as they were
    with engine.begin() as c:
        assert c.execute(sa.text("SELECT count(*) FROM ticket_events")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*) FROM ticket_pauses")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*) FROM tickets")).scalar() == 2
        _ticket(c, "LS-2026-000003", "province:collectors:collector", "new", None)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:  # still one open ticket per problem
        _ticket(c, "LS-2026-000004", "device:D1:offline", "new", "183")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:  # the costs' CHECK constraints stay
        c.execute(sa.text("UPDATE tickets SET parts_cost_vnd = -1 WHERE code = 'LS-2026-000002'"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:  # and the district's foreign key
        c.execute(sa.text("UPDATE tickets SET district_code = 'nowhere' WHERE code = 'LS-2026-000002'"))
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:  # the migration gave the pool its foreign keys back
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

    with pytest.raises(RuntimeError, match="1 tickets belong to the province"):
        upgrade_down(engine)
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM tickets WHERE district_code IS NULL"))
    upgrade_down(engine)
    assert current_revision(engine) == "0012"
    with engine.begin() as c:
        assert c.execute(sa.text("SELECT count(*) FROM ticket_events")).scalar() == 1
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        _ticket(c, "LS-2026-000005", "province:x:y", "new", None)


def upgrade_down(engine: Engine) -> None:
    from alembic import command

    from monitor.db import alembic_config

    command.downgrade(alembic_config(engine), "0012")
