"""Resolving a ticket whose device is still down asks for confirmation and says so; a reopen says why in words.

On SQLite and PostgreSQL: the demo fleet and its cast for the API, the province for the lifecycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.config import load_settings
from monitor.durations import format_duration
from monitor.health.models import DeviceHealthRow
from monitor.inventory.models import Device
from monitor.tickets import service
from monitor.tickets.choices import TicketOutcomeAction
from monitor.tickets.lifecycle import reopen_note
from monitor.tickets.models import TicketEvent
from monitor.tickets.policy import TicketPolicy
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.test_tickets_support import T0, events, fleet, hours, minutes, policy, report

__all__ = ["fleet", "policy"]  # fixtures, imported for pytest

DOWN_SINCE = datetime(2026, 12, 6, 3, 32, tzinfo=UTC)  # 10:32 in Vietnam


@pytest.fixture(scope="module")
def clients(demo_cast: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("confirm-data"),
    )
    app = create_app(settings, demo_cast)
    people = {}
    for user in ("caoloc", "kythuat"):
        client = TestClient(app)
        client.__enter__()
        client.headers.update(login(client, user))
        people[user] = client
    yield people
    for client in people.values():
        client.__exit__(None, None, None)


def set_health(engine: Engine, device_code: str, state: str, since: datetime = DOWN_SINCE) -> None:
    """The device's current health, as the collectors would have left it."""
    with Session(engine) as session:
        device = session.exec(select(Device).where(Device.code == device_code)).one()
        row = session.get(DeviceHealthRow, device.id) or DeviceHealthRow(device_id=device.id, state=state)
        row.state, row.since = state, since
        session.add(row)
        session.commit()


def reported(client: TestClient, device: str | None) -> str:
    body = {"title": "Cụm loa không phát", "commune_code": device.split("-")[0] if device else "06190"}
    if device:
        body["device_code"] = device
    response = client.post("/api/v1/tickets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def resolve(client: TestClient, code: str, **extra: object) -> httpx.Response:
    body = {"action": "resolve", "note": "đã thay loa", **extra}
    return client.post(f"/api/v1/tickets/{code}/transitions", json=body)


def test_resolving_a_ticket_whose_device_is_still_down_is_refused_until_confirmed_and_the_history_says_so(
    clients: dict[str, TestClient], demo_cast: Engine
) -> None:
    code = reported(clients["caoloc"], "06190-CL01")
    set_health(demo_cast, "06190-CL01", "down")
    tech = clients["kythuat"]

    refused = tech.post(f"/api/v1/tickets/{code}/transitions", json={"action": "resolve"})
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["title"].startswith("Thiết bị 06190-CL01 (")
    assert problem["title"].endswith("vẫn đang mất kết nối (từ 10:32 06/12/2026). Xác nhận để đóng phiếu.")
    assert problem["detail"].startswith("Device 06190-CL01 is still down (since 10:32 06/12/2026).")
    assert problem["confirmation_required"] is True
    assert tech.get(f"/api/v1/tickets/{code}").json()["status"] == "new"  # nothing changed

    confirmed = tech.post(
        f"/api/v1/tickets/{code}/transitions", json={"action": "resolve", "note": "đã thay loa", "confirm": True}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "resolved"
    last = tech.get(f"/api/v1/tickets/{code}/history").json()[-1]
    assert (last["kind"], last["to_value"]) == ("status", "resolved")
    assert last["note"] == (
        "Xác nhận khắc phục khi thiết bị 06190-CL01 vẫn đang mất kết nối (từ 10:32 06/12/2026). đã thay loa"
    )


def test_a_device_back_up_or_a_ticket_without_a_device_resolves_without_confirmation(
    clients: dict[str, TestClient], demo_cast: Engine
) -> None:
    code = reported(clients["caoloc"], "06190-CL02")
    set_health(demo_cast, "06190-CL02", "up")
    moved = clients["kythuat"].post(f"/api/v1/tickets/{code}/transitions", json={"action": "resolve"})
    assert moved.status_code == 200, moved.text
    assert clients["kythuat"].get(f"/api/v1/tickets/{code}/history").json()[-1]["note"] == ""

    without_device = reported(clients["caoloc"], None)
    assert resolve(clients["kythuat"], without_device).status_code == 200


def test_a_resolved_ticket_is_refused_for_its_status_even_while_its_device_is_down(
    clients: dict[str, TestClient], demo_cast: Engine
) -> None:
    code = reported(clients["caoloc"], "06190-CL03")
    set_health(demo_cast, "06190-CL03", "down")
    tech = clients["kythuat"]
    assert tech.post(f"/api/v1/tickets/{code}/transitions", json={"action": "resolve", "confirm": True}).is_success
    again = tech.post(f"/api/v1/tickets/{code}/transitions", json={"action": "resolve"})
    assert again.status_code == 409
    assert again.json()["allowed"] == ["close", "reopen"]  # the workflow's answer, not the device's


def test_a_reopened_ticket_says_in_plain_words_how_soon_the_problem_returned(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    first = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0, policy=policy)
    session.commit()
    ticket = first.ticket
    service.resolve_problem(ticket.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy)
    session.commit()
    back = service.open_or_update_ticket(
        report("06184-CL01", fleet), session=session, now=T0 + hours(3) + minutes(15), policy=policy
    )
    session.commit()
    assert back.action is TicketOutcomeAction.REOPENED
    note = next(note for kind, note in _events_with_notes(session, ticket.id) if kind == "reopened")
    assert note == (
        "Sự cố tái diễn 2 giờ 15 phút sau khi được khắc phục (trong thời hạn mở lại 24 giờ). 06184-CL01: offline"
    )
    assert "day," not in note and "0:00" not in note
    assert events(session, ticket.id)[2][0] == "reopened"


def _events_with_notes(session: Session, ticket_id: int | None) -> list[tuple[str, str]]:
    rows = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))
    return [(e.kind, e.note) for e in rows]


@pytest.mark.parametrize(
    ("length", "vi", "en"),
    [
        (timedelta(seconds=30), "dưới 1 phút", "less than a minute"),
        (timedelta(minutes=1), "1 phút", "1 minute"),
        (timedelta(hours=2, minutes=15, seconds=59), "2 giờ 15 phút", "2 hours 15 minutes"),
        (timedelta(days=1), "1 ngày", "1 day"),
        (timedelta(days=2, hours=3, minutes=4), "2 ngày 3 giờ", "2 days 3 hours"),
        (timedelta(days=1, minutes=5), "1 ngày 5 phút", "1 day 5 minutes"),
    ],
)
def test_durations_are_said_in_days_hours_and_minutes(length: timedelta, vi: str, en: str) -> None:
    assert format_duration(length) == vi
    assert format_duration(length, "en") == en


def test_a_reopen_window_is_said_as_the_policy_says_it() -> None:
    assert "(trong thời hạn mở lại 24 giờ)" in reopen_note(minutes(5), hours(24), "x")
    assert "(trong thời hạn mở lại 7 ngày)" in reopen_note(minutes(5), timedelta(days=7), "x")
    assert reopen_note(timedelta(seconds=20), hours(24), "x").startswith("Sự cố tái diễn dưới 1 phút sau khi")
