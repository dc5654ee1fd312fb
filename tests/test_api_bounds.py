"""No input gets a 500: integers beyond what the database holds, deep JSON, NUL characters (issue 10, §3).

Each case answered 500 before; now each is a 4xx problem with a request id. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.test_api_tickets import png, report

N = 99999999999999999999999
TOKEN = "alertmanager-token-for-the-bounds-test"


@pytest.fixture(scope="module")
def client(demo_cast: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("bounds-data"),
        alertmanager_token=TOKEN,
    )
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        client.headers.update(login(client, "admin"))
        yield client


def refused(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["request_id"] and body["status"] == status
    return body


@pytest.mark.parametrize("year", [0, 1, 10000, 1999, 2101, N])
def test_costs_of_a_year_outside_a_sane_range(client: TestClient, year: int) -> None:
    body = refused(client.get(f"/api/v1/tickets/costs/{year}"))
    assert body["errors"][0]["field"] == "year"


def test_costs_of_a_sane_year(client: TestClient) -> None:
    assert client.get("/api/v1/tickets/costs/2026").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/notifications/channels/{N}"),
        ("PATCH", f"/api/v1/notifications/channels/{N}"),
        ("DELETE", f"/api/v1/notifications/channels/{N}"),
        ("POST", f"/api/v1/notifications/channels/{N}/test"),
        ("GET", f"/api/v1/notifications/channels/{2**31}"),
        ("GET", f"/api/v1/problems/{N}"),
        ("GET", f"/api/v1/problems/{2**31}"),
        ("POST", f"/api/v1/problems/{N}/acknowledge"),
        ("DELETE", f"/api/v1/maintenance-windows/{N}"),
        ("DELETE", f"/api/v1/maintenance-windows/{2**63}"),
        ("GET", "/api/v1/problems/0"),
    ],
)
def test_ids_in_the_path_beyond_an_integer_column(client: TestClient, method: str, path: str) -> None:
    body = {"PATCH": {"active": False}, "POST": {}}.get(method)
    response = client.request(method, path, json=body)
    problem = refused(response)
    assert problem["errors"][0]["field"].endswith("_id")


def test_largest_id_a_column_holds_is_merely_not_found(client: TestClient) -> None:
    refused(client.get(f"/api/v1/problems/{2**31 - 1}"), 404)
    refused(client.get(f"/api/v1/notifications/channels/{2**31 - 1}"), 404)


@pytest.mark.parametrize(
    "query",
    [
        f"/api/v1/problems?offset={N}",
        f"/api/v1/problems?offset={2**63}",
        f"/api/v1/tickets?assignee={N}",
        f"/api/v1/tickets?assignee={2**31}",
        f"/api/v1/notifications/deliveries?channel={N}",
        f"/api/v1/devices?offset={N}",
        f"/api/v1/communes?offset={N}",
    ],
)
def test_integers_in_the_query_beyond_their_bounds(client: TestClient, query: str) -> None:
    refused(client.get(query))


def test_problems_list_with_the_largest_offset_allowed(client: TestClient) -> None:
    assert client.get("/api/v1/problems?offset=1000000").json() == []


@pytest.mark.parametrize("assignee", [2**70, 2**31, 0, -1])
def test_assignee_beyond_a_user_id(client: TestClient, assignee: int) -> None:
    ticket = report(client)
    body = refused(client.post(f"/api/v1/tickets/{ticket['code']}/assign", json={"assignee_id": assignee}))
    assert body["errors"][0]["field"] == "assignee_id"


@pytest.mark.parametrize("cost", [2**63, 10**12 + 1, -1])
def test_costs_beyond_what_a_repair_costs(client: TestClient, cost: int) -> None:
    ticket = report(client)
    answer = client.post(f"/api/v1/tickets/{ticket['code']}/costs", json={"parts_cost_vnd": cost, "labour_cost_vnd": 0})
    refused(answer)


def test_attachment_id_beyond_an_integer_column(client: TestClient) -> None:
    ticket = report(client)
    refused(client.get(f"/api/v1/tickets/{ticket['code']}/attachments/{N}"))


def test_maintenance_window_duration_beyond_its_bound(client: TestClient) -> None:
    body = {
        "name": "x",
        "scope": "commune",
        "scope_code": "06190",
        "starts_at": "2026-03-01T08:00:00+07:00",
        "cron": "0 8 * * *",
        "duration_s": N,
    }
    refused(client.post("/api/v1/maintenance-windows", json=body))


def test_alertmanager_payload_nested_a_thousand_deep(client: TestClient) -> None:
    deep = "[" * 1000 + "]" * 1000
    answer = client.post(
        "/api/v1/integrations/alertmanager",
        content=deep,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    refused(answer)


def test_json_body_nested_a_thousand_deep(client: TestClient) -> None:
    deep = '{"note": ' + "[" * 1000 + "]" * 1000 + "}"
    answer = client.post("/api/v1/problems/1/acknowledge", content=deep, headers={"Content-Type": "application/json"})
    refused(answer)


def test_nul_in_a_json_body(client: TestClient) -> None:
    body = refused(client.post("/api/v1/tickets", json={"title": "a\x00b", "commune_code": "06190"}))
    assert "NUL" in body["errors"][0]["reason"]


def test_nul_in_the_path_and_the_query(client: TestClient) -> None:
    assert refused(client.get("/api/v1/tickets/a%00b"))["errors"][0]["field"] == "path"
    assert refused(client.get("/api/v1/tickets?q=a%00b"))["errors"][0]["field"] == "q"


def multipart(filename: bytes, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand: clients escape a NUL in a file name, an attacker need not."""
    boundary = b"bounds-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def test_nul_in_an_attachment_file_name(client: TestClient) -> None:
    ticket = report(client)
    content, headers = multipart(b"bad\x00name.png", png())
    answer = client.post(f"/api/v1/tickets/{ticket['code']}/attachments", content=content, headers=headers)
    body = refused(answer)
    assert body["errors"][0]["field"] == "file"
    assert "NUL" in body["errors"][0]["reason"]
    assert client.get(f"/api/v1/tickets/{ticket['code']}/attachments").json() == []
