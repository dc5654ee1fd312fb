"""The tickets API as district officers, technicians and leaders use it; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login


@pytest.fixture(scope="module")
def app_for(demo_cast: Engine, tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("tickets-data"),
    )
    return create_app(settings, demo_cast)


@pytest.fixture(scope="module")
def clients(app_for) -> Iterator[dict[str, TestClient]]:
    people = {}
    for user in ("admin", "caoloc", "dinhlap", "kythuat", "lanhdao"):
        client = TestClient(app_for)
        client.__enter__()
        client.headers.update(login(client, user))
        people[user] = client
    yield people
    for client in people.values():
        client.__exit__(None, None, None)


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\0\0\0")) + chunk(b"IEND", b"")
    )


def report(client: TestClient, commune: str = "06190", device: str | None = None) -> dict:
    body = {"title": "Cụm loa thôn Bản Lòa không phát", "commune_code": commune, "priority": "P2"}
    if device:
        body["device_code"] = device
    response = client.post("/api/v1/tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_officer_records_a_report_and_the_technician_takes_it_through_its_life(
    clients: dict[str, TestClient],
) -> None:
    ticket = report(clients["caoloc"], device="06190-CL01")
    code = ticket["code"]
    assert code.startswith("LS-2026-") and ticket["district_code"] == "183" and ticket["status"] == "new"
    tech_id = clients["kythuat"].get("/api/v1/auth/me").json()["id"]
    assert clients["caoloc"].post(f"/api/v1/tickets/{code}/assign", json={"assignee_id": tech_id}).status_code == 200
    tech = clients["kythuat"]
    for action, status in [
        ("acknowledge", "acknowledged"),
        ("start", "in_progress"),
        ("wait", "waiting"),
        ("resume", "in_progress"),
        ("resolve", "resolved"),
        ("close", "closed"),
    ]:
        moved = tech.post(f"/api/v1/tickets/{code}/transitions", json={"action": action, "note": f"{action} ok"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status
    history = tech.get(f"/api/v1/tickets/{code}/history").json()
    assert [e["kind"] for e in history].count("status") >= 6
    assert {e["actor_user_id"] for e in history if e["kind"] == "status"} == {tech_id}


def test_a_move_the_status_does_not_allow_is_a_409_listing_the_allowed_ones(clients: dict[str, TestClient]) -> None:
    code = report(clients["caoloc"])["code"]
    response = clients["kythuat"].post(f"/api/v1/tickets/{code}/transitions", json={"action": "close"})
    assert response.status_code == 409
    assert "acknowledge" in response.json()["allowed"]


def test_another_districts_ticket_does_not_exist_for_an_officer(clients: dict[str, TestClient]) -> None:
    code = report(clients["caoloc"])["code"]
    dinh_lap = clients["dinhlap"]
    assert dinh_lap.get(f"/api/v1/tickets/{code}").status_code == 404
    assert dinh_lap.post(f"/api/v1/tickets/{code}/comments", json={"text": "x"}).status_code == 404
    assert code not in {t["code"] for t in dinh_lap.get("/api/v1/tickets", params={"limit": 200}).json()["items"]}
    # nor can they file a report for a commune of another district
    response = dinh_lap.post("/api/v1/tickets", json={"title": "x", "commune_code": "06190"})
    assert response.status_code == 404
    assert clients["admin"].get(f"/api/v1/tickets/{code}").status_code == 200


def test_leaders_read_everything_and_change_nothing(clients: dict[str, TestClient]) -> None:
    code = report(clients["caoloc"])["code"]
    leader = clients["lanhdao"]
    assert leader.get(f"/api/v1/tickets/{code}").status_code == 200
    assert leader.post(f"/api/v1/tickets/{code}/transitions", json={"action": "acknowledge"}).status_code == 403
    assert leader.post("/api/v1/tickets", json={"title": "x", "commune_code": "06190"}).status_code == 403


def test_the_queue_filters_searches_and_pages_in_due_order(clients: dict[str, TestClient]) -> None:
    officer = clients["caoloc"]
    for _ in range(5):
        report(officer)
    seen, params = [], {"district": "183", "limit": 2}
    while True:
        page = officer.get("/api/v1/tickets", params=params).json()
        seen += page["items"]
        if not page["next_cursor"]:
            break
        params["after"] = page["next_cursor"]
    dues = [t["resolve_due_at"] for t in seen]
    assert dues == sorted(dues) and len({t["code"] for t in seen}) == len(seen) >= 5
    found = officer.get("/api/v1/tickets", params={"q": "ban loa"}).json()["items"]
    assert found and all("Bản Lòa" in t["title"] for t in found)
    assert officer.get("/api/v1/tickets", params={"after": "!!"}).status_code == 422


def test_photos_are_checked_by_content_and_size(clients: dict[str, TestClient]) -> None:
    code = report(clients["caoloc"])["code"]
    tech = clients["kythuat"]
    ok = tech.post(f"/api/v1/tickets/{code}/attachments", files={"file": ("loa.png", io.BytesIO(png()), "image/png")})
    assert ok.status_code == 201, ok.text
    attachment = ok.json()
    downloaded = tech.get(f"/api/v1/tickets/{code}/attachments/{attachment['id']}")
    assert downloaded.status_code == 200 and downloaded.content == png()
    disguised = tech.post(
        f"/api/v1/tickets/{code}/attachments",
        files={"file": ("photo.jpg", io.BytesIO(b"<html><script>alert(1)</script></html>"), "image/jpeg")},
    )
    assert disguised.status_code == 422
    huge = tech.post(
        f"/api/v1/tickets/{code}/attachments",
        files={"file": ("big.png", io.BytesIO(png() + b"\0" * (6 * 1024 * 1024)), "image/png")},
    )
    assert huge.status_code == 422


def test_costs_are_recorded_and_summed_per_district(clients: dict[str, TestClient]) -> None:
    code = report(clients["caoloc"])["code"]
    body = {"parts_cost_vnd": 1_500_000, "labour_cost_vnd": 300_000, "parts_replaced": ["Loa nén 30W"]}
    assert clients["kythuat"].post(f"/api/v1/tickets/{code}/costs", json=body).json()["total_cost_vnd"] == 1_800_000
    totals = {c["district_code"]: c for c in clients["admin"].get("/api/v1/tickets/costs/2026").json()}
    assert totals["183"]["total_cost_vnd"] >= 1_800_000
    assert [c["district_code"] for c in clients["dinhlap"].get("/api/v1/tickets/costs/2026").json()] in ([], ["189"])


def test_a_missing_ticket_is_a_404(clients: dict[str, TestClient]) -> None:
    assert clients["admin"].get("/api/v1/tickets/LS-2026-999999").status_code == 404
