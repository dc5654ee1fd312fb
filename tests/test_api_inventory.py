"""The inventory API over the demo fleet, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login


@pytest.fixture(scope="module")
def anonymous(demo_cast: Engine) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def client(anonymous: TestClient) -> TestClient:
    """Signed in as the province's administrator, who sees every district."""
    anonymous.headers.update(login(anonymous, "admin"))
    return anonymous


@pytest.fixture(scope="module")
def dinh_lap(demo_cast: Engine) -> Iterator[TestClient]:
    """Signed in as the officer of Đình Lập (district 189)."""
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        client.headers.update(login(client, "dinhlap"))
        yield client


def test_healthz_reports_the_database(client: TestClient) -> None:
    assert client.get("/healthz").json()["database"] == "ok"


def test_districts_list_the_11_districts_whose_communes_add_up_to_200(client: TestClient) -> None:
    districts = client.get("/api/v1/districts").json()
    assert len(districts) == 11
    assert sum(d["commune_count"] for d in districts) == 200
    assert 1500 <= sum(d["device_count"] for d in districts) <= 2000
    assert {"code": "189", "name": "Huyện Đình Lập", "type": "Huyện"}.items() <= districts[-1].items()


def test_communes_filter_by_district_and_search_without_accents(client: TestClient) -> None:
    page = client.get("/api/v1/communes", params={"district": "189"}).json()
    assert page["total"] == 12 and all(c["district_code"] == "189" for c in page["items"])
    found = client.get("/api/v1/communes", params={"q": "na duong"}).json()["items"]
    assert [c["name"] for c in found] == ["Thị trấn Na Dương"]


def test_a_commune_shows_its_broadcast_systems_for_the_plans_targets(client: TestClient) -> None:
    listed = client.get("/api/v1/communes", params={"q": "dinh lap", "district": "189"}).json()["items"]
    assert listed and all(c["has_radio_system"] and c["it_telecom_based"] for c in listed)
    detail = client.get(f"/api/v1/communes/{listed[0]['code']}").json()
    ip = [s for s in detail["broadcast_systems"] if s["technology"] == "ip"]
    assert ip and ip[0]["technology_label"] == "Ứng dụng CNTT - viễn thông"
    assert client.get("/api/v1/communes/00000").status_code == 404


@pytest.mark.parametrize(("query", "district"), [("dinh lap", "189"), ("LOC BINH", "188"), ("Đình Lập", "189")])
def test_device_search_ignores_diacritics_and_case(client: TestClient, query: str, district: str) -> None:
    page = client.get("/api/v1/devices", params={"q": query, "limit": 1000}).json()
    assert page["total"] > 0
    assert {d["district_code"] for d in page["items"]} == {district}


def test_devices_filter_by_district_commune_and_kind(client: TestClient) -> None:
    boards = client.get("/api/v1/devices", params={"district": "178", "kind": "bulletin_board", "limit": 1000}).json()
    assert boards["total"] >= 8  # every ward of the city is a district centre
    assert {(d["district_code"], d["kind"]) for d in boards["items"]} == {("178", "bulletin_board")}
    commune = client.get("/api/v1/devices", params={"commune": "06613"}).json()
    assert {d["commune_code"] for d in commune["items"]} == {"06613"}
    clusters = [d for d in commune["items"] if d["kind"] == "radio_cluster"]
    assert clusters and all(d["parent_code"] == "06613-ST" for d in clusters)


def test_keyset_pages_cover_every_device_once_in_order(client: TestClient) -> None:
    codes: list[str] = []
    params: dict[str, str | int] = {"district": "180", "limit": 37}
    while True:
        page = client.get("/api/v1/devices", params=params).json()
        codes += [d["code"] for d in page["items"]]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert codes == sorted(set(codes)) and len(codes) == page["total"]


def test_a_device_is_found_by_code_and_its_credentials_are_never_shown(client: TestClient) -> None:
    device = client.get("/api/v1/devices/06613-ST").json()
    assert device["protocol"] == "snmp" and device["has_credentials"] is True
    assert "credentials" not in device and "public" not in client.get("/api/v1/devices/06613-ST").text


def test_an_unknown_code_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/devices/NO-SUCH")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no device with code 'NO-SUCH'"
    assert client.get("/api/v1/devices", params={"district": "999"}).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "abc"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"kind": "toaster"}, "kind"),
        ({"district": "'; DROP TABLE devices;--"}, "district"),
        ({"q": "x" * 500}, "q"),
        ({"offset": -1}, "offset"),
        ({"after": "A\x00"}, "after"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    response = client.get("/api/v1/devices", params=params)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("q", ["%", "_", "\\", "%%__", "' OR 1=1 --", "\x00", "😀", "đ"])
def test_hostile_search_text_never_causes_a_500(client: TestClient, q: str) -> None:
    response = client.get("/api/v1/devices", params={"q": q})
    assert response.status_code in (200, 422)
    if q in ("%", "_", "%%__"):
        assert response.json()["total"] == 0


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/api/v1/devices/{code}" in client.get("/openapi.json").json()["paths"]


def test_the_api_needs_a_signed_in_user(demo_cast: Engine) -> None:
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast)) as stranger:
        response = stranger.get("/api/v1/devices")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert stranger.get("/api/v1/devices", headers={"Authorization": "Bearer forged"}).status_code == 401
        assert stranger.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"}).status_code == 401


def test_a_district_officer_sees_only_their_district(dinh_lap: TestClient) -> None:
    assert [d["code"] for d in dinh_lap.get("/api/v1/districts").json()] == ["189"]
    devices = dinh_lap.get("/api/v1/devices", params={"limit": 1000}).json()
    assert devices["total"] > 0 and {d["district_code"] for d in devices["items"]} == {"189"}
    assert dinh_lap.get("/api/v1/communes").json()["total"] == 12
    # another district's things do not exist for them, whichever way they ask
    assert dinh_lap.get("/api/v1/devices/05971-ST").status_code == 404
    assert dinh_lap.get("/api/v1/devices", params={"district": "183"}).status_code == 404
    assert dinh_lap.get("/api/v1/devices", params={"commune": "05971"}).status_code == 404
    assert dinh_lap.get("/api/v1/communes/05971").status_code == 404
    assert dinh_lap.get("/api/v1/devices", params={"q": "cao loc"}).json()["total"] == 0


def test_a_browser_session_needs_the_csrf_token_to_change_anything(demo_cast: Engine) -> None:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    with TestClient(create_app(settings, demo_cast)) as browser:
        signed_in = browser.post("/api/v1/auth/login", json={"username": "caoloc", "password": "demo-password"})
        assert "httponly" in signed_in.headers["set-cookie"].lower()
        assert browser.get("/api/v1/auth/me").json()["district_code"] == "183"  # the cookie alone reads
        assert browser.post("/api/v1/auth/logout").status_code == 403  # but cannot change without the token
        csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
        assert browser.post("/api/v1/auth/logout", headers=csrf).status_code == 204
        assert browser.get("/api/v1/auth/me").status_code == 401


def test_repeated_wrong_passwords_are_throttled(demo_cast: Engine) -> None:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        login_first_delay_s=120,  # the 6th guess comes within it however slow the machine (argon2 under load)
    )
    with TestClient(create_app(settings, demo_cast)) as attacker:
        codes = [
            attacker.post("/api/v1/auth/login", json={"username": "lanhdao", "password": f"guess-{n}"}).status_code
            for n in range(6)
        ]
        assert codes[:5] == [401] * 5 and codes[5] == 429  # the (name, address) pair is slowed after 5
