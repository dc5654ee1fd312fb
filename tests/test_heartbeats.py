"""Devices behind 4G NAT push heartbeats to the service with their own token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import load_settings
from monitor.db import session_scope
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.inventory.fleetfile import read_fleet_file
from monitor.inventory.models import Device
from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows
from monitor.inventory.tokens import issue_token
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET

EXAMPLE = Path(__file__).parent.parent / "examples" / "fleet.csv"
BOARD = {
    "serial": "SB43-000001",
    "system": {"uptime_s": 86400, "firmware": "1.8.0", "power": "mains"},
    "status": {
        "display": "on",
        "brightness": 80,
        "temperature_c": 45.0,
        "content": {"playlist": "tin-tuc", "updated_at": 4102444800},
        "storage": {"used_pct": 40},
    },
}


@pytest.fixture
def board(province: Engine) -> Iterator[tuple[TestClient, str, Engine]]:
    with session_scope(province) as session:
        rows = validate_fleet_rows(read_fleet_file(EXAMPLE), session=session, source="example")
        apply_fleet_rows(rows, session=session)
        token = issue_token("06613-BB1", session=session)
    settings = load_settings(database_url=province.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, province)) as client:
        yield client, token, province


def push(client: TestClient, token: str, body: bytes | dict, code: str = "06613-BB1"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    client.app.state.heartbeat_last_seen.clear()  # type: ignore[attr-defined]  # tests push faster than 1/s
    return client.post(f"/api/v1/heartbeats/{code}", content=content, headers={"Authorization": f"Bearer {token}"})


def health(engine: Engine) -> DeviceHealthRow:
    with Session(engine) as session:
        device = session.exec(select(Device).where(Device.code == "06613-BB1")).one()
        row = session.get(DeviceHealthRow, device.id)
        assert row is not None
        return row


def test_a_heartbeat_with_the_right_token_brings_the_device_up_with_its_readings(board) -> None:
    client, token, engine = board
    response = push(client, token, BOARD)
    assert response.status_code == 202, response.text
    assert response.json() == {"device": "06613-BB1", "reachable": True, "state_changes": 1}
    row = health(engine)
    assert row.state == "up" and row.readings["uptime_s"] == 86400


def test_faults_in_a_heartbeat_make_the_device_degraded(board) -> None:
    client, token, engine = board
    dark = {**BOARD, "status": {**BOARD["status"], "display": "off"}}
    assert push(client, token, dark).status_code == 202
    row = health(engine)
    assert row.state == "degraded" and "screen_off" in row.faults


@pytest.mark.parametrize("token", ["", "wrong-token", None])
def test_a_wrong_or_missing_token_is_refused_and_changes_nothing(board, token: str | None) -> None:
    client, _token, engine = board
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = client.post("/api/v1/heartbeats/06613-BB1", json=BOARD, headers=headers)
    assert response.status_code == 401
    with Session(engine) as session:
        assert session.exec(select(StateChange)).first() is None


def test_another_devices_token_does_not_work(board) -> None:
    client, token, _engine = board
    assert push(client, token, BOARD, code="06613-CL01").status_code == 401
    assert push(client, token, BOARD, code="NO-SUCH").status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 422), (b'{"system": "nope"}', 422), (b"[]", 422), (b"x" * (65 * 1024), 413)],
)
def test_a_malformed_body_is_refused_with_the_reason_and_recorded_as_a_failure(board, body: bytes, status: int) -> None:
    client, token, engine = board
    push(client, token, BOARD)
    response = push(client, token, body)
    assert response.status_code == status
    assert "recorded as a failed heartbeat" in response.json()["detail"]
    row = health(engine)
    assert row.state == "up" and row.last_error, "one failure is counted, not yet confirmed"


def test_a_device_pushing_too_fast_is_throttled(board) -> None:
    client, token, _engine = board
    assert push(client, token, BOARD).status_code == 202
    second = client.post("/api/v1/heartbeats/06613-BB1", json=BOARD, headers={"Authorization": f"Bearer {token}"})
    assert second.status_code == 429


def test_three_bad_heartbeats_take_the_device_down(board) -> None:
    client, token, engine = board
    push(client, token, BOARD)
    for _ in range(3):
        push(client, token, b"garbage")
    assert health(engine).state == "down"
    with Session(engine) as session:
        states = [c.new_state for c in session.exec(select(StateChange).order_by(col(StateChange.id)))]
    assert states == ["up", "down"]


def test_failed_device_authentications_are_throttled_per_address_and_device_then_per_address(board) -> None:
    client, token, _engine = board
    for _ in range(10):
        assert push(client, "wrong-token", BOARD).status_code == 401
    refused = push(client, token, BOARD)  # now even the right token from this address for this device waits
    assert refused.status_code == 429
    assert "too many failed device authentications" in refused.json()["detail"]
    # Another device behind the same (carrier NAT) address is not locked out by its misconfigured neighbour.
    other = push(client, "wrong-token", BOARD, code="06613-ST")
    assert other.status_code == 401
