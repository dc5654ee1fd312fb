"""An action sent twice with the same Idempotency-Key is applied once (the pages resend what they kept while
offline), and the queue's bulk actions answer each ticket on its own, scoped like everything else."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.auth.audit import AuditEvent
from monitor.auth.idempotency import ABANDONED_AFTER, claim, key_hash
from monitor.config import load_settings
from monitor.db import session_scope, utcnow
from monitor.inventory.models import Commune
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

CAO_LOC, DINH_LAP = "183", "189"


@pytest.fixture(scope="module")
def client(demo_cast: Engine) -> Iterator[TestClient]:
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        yield client


def _ticket(engine: Engine, district: str, title: str) -> str:
    with session_scope(engine) as session:
        commune = session.exec(
            select(Commune).where(col(Commune.district_code) == district).order_by(col(Commune.code))
        ).first()
        assert commune is not None
        return service.create_manual_ticket(
            TicketCreate(title=title, commune_code=commune.code, priority=Priority.P3),
            actor=None,
            session=session,
            now=utcnow(),
            policy=TicketPolicy(),
        ).code


def _comments(client: TestClient, code: str, headers: dict[str, str]) -> list[str]:
    history = client.get(f"/api/v1/tickets/{code}/history", headers=headers).json()
    return [event["note"] for event in history if event["kind"] == "comment"]


def test_the_same_action_sent_twice_is_applied_once(client: TestClient, demo_cast: Engine) -> None:
    code = _ticket(demo_cast, CAO_LOC, "Loa im lặng")
    headers = login(client, "kythuat")
    sent = {**headers, "Idempotency-Key": "a1b2c3-first-comment"}
    first = client.post(f"/api/v1/tickets/{code}/comments", json={"text": "Đã đến nơi"}, headers=sent)
    again = client.post(f"/api/v1/tickets/{code}/comments", json={"text": "Đã đến nơi"}, headers=sent)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert _comments(client, code, headers) == ["Đã đến nơi"]
    other = client.post(
        f"/api/v1/tickets/{code}/comments", json={"text": "Đã thay loa"}, headers={**headers, "Idempotency-Key": "k2"}
    )
    assert other.status_code == 201 and _comments(client, code, headers) == ["Đã đến nơi", "Đã thay loa"]


def test_copies_sent_at_once_apply_once(client: TestClient, demo_cast: Engine) -> None:
    code = _ticket(demo_cast, CAO_LOC, "Bảng tin tắt")
    headers = {**login(client, "kythuat"), "Idempotency-Key": "same-action-eight-times"}

    def send(_: int) -> int:
        answer = client.post(f"/api/v1/tickets/{code}/comments", json={"text": "Một lần thôi"}, headers=headers)
        return answer.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(8)))
    assert set(statuses) <= {201, 409} and 201 in statuses  # 409: "still being answered", ask again
    assert _comments(client, code, login(client, "kythuat")) == ["Một lần thôi"]


def test_a_key_is_bound_to_its_request_and_its_credential(client: TestClient, demo_cast: Engine) -> None:
    code = _ticket(demo_cast, CAO_LOC, "Mất điện")
    technician, officer = login(client, "kythuat"), login(client, "caoloc")
    key = {"Idempotency-Key": "reused-key"}
    assert (
        client.post(f"/api/v1/tickets/{code}/comments", json={"text": "A"}, headers={**technician, **key}).status_code
        == 201
    )
    reused = client.post(f"/api/v1/tickets/{code}/take", json={}, headers={**technician, **key})
    assert reused.status_code == 422 and "another request" in reused.json()["detail"]
    # The same key from another person is another action: their own comment, not the first answer.
    theirs = client.post(f"/api/v1/tickets/{code}/comments", json={"text": "B"}, headers={**officer, **key})
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert (
        client.post(
            f"/api/v1/tickets/{code}/comments", json={"text": "C"}, headers={"Idempotency-Key": "x"}
        ).status_code
        == 401
    )
    too_long = client.post(
        f"/api/v1/tickets/{code}/comments", json={"text": "D"}, headers={**technician, "Idempotency-Key": "k" * 201}
    )
    assert too_long.status_code == 422


def test_bulk_actions_answer_each_ticket_and_stay_in_the_district(client: TestClient, demo_cast: Engine) -> None:
    mine = [_ticket(demo_cast, CAO_LOC, f"Cụm loa {n}") for n in range(2)]
    theirs = _ticket(demo_cast, DINH_LAP, "Cụm loa Đình Lập")
    officer = login(client, "caoloc")
    answer = client.post(
        "/api/v1/tickets/bulk", json={"codes": [*mine, theirs], "action": "acknowledge"}, headers=officer
    )
    assert answer.status_code == 200, answer.text
    outcomes = {r["code"]: r["outcome"] for r in answer.json()["results"]}
    assert outcomes == {mine[0]: "done", mine[1]: "done", theirs: "not_found"} and answer.json()["done"] == 2
    again = client.post("/api/v1/tickets/bulk", json={"codes": mine, "action": "acknowledge"}, headers=officer).json()
    assert {r["outcome"] for r in again["results"]} == {"refused"}  # already acknowledged: the reason is given
    people = client.get("/api/v1/users", headers=officer).json()
    technician = next(p["id"] for p in people if p["username"] == "kythuat")
    assigned = client.post(
        "/api/v1/tickets/bulk", json={"codes": mine, "action": "assign", "assignee_id": technician}, headers=officer
    ).json()
    assert assigned["done"] == 2
    assert client.get(f"/api/v1/tickets/{mine[0]}", headers=officer).json()["assignee_id"] == technician
    assert (
        client.post(
            "/api/v1/tickets/bulk", json={"codes": mine, "action": "close"}, headers=login(client, "kythuat")
        ).status_code
        == 403
    )
    with session_scope(demo_cast) as session:
        logged = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "bulk_action")).all()
    assert len(logged) >= 3 and all(event.actor_name == "caoloc" for event in logged)


def test_a_technician_takes_a_ticket_of_their_district_only(client: TestClient, demo_cast: Engine) -> None:
    code, theirs = _ticket(demo_cast, CAO_LOC, "Loa rè"), _ticket(demo_cast, DINH_LAP, "Loa rè")
    technician = login(client, "kythuat")
    taken = client.post(f"/api/v1/tickets/{code}/take", headers=technician)
    assert taken.status_code == 200 and taken.json()["assignee_id"] is not None
    assert client.post(f"/api/v1/tickets/{theirs}/take", headers=technician).status_code == 404
    assert client.post(f"/api/v1/tickets/{code}/take", headers=login(client, "lanhdao")).status_code == 403


def test_a_claim_whose_answer_was_never_stored_is_taken_over_once_abandoned(demo_cast: Engine) -> None:
    # The database went away between the claim and the answer's storing (a restart under load).
    hashed, now = key_hash("lost-answer", "a-token"), utcnow()
    assert claim(demo_cast, hashed, method="POST", path="/api/v1/x", now=now) is None
    soon = claim(demo_cast, hashed, method="POST", path="/api/v1/x", now=now + timedelta(minutes=1))
    assert soon is not None and soon.status_code is None  # still in flight: 409, ask again shortly
    later = now + ABANDONED_AFTER + timedelta(seconds=1)
    assert claim(demo_cast, hashed, method="POST", path="/api/v1/other", now=later) is not None  # another request
    assert claim(demo_cast, hashed, method="POST", path="/api/v1/x", now=later) is None  # taken over
    again = claim(demo_cast, hashed, method="POST", path="/api/v1/x", now=later + timedelta(seconds=1))
    assert again is not None and again.status_code is None  # the new claim holds it
