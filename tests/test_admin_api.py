"""The administrators' API the /admin page uses (accounts, the fleet file by upload) and the map's data, each
behind the one door: administrators only where it says so, scoped by district everywhere else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.auth.audit import AuditEvent
from monitor.config import load_settings
from monitor.db import session_scope
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

FLEET_HEADER = "code,name,kind,commune_code,parent_code,protocol,address,port,profile,interval_s,lat,lon,installed_on\n"


@pytest.fixture(scope="module")
def client(demo_cast: Engine) -> Iterator[TestClient]:
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        yield client


def _actions(engine: Engine, target: str) -> list[str]:
    with session_scope(engine) as session:
        events = session.exec(select(AuditEvent).where(col(AuditEvent.target) == target).order_by(col(AuditEvent.id)))
        return [event.action for event in events]


def test_an_administrator_manages_accounts_and_each_change_is_logged(client: TestClient, demo_cast: Engine) -> None:
    admin = login(client, "admin")
    made = client.post(
        "/api/v1/users",
        json={
            "username": "kythuat2",
            "full_name": "Hoàng Văn B",
            "role": "technician",
            "district_code": "183",
            "password": "mat-khau-du-dai",
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    assert login(client, "kythuat2", "mat-khau-du-dai")
    moved = client.patch(f"/api/v1/users/{user_id}", json={"district_code": "189"}, headers=admin)
    assert moved.status_code == 200 and moved.json()["districts"] == ["189"]
    assert client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin).json()["active"] is False
    refused = client.post("/api/v1/auth/login", json={"username": "kythuat2", "password": "mat-khau-du-dai"})
    assert refused.status_code == 401
    client.patch(f"/api/v1/users/{user_id}", json={"active": True}, headers=admin)
    assert (
        client.post(f"/api/v1/users/{user_id}/password", json={"password": "mat-khau-moi-1"}, headers=admin).status_code
        == 204
    )
    assert login(client, "kythuat2", "mat-khau-moi-1")
    assert _actions(demo_cast, "kythuat2")[:1] == ["user_created"]
    assert {"user_changed", "user_disabled", "user_enabled", "password_reset"} <= set(_actions(demo_cast, "kythuat2"))


def test_accounts_are_for_administrators_and_checked(client: TestClient) -> None:
    admin, officer = login(client, "admin"), login(client, "caoloc")
    body = {
        "username": "x1",
        "full_name": "X",
        "role": "officer",
        "district_code": "183",
        "password": "mat-khau-du-dai",
    }
    assert client.post("/api/v1/users", json=body, headers=officer).status_code == 403
    assert client.post("/api/v1/users", json={**body, "district_code": None}, headers=admin).status_code == 422
    assert client.post("/api/v1/users", json={**body, "password": "ngan"}, headers=admin).status_code == 422
    me = client.get("/api/v1/auth/me", headers=admin).json()["id"]
    assert client.patch(f"/api/v1/users/{me}", json={"active": False}, headers=admin).status_code == 422
    assert client.patch("/api/v1/users/999999", json={"active": False}, headers=admin).status_code == 404


def test_the_fleet_file_by_upload_names_every_refused_row(client: TestClient, demo_cast: Engine) -> None:
    admin = login(client, "admin")
    good = FLEET_HEADER + "06187-CL99,Cụm loa mới,radio_cluster,06187,,http,127.1.9.9,18080,vietloa-ip200-http,60,,,\n"
    checked = client.post(
        "/api/v1/fleet/import", files={"file": ("fleet.csv", good.encode())}, data={"dry_run": "true"}, headers=admin
    )
    assert checked.status_code == 200, checked.text
    assert checked.json() | {"file": "fleet.csv"} == {
        "file": "fleet.csv",
        "valid": 1,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "dry_run": True,
    }
    applied = client.post("/api/v1/fleet/import", files={"file": ("fleet.csv", good.encode())}, headers=admin)
    assert applied.json()["created"] == 1 and "fleet_imported" in _actions(demo_cast, "fleet.csv")
    bad = FLEET_HEADER + "06187-CL98,X,toaster,06187,,http,h,99999,vietloa-ip200-http,60,,,\n"
    refused = client.post("/api/v1/fleet/import", files={"file": ("bad.csv", bad.encode())}, headers=admin)
    assert refused.status_code == 422
    fields = {(e["line"], e["field"]) for e in refused.json()["errors"]}
    assert (2, "kind") in fields and (2, "port") in fields
    officer = login(client, "caoloc")
    assert (
        client.post("/api/v1/fleet/import", files={"file": ("f.csv", good.encode())}, headers=officer).status_code
        == 403
    )


def test_the_map_holds_the_callers_district_alone(client: TestClient) -> None:
    officer = login(client, "caoloc")
    mine = client.get("/api/v1/map", headers=officer).json()
    communes = {c[0] for c in mine["communes"]}
    assert len(communes) == 22  # Cao Lộc's communes only
    assert mine["devices"] and {d[6] for d in mine["devices"]} <= communes
    assert client.get("/api/v1/map", params={"district": "189"}, headers=officer).status_code == 404
    every = client.get("/api/v1/map", headers=login(client, "admin")).json()
    assert len(every["communes"]) == 200 and len(every["devices"]) > len(mine["devices"])


def test_the_overview_as_data_is_the_pages_and_scoped(client: TestClient) -> None:
    officer = login(client, "caoloc")
    mine = client.get("/api/v1/overview", headers=officer)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert [d["code"] for d in body["districts"]] == ["183"]
    assert sum(body["devices_by_state"].values()) == body["districts"][0]["devices"]
    assert set(body["tickets_by_priority"]) == {"P1", "P2", "P3", "P4"} and body["coverage"]["communes"] == 22
    assert client.get("/api/v1/overview", params={"district": "189"}, headers=officer).status_code == 404
    province = client.get("/api/v1/overview", headers=login(client, "lanhdao")).json()
    assert len(province["districts"]) == 11 and province["coverage"]["communes"] == 200
