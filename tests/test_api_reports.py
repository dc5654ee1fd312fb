"""The uptime report through the API and the CLI: scoped like every list, in JSON, CSV and XLSX."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import select

from monitor.config import load_settings
from monitor.db import session_scope, utcnow
from monitor.health.models import StateChange
from monitor.i18n import local_today
from monitor.inventory.models import Commune, Device
from monitor.reports.schemas import UptimeReportPublic
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

CAO_LOC, DINH_LAP = "183", "189"


@pytest.fixture(scope="module")
def history(demo_cast: Engine) -> dict[str, str]:
    """One device of Cao Lộc down two hours yesterday, one of Đình Lập down one hour."""
    yesterday = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    codes = {}
    with session_scope(demo_cast) as session:
        for district, hours in ((CAO_LOC, 2), (DINH_LAP, 1)):
            device = session.exec(
                select(Device)
                .join(Commune, Commune.code == Device.commune_code)  # type: ignore[arg-type]
                .where(Commune.district_code == district, Device.kind == "radio_cluster")
                .order_by(Device.code)  # type: ignore[arg-type]
            ).first()
            assert device is not None and device.id is not None
            device.created_at = yesterday - timedelta(days=3)
            session.add(device)
            at = yesterday - timedelta(hours=6)
            for old, new, when in (
                ("unknown", "up", at),
                ("up", "down", yesterday),
                ("down", "up", yesterday + timedelta(hours=hours)),
            ):
                session.add(StateChange(device_id=device.id, old_state=old, new_state=new, at=when, reason="test"))
            codes[district] = device.code
    return codes


def _client(engine: Engine, username: str) -> Iterator[TestClient]:
    settings = load_settings(database_url=engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        client.headers.update(login(client, username))
        yield client


@pytest.fixture(scope="module")
def admin(demo_cast: Engine, history: dict[str, str]) -> Iterator[TestClient]:
    yield from _client(demo_cast, "admin")


@pytest.fixture(scope="module")
def caoloc(demo_cast: Engine, history: dict[str, str]) -> Iterator[TestClient]:
    yield from _client(demo_cast, "caoloc")


def _period() -> dict[str, str]:
    today = local_today()
    return {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()}


def test_the_province_sees_every_district_and_the_outages(admin: TestClient, history: dict[str, str]) -> None:
    response = admin.get("/api/v1/reports/uptime", params=_period())
    assert response.status_code == 200, response.text
    report = UptimeReportPublic.model_validate(response.json())
    rows = {row.key: row for row in report.rows}
    assert len(rows) == 11
    assert (rows[CAO_LOC].outages, rows[CAO_LOC].longest_outage_s) == (1, 7200)
    assert (rows[DINH_LAP].outages, rows[DINH_LAP].longest_outage_s) == (1, 3600)
    assert report.total.outages == 2 and report.total.down_s == 3 * 3600
    assert "Availability" in report.method and "mất kết nối" in report.method_vi


def test_an_officer_gets_their_district_alone_and_404_for_another(caoloc: TestClient, history: dict[str, str]) -> None:
    mine = caoloc.get("/api/v1/reports/uptime", params={**_period(), "by": "device"})
    assert mine.status_code == 200
    keys = {row["key"] for row in mine.json()["rows"]}
    assert history[CAO_LOC] in keys and history[DINH_LAP] not in keys
    assert all(row["district_code"] == CAO_LOC for row in mine.json()["rows"])
    assert caoloc.get("/api/v1/reports/uptime", params={**_period(), "district": DINH_LAP}).status_code == 404
    assert caoloc.get("/api/v1/reports/uptime", params={**_period(), "device": history[DINH_LAP]}).status_code == 404
    one = caoloc.get("/api/v1/reports/uptime", params={**_period(), "device": history[CAO_LOC]})
    assert [row["key"] for row in one.json()["rows"]] == [history[CAO_LOC]]
    assert one.json()["rows"][0]["down_s"] == 7200


def test_csv_and_xlsx_carry_vietnamese_headers_and_the_same_figures(caoloc: TestClient) -> None:
    csv = caoloc.get("/api/v1/reports/uptime", params={**_period(), "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="uptime-' in csv.headers["content-disposition"]
    text = csv.content.decode("utf-8-sig")
    header, first, *_ = text.splitlines()
    assert header.startswith("Mã,Tên,") and "Tỷ lệ hoạt động (%)" in header
    assert first.startswith(f"{CAO_LOC},Huyện Cao Lộc,")
    xlsx = caoloc.get("/api/v1/reports/uptime", params={**_period(), "format": "xlsx", "lang": "en"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    table = [row for row in sheet.iter_rows(values_only=True)]
    assert table[4][:2] == ("Code", "Name")
    assert table[5][0] == CAO_LOC and table[5][table[4].index("Down (h)")] == 2.0


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-05", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "2026-03-01", "to": "2026-03-02", "by": "galaxy"},
        {"from": "2026-03-01"},
        {"from": "9999-12-30", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"from": "0", "to": "1700000000"},
    ],
)
def test_a_bad_period_is_a_clear_problem(admin: TestClient, params: dict[str, str]) -> None:
    response = admin.get("/api/v1/reports/uptime", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_cli_writes_the_same_report(
    demo_cast: Engine, history: dict[str, str], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DATABASE_URL", demo_cast.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    period = _period()
    result = CliRunner().invoke(
        app,
        ["report", "uptime", "--from", period["from"], "--to", period["to"], "--district", CAO_LOC, "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    report = UptimeReportPublic.model_validate_json(result.stdout)
    assert [row.key for row in report.rows] == [CAO_LOC] and report.total.down_s == 7200
    bad = CliRunner().invoke(app, ["report", "uptime", "--from", "yesterday", "--to", period["to"]])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_sla_figures_are_scoped_and_exported(caoloc: TestClient, admin: TestClient) -> None:
    period = _period()
    mine = caoloc.get("/api/v1/reports/sla", params={**period, "by": "priority"})
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert set(body) >= {"from", "to", "rows", "total", "method", "method_vi"}
    assert caoloc.get("/api/v1/reports/sla", params={**period, "district": DINH_LAP}).status_code == 404
    every = admin.get("/api/v1/reports/sla", params={**period, "format": "csv"})
    assert every.status_code == 200 and every.content.decode("utf-8-sig").startswith("Mã,Tên,Phiếu mở")
    assert admin.get("/api/v1/reports/sla", params={**period, "by": "galaxy"}).status_code == 422
