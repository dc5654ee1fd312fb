"""The training register: sessions and attendees through the API (scoped) and the CLI, and the coverage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

SESSION = {
    "held_on": "2026-06-12",
    "district_code": "183",
    "topic": "Vận hành cụm loa IP",
    "organiser": "Sở TT&TT",
    "hours": 8,
}


@pytest.fixture(scope="module")
def client(demo_cast: Engine) -> Iterator[TestClient]:
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        yield client


def test_an_officer_records_their_districts_training_and_no_other(client: TestClient) -> None:
    caoloc, dinhlap, tech = login(client, "caoloc"), login(client, "dinhlap"), login(client, "kythuat")
    created = client.post("/api/v1/training/sessions", json=SESSION, headers=caoloc)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    for name, commune, role in (
        ("Hoàng Văn A", "06187", "commune_officer"),
        ("Lý Thị B", "06190", "commune_officer"),
        ("Nông C", "06190", "technician"),
    ):
        added = client.post(
            f"/api/v1/training/sessions/{session_id}/attendees",
            json={"name": name, "commune_code": commune, "role": role},
            headers=caoloc,
        )
        assert added.status_code == 201, added.text
    wrong = client.post(
        f"/api/v1/training/sessions/{session_id}/attendees", json={"name": "X", "commune_code": "06613"}, headers=caoloc
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "commune_code"  # Đình Lập's commune
    assert (
        client.post("/api/v1/training/sessions", json={**SESSION, "district_code": "189"}, headers=caoloc).status_code
        == 404
    )
    assert client.post("/api/v1/training/sessions", json=SESSION, headers=tech).status_code == 403
    assert client.get(f"/api/v1/training/sessions/{session_id}", headers=dinhlap).status_code == 404
    detail = client.get(f"/api/v1/training/sessions/{session_id}", headers=tech).json()
    assert detail["attendee_count"] == 3 and detail["attendees"][0]["name"] == "Hoàng Văn A"
    assert [s["id"] for s in client.get("/api/v1/training/sessions", headers=dinhlap).json()] == []
    coverage = client.get(
        "/api/v1/training/coverage", params={"from": "2026-01-01", "to": "2026-12-31"}, headers=caoloc
    ).json()
    assert (coverage["trained"], coverage["communes"]) == (2, 22)  # the technician's commune is not counted
    assert coverage["share"] == pytest.approx(2 / 22) and (coverage["attendees"], coverage["sessions"]) == (3, 1)
    before = client.get(
        "/api/v1/training/coverage", params={"from": "2025-01-01", "to": "2025-12-31"}, headers=caoloc
    ).json()
    assert before["trained"] == 0 and before["share"] == 0


@pytest.mark.parametrize(
    "change", [{"hours": 0}, {"hours": 500}, {"topic": ""}, {"held_on": "1900-01-01"}, {"district_code": "../x"}]
)
def test_a_bad_session_is_a_clear_problem(client: TestClient, change: dict[str, object]) -> None:
    response = client.post("/api/v1/training/sessions", json={**SESSION, **change}, headers=login(client, "admin"))
    assert response.status_code == 422, response.text


def test_the_cli_records_and_lists(demo_cast: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DATABASE_URL", demo_cast.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "training",
            "add",
            "--date",
            "2026-09-03",
            "--district",
            "189",
            "--topic",
            "Bảo dưỡng bảng tin",
            "--hours",
            "4",
        ],
    )
    assert added.exit_code == 0, added.output
    session_id = added.stdout.split()[2].rstrip(":")
    attended = runner.invoke(app, ["training", "attend", session_id, "--name", "Vi Văn D", "--commune", "06613"])
    assert attended.exit_code == 0, attended.output
    listed = runner.invoke(app, ["training", "list", "--district", "189", "--year", "2026"])
    assert "03/09/2026" in listed.stdout and "communes with a trained officer: 1/" in listed.stdout
    refused = runner.invoke(app, ["training", "attend", session_id, "--name", "X", "--commune", "06187"])
    assert refused.exit_code == 2 and "commune_code" in refused.output


def test_a_day_is_written_as_a_day(client: TestClient) -> None:
    admin = login(client, "admin")
    assert client.get("/api/v1/training/sessions", params={"to": "0"}, headers=admin).status_code == 422
    assert client.get("/api/v1/training/sessions", params={"to": "2026-12-31"}, headers=admin).status_code == 200
