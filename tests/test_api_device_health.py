"""Devices' health through the API: current state with faults and readings, the `state` filter (what is down
now), and the history of state changes, within the user's district; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.errors import FailureKind
from monitor.collectors.mapping import failed_observation
from monitor.config import load_settings
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.models import Device
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
STATION, CLUSTER = "06613-ST", "06613-CL01"


@pytest.fixture(scope="module")
def judged(demo_cast: Engine) -> dict[str, int]:
    """The devices of commune 06613 judged through the health store: the station down after three failed
    polls, one cluster reachable with an amplifier fault, the others up. Everything else is never heard."""
    with Session(demo_cast) as session:
        ids = {d.code: d.id for d in session.exec(select(Device).where(col(Device.commune_code) == "06613"))}
    store = HealthStore(demo_cast)
    for minute in range(4):
        at = T0 + timedelta(minutes=minute)
        batch = []
        for code, device_id in ids.items():
            assert device_id is not None
            if code == STATION and minute > 0:
                batch.append(failed_observation(device_id, at, "snmp", FailureKind.TIMEOUT, "no answer within 2 s"))
            elif code == CLUSTER:
                faults = frozenset({"amplifier_fault"}) if minute > 0 else frozenset()
                batch.append(Observation(device_id, at, "http", True, 0.02, {"signal_dbm": -91}, faults))
            else:
                batch.append(Observation(device_id, at, "http", True, 0.01))
        store.apply(batch, at)
    return {code: device_id for code, device_id in ids.items() if device_id is not None}


def _client(engine: Engine, username: str) -> Iterator[TestClient]:
    settings = load_settings(database_url=engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        client.headers.update(login(client, username))
        yield client


@pytest.fixture(scope="module")
def admin(demo_cast: Engine, judged: dict[str, int]) -> Iterator[TestClient]:
    yield from _client(demo_cast, "admin")


@pytest.fixture(scope="module")
def cao_loc(demo_cast: Engine, judged: dict[str, int]) -> Iterator[TestClient]:
    yield from _client(demo_cast, "caoloc")


def test_a_device_shows_its_state_since_when_its_faults_and_last_error(admin: TestClient) -> None:
    station = admin.get(f"/api/v1/devices/{STATION}").json()["health"]
    assert station["state"] == "down" and station["state_label_vi"] == "Mất kết nối"
    assert station["faults"] == [{"code": "offline", "label_vi": "Mất kết nối", "label_en": "Offline"}]
    assert station["since"].startswith("2026-11-26T01:03") and station["last_seen"].startswith("2026-11-26T01:00")
    assert station["last_error"] == "timeout: no answer within 2 s"
    cluster = admin.get(f"/api/v1/devices/{CLUSTER}").json()["health"]
    assert cluster["state"] == "degraded" and [f["code"] for f in cluster["faults"]] == ["amplifier_fault"]
    assert cluster["readings"] == {"signal_dbm": -91} and cluster["latency_s"] == 0.02
    never = admin.get("/api/v1/devices/05971-ST").json()["health"]
    assert never == {
        "state": "unknown",
        "state_label_vi": "Chưa rõ",
        "state_label_en": "Unknown",
        "since": None,
        "faults": [],
        "flapping": False,
        "last_seen": None,
        "last_observation_at": None,
        "last_error": None,
        "latency_s": None,
        "readings": {},
    }


def test_what_is_down_now_is_one_filter_away(admin: TestClient, judged: dict[str, int]) -> None:
    def codes(**params: str) -> list[str]:
        page = admin.get("/api/v1/devices", params={"limit": 1000, **params}).json()
        assert page["total"] == len(page["items"])
        return [d["code"] for d in page["items"]]

    assert codes(state="down") == [STATION]
    assert codes(state="degraded", district="189") == [CLUSTER]
    assert sorted(codes(state="up")) == sorted(set(judged) - {STATION, CLUSTER})
    everyone = admin.get("/api/v1/devices", params={"limit": 1}).json()["total"]
    unknown = admin.get("/api/v1/devices", params={"limit": 1, "state": "unknown"}).json()["total"]
    assert unknown == everyone - len(judged), "never heard counts as unknown"
    assert admin.get("/api/v1/devices", params={"state": "sideways"}).status_code == 422


def test_a_devices_state_changes_come_newest_first(admin: TestClient) -> None:
    changes = admin.get(f"/api/v1/devices/{STATION}/state-changes").json()
    assert [(c["old_state"], c["new_state"]) for c in changes] == [("up", "down"), ("unknown", "up")]
    assert changes[0]["reason"].startswith("3 consecutive failures") and changes[0]["faults"][0]["code"] == "offline"
    assert len(admin.get(f"/api/v1/devices/{STATION}/state-changes", params={"limit": 1}).json()) == 1
    assert admin.get("/api/v1/devices/NO-SUCH/state-changes").status_code == 404


def test_another_districts_devices_and_their_history_do_not_exist_for_an_officer(cao_loc: TestClient) -> None:
    assert cao_loc.get(f"/api/v1/devices/{STATION}").status_code == 404
    assert cao_loc.get(f"/api/v1/devices/{STATION}/state-changes").status_code == 404
    assert cao_loc.get("/api/v1/devices", params={"state": "down"}).json()["total"] == 0


def test_districts_count_their_active_devices_by_state(admin: TestClient, cao_loc: TestClient) -> None:
    districts = {d["code"]: d for d in admin.get("/api/v1/districts").json()}
    dinh_lap = districts["189"]["devices_by_state"]
    assert set(dinh_lap) == {"unknown", "up", "degraded", "down", "maintenance"}
    assert (dinh_lap["down"], dinh_lap["degraded"], dinh_lap["maintenance"]) == (1, 1, 0)
    assert sum(dinh_lap.values()) == districts["189"]["device_count"], "every active device once"
    assert districts["183"]["devices_by_state"]["unknown"] == districts["183"]["device_count"]
    assert [d["code"] for d in cao_loc.get("/api/v1/districts").json()] == ["183"]


def test_longest_in_their_state_first_puts_the_oldest_outage_on_top(admin: TestClient, judged: dict[str, int]) -> None:
    def codes(**params: str) -> list[str]:
        return [d["code"] for d in admin.get("/api/v1/devices", params={"limit": 1000, **params}).json()["items"]]

    up_since_the_start = sorted(set(judged) - {STATION, CLUSTER})
    assert codes(commune="06613", order="longest") == [*up_since_the_start, CLUSTER, STATION]
    everyone = codes(district="189", order="longest")
    assert everyone[: len(judged)] == [*up_since_the_start, CLUSTER, STATION], "never heard come last"
    page = admin.get("/api/v1/devices", params={"order": "longest", "limit": 2}).json()
    assert page["next_after"] is None, "that order pages with offset"
    refused = admin.get("/api/v1/devices", params={"order": "longest", "after": "06613-ST"})
    assert refused.status_code == 422 and "after" in refused.text
    assert admin.get("/api/v1/devices", params={"order": "sideways"}).status_code == 422
