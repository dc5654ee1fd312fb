"""Data generations (monitor/generations.py) and the answers kept under them (monitor/web/answers.py), on SQLite
and PostgreSQL: every change of a watched table moves its number, whoever writes it (plain SQL included);
nothing rolled back does; PostgreSQL moves a number once per transaction, at commit, without deadlocking two
writers; and the web never gives a kept queue or a kept sign-in after the data under it changed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.auth.models import Role
from monitor.auth.service import create_user, end_session, start_session
from monitor.auth.tokens import create_token
from monitor.config import load_settings
from monitor.db import make_engine, utcnow
from monitor.generations import WATCHED, Generations, read_generations
from monitor.tickets import service
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from monitor.web.answers import GenerationsReader, KeptAnswers
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.peers import free_port
from tests.test_tickets_support import CAO_LOC, cast, fleet, policy

__all__ = ["cast", "fleet", "policy"]  # fixtures, imported for pytest


def _moved(engine: Engine, before: Generations) -> set[str]:
    now = read_generations(engine)
    return {name for name in WATCHED if getattr(now, name) != getattr(before, name)}


def _ticket(session: Session, policy: TicketPolicy, title: str = "Cụm loa không phát") -> int:
    data = TicketCreate(title=title, commune_code="06190", priority="P2")
    ticket = service.create_manual_ticket(data, actor=None, session=session, policy=policy, now=utcnow())
    assert ticket.id is not None
    return ticket.id


def test_every_change_of_a_watched_table_moves_its_number_and_only_its_own(
    engine: Engine, session: Session, cast: dict[str, int], fleet: dict[str, int], policy: TicketPolicy
) -> None:
    assert set(WATCHED) == {"tickets", "people", "places"}
    before = read_generations(engine)
    ticket_id = _ticket(session, policy)
    assert _moved(engine, before) == set()  # not committed: nobody else may see it, nor its number
    session.commit()
    assert _moved(engine, before) == {"tickets"}

    user = create_user(
        session=session,
        username="moi",
        full_name="Người mới",
        role=Role.TECHNICIAN,
        password="x" * 12,
        district_code=CAO_LOC,
    )
    session.commit()
    ticket = {"id": ticket_id}
    changes: list[tuple[set[str], str, dict[str, object]]] = [
        ({"people"}, "UPDATE users SET full_name = 'Người mới' WHERE username = 'moi'", {}),
        ({"people"}, "UPDATE user_sessions SET csrf_token = csrf_token", {}),
        ({"people"}, "UPDATE api_tokens SET note = 'x'", {}),
        ({"people"}, "DELETE FROM api_tokens", {}),
        ({"tickets"}, "UPDATE tickets SET title = 'khác' WHERE id = :id", ticket),
        ({"places"}, "UPDATE communes SET name = name WHERE code = '06190'", {}),
        ({"places"}, "UPDATE districts SET name = name WHERE code = '183'", {}),
        (set(), "UPDATE devices SET name = name", {}),  # not watched
        ({"tickets"}, "UPDATE ticket_events SET note = note WHERE ticket_id = :id", ticket),  # its history
        ({"tickets"}, "DELETE FROM ticket_events WHERE ticket_id = :id", ticket),
        ({"tickets"}, "DELETE FROM tickets WHERE id = :id", ticket),
    ]
    before = read_generations(engine)
    start_session(user, session=session)
    create_token(user, session=session)
    session.commit()
    assert _moved(engine, before) == {"people"}
    for expected, statement, params in changes:
        before = read_generations(engine)
        session.execute(sa.text(statement), params)
        session.commit()
        assert _moved(engine, before) == expected, statement

    token, _ = start_session(user, session=session)
    session.commit()
    before = read_generations(engine)
    end_session(token, session=session)
    session.commit()
    assert _moved(engine, before) == {"people"}

    before = read_generations(engine)
    _ticket(session, policy)
    session.execute(sa.text("UPDATE users SET full_name = 'Ai đó' WHERE username = 'moi'"))
    session.rollback()
    assert _moved(engine, before) == set()  # a rolled-back change moves nothing


@pytest.mark.parametrize("settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_moves_a_number_once_per_transaction_at_commit_and_two_writers_do_not_deadlock(
    engine: Engine, session: Session, cast: dict[str, int], fleet: dict[str, int], policy: TicketPolicy
) -> None:
    for name in ("mot", "hai"):
        create_user(
            session=session, username=name, full_name=name, role=Role.OFFICER, password="x" * 12, district_code=CAO_LOC
        )
    _ticket(session, policy, "một")
    _ticket(session, policy, "hai")
    session.commit()
    before = read_generations(engine)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE tickets SET title = title || '.'"))  # two rows
        c.execute(sa.text("UPDATE tickets SET title = title || '.'"))  # and again
        assert read_generations(engine) == before  # moved at commit, not before
    after = read_generations(engine)
    assert (after.tickets - before.tickets, after.people - before.people) == (1, 0)

    # Two writers touching tickets and users in opposite orders, interleaved: each holds the generations'
    # row only while it commits, so both commit (an immediate trigger would lock it at the first write).
    barrier, errors = threading.Barrier(2, timeout=10), []

    def writer(first: str, second: str) -> None:
        try:
            with engine.begin() as c:
                c.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
                c.execute(sa.text(first))
                barrier.wait()
                c.execute(sa.text(second))
                barrier.wait()
        except Exception as exc:  # reported below
            errors.append(exc)

    tickets_first = (
        "UPDATE tickets SET title = title || '!' WHERE title LIKE 'một%'",
        "UPDATE users SET full_name = 'Một' WHERE username = 'mot'",
    )
    users_first = (
        "UPDATE users SET full_name = 'Hai' WHERE username = 'hai'",
        "UPDATE tickets SET title = title || '!' WHERE title LIKE 'hai%'",
    )
    threads = [threading.Thread(target=writer, args=pair) for pair in (tickets_first, users_first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    last = read_generations(engine)
    assert (last.tickets - after.tickets, last.people - after.people) == (2, 2)


def test_kept_answers_stay_within_their_bytes_and_are_given_only_at_their_generation() -> None:
    kept = KeptAnswers[bytes](max_bytes=100)
    kept.put("a", 5, b"A5", 40)
    kept.put("b", 5, b"B5", 40)
    assert kept.get("a", 5) == b"A5"  # "a" is now the most recently used
    kept.put("c", 5, b"C5", 40)  # over 100 bytes: the least recently used ("b") goes
    assert (kept.get("b", 5), kept.get("a", 5), kept.get("c", 5)) == (None, b"A5", b"C5")
    assert kept.size == 80 and len(kept) == 2
    assert kept.get("a", 6) is None  # another generation: not this answer
    kept.put("a", (7, 1), b"A71", 10)  # the numbers of several watched sets
    assert kept.get("a", (7, 1)) == b"A71" and kept.get("a", (7, 2)) is None
    assert kept.size == 50
    kept.put("huge", 8, b"x", 101)
    assert kept.get("huge", 8) is None


@pytest.fixture
def web(engine: Engine, tmp_path) -> Iterator[tuple[TestClient, Engine]]:
    from monitor.auth.cast import seed_cast
    from monitor.db import session_scope
    from monitor.inventory.demo import seed_demo

    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
        seed_cast(session=session)
    settings = load_settings(
        database_url=engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, data_dir=tmp_path
    )
    with TestClient(create_app(settings, engine)) as client:
        yield client, engine


def test_a_kept_queue_is_given_until_any_ticket_changes_even_by_another_process(web) -> None:
    client, engine = web
    client.headers.update(login(client, "caoloc"))
    kept: KeptAnswers[bytes] = client.app.state.kept_queues  # type: ignore[attr-defined]
    made = client.post("/api/v1/tickets", json={"title": "Loa hỏng", "commune_code": "06190", "priority": "P2"})
    assert made.status_code == 201, made.text
    code = made.json()["code"]

    first = client.get("/api/v1/tickets")
    hits = kept.hits
    again = client.get("/api/v1/tickets")
    assert kept.hits == hits + 1 and again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert [t["status"] for t in again.json()["items"] if t["code"] == code] == ["new"]

    # Through the API: the next queue shows it.
    moved = client.post(f"/api/v1/tickets/{code}/transitions", json={"action": "acknowledge"})
    assert moved.status_code == 200, moved.text
    assert [t["status"] for t in client.get("/api/v1/tickets").json()["items"] if t["code"] == code] == ["acknowledged"]
    # Behind the web's back (another process, a script): the next queue shows it too.
    with engine.begin() as c:
        c.execute(sa.text("UPDATE tickets SET title = 'Sửa bởi kịch bản' WHERE code = :code"), {"code": code})
    assert [t["title"] for t in client.get("/api/v1/tickets").json()["items"] if t["code"] == code] == [
        "Sửa bởi kịch bản"
    ]
    # Another district's officer asking the same query gets their own district's queue, not this one.
    other = TestClient(client.app)
    other.headers.update(login(other, "dinhlap"))
    assert code not in {t["code"] for t in other.get("/api/v1/tickets").json()["items"]}
    # "mine" is the caller's own: not another person's kept answer.
    assert client.get("/api/v1/tickets?assignee=me").json()["items"] == []


def test_a_kept_sign_in_ends_the_moment_the_session_or_its_user_does(web) -> None:
    client, engine = web
    headers = login(client, "kythuat")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # now kept
    with engine.begin() as c:  # disabled by another process (the CLI)
        c.execute(sa.text("UPDATE users SET active = false WHERE username = 'kythuat'"))
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    with engine.begin() as c:
        c.execute(sa.text("UPDATE users SET active = true WHERE username = 'kythuat'"))
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    with engine.begin() as c:  # its role changed: the door sees the new one at once
        c.execute(sa.text("UPDATE users SET role = 'leader', district_code = NULL WHERE username = 'kythuat'"))
    assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "leader"
    assert client.post("/api/v1/auth/logout", headers=headers).status_code in (200, 204)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_the_reader_answers_without_a_thread_sees_every_change_and_says_503_when_the_database_is_away(
    province: Engine, tmp_path
) -> None:
    engine = province
    reader = GenerationsReader(engine, timeout_s=2.0)
    try:
        first = asyncio.run(reader.read())  # each asyncio.run is another event loop: the connection follows
        assert first == read_generations(engine)
        with engine.begin() as c:
            c.execute(sa.text("UPDATE communes SET name = name WHERE code = '06190'"))
        second = asyncio.run(reader.read())
        assert second.places != first.places and (second.tickets, second.people) == (first.tickets, first.people)
        if engine.dialect.name == "sqlite":
            reader.close()
            reader._sqlite_path = str(tmp_path)  # its own connection cannot be opened: the pool's thread reads
            assert asyncio.run(reader.read()) == second
    finally:
        reader.close()
    if engine.dialect.name == "postgresql":  # a server that is not there: the web's 503, not a 500
        away = make_engine(load_settings(database_url=engine.url.set(port=free_port()).render_as_string(False)))
        with pytest.raises(sa.exc.OperationalError):
            asyncio.run(GenerationsReader(away, timeout_s=2.0).read())
        away.dispose()


def test_a_tickets_page_shows_a_new_comment_at_once_even_one_written_behind_the_webs_back(web) -> None:
    client, engine = web
    client.headers.update(login(client, "caoloc"))
    kept: KeptAnswers[object] = client.app.state.kept_ticket_pages  # type: ignore[attr-defined]
    made = client.post("/api/v1/tickets", json={"title": "Bảng tin tắt", "commune_code": "06190", "priority": "P2"})
    code = made.json()["code"]
    assert client.get(f"/tickets/{code}").status_code == 200
    hits = kept.hits
    assert client.get(f"/tickets/{code}").status_code == 200
    assert kept.hits == hits + 1  # its history was kept
    said = client.post(f"/api/v1/tickets/{code}/comments", json={"text": "Đã thay bộ nguồn"})
    assert said.status_code == 201, said.text
    assert "Đã thay bộ nguồn" in client.get(f"/tickets/{code}").text
    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE ticket_events SET note = 'Sửa bởi kịch bản' WHERE note = 'Đã thay bộ nguồn' "
                "AND ticket_id = (SELECT id FROM tickets WHERE code = :code)"
            ),
            {"code": code},
        )
    page = client.get(f"/tickets/{code}").text
    assert "Sửa bởi kịch bản" in page and "Đã thay bộ nguồn" not in page
