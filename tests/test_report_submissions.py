"""The signed annual results report: uploaded by a district (scoped), its status by the due day in Vietnam
time, its history, the CLI, and the reminders of the deadlines through the real notification pipeline."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.models import NotificationDelivery
from monitor.alerts.notify import DeliveryReport, deliver_due, open_senders
from monitor.config import Settings, load_settings
from monitor.db import make_engine
from monitor.errors import InvalidInput, NotFound
from monitor.reports.reminders import send_report_reminders
from monitor.reports.submission import (
    PDF,
    ReportReminder,
    SubmissionStatus,
    submission_status,
    submit_report,
)
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.test_notify_support import (
    ADDRESS,
    CAO_LOC,
    DINH_LAP,
    WEBHOOK_SECRET,
    Received,
    add_channel,
    add_people,
    webhook_peer,
)

SIGNED_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bao-cao.txt", "không phải Word")
    return buffer.getvalue()


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An instant given in Vietnam time (UTC+7, no summer time), as UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC) - timedelta(hours=7)


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(demo_cast: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("data"),
    )
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        yield client


def upload(
    client: TestClient,
    headers: dict[str, str],
    year: int,
    content: bytes = SIGNED_PDF,
    name: str = "bao-cao-ky.pdf",
    **form: str,
) -> httpx.Response:
    """POST a file (sent as application/pdf whatever it holds) and the form's fields."""
    response: httpx.Response = client.post(
        f"/api/v1/reports/annual/{year}/submissions",
        files={"file": (name, content, "application/pdf")},
        data=form,
        headers=headers,
    )
    return response


def test_an_officer_submits_their_own_districts_report_and_no_other(client: TestClient) -> None:
    caoloc, dinhlap = login(client, "caoloc"), login(client, "dinhlap")
    sent = client.post(
        "/api/v1/reports/annual/2031/submissions",
        files={"file": ("Báo cáo Cao Lộc.pdf", SIGNED_PDF, "application/pdf")},
        data={"note": "bản ký số"},
        headers=caoloc,
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["district_code"], body["content_type"], body["size_bytes"]) == (CAO_LOC, PDF, len(SIGNED_PDF))
    assert body["filename"] == "Báo cáo Cao Lộc.pdf" and body["note"] == "bản ký số"
    for form in ({"district": DINH_LAP}, {"district": "province"}, {"district": "999"}):
        refused = client.post(
            "/api/v1/reports/annual/2031/submissions",
            files={"file": ("x.pdf", SIGNED_PDF)},
            data=form,
            headers=caoloc,
        )
        assert refused.status_code == 404, (form, refused.text)
    for name in ("lanhdao", "kythuat"):
        forbidden = client.post(
            "/api/v1/reports/annual/2031/submissions",
            files={"file": ("x.pdf", SIGNED_PDF)},
            headers=login(client, name),
        )
        assert forbidden.status_code == 403

    (own,) = client.get("/api/v1/reports/annual/2031/submissions", headers=dinhlap).json()
    assert (own["district_code"], own["due"], own["submission"]) == (DINH_LAP, "2031-12-15", None)
    leader_view = client.get("/api/v1/reports/annual/2031/submissions", headers=login(client, "lanhdao")).json()
    assert len(leader_view) == 12 and leader_view[-1]["district_code"] is None  # 11 districts, then the province
    assert leader_view[-1]["due"] == "2031-12-20"
    cao_loc = next(row for row in leader_view if row["district_code"] == CAO_LOC)
    assert cao_loc["status"] == "submitted" and cao_loc["submitted_by"] == "Cán bộ phụ trách Cao Lộc"

    file_url = f"/api/v1/reports/annual/2031/submissions/{body['id']}/file"
    downloaded = client.get(file_url, headers=caoloc)
    assert downloaded.status_code == 200 and downloaded.content == SIGNED_PDF
    assert downloaded.headers["content-type"] == PDF
    assert client.get(file_url, headers=login(client, "lanhdao")).status_code == 200
    assert client.get(file_url, headers=dinhlap).status_code == 404
    assert client.get(f"/api/v1/reports/annual/2030/submissions/{body['id']}/file", headers=caoloc).status_code == 404


def test_administrators_name_the_district_or_the_province(client: TestClient) -> None:
    admin, caoloc = login(client, "admin"), login(client, "caoloc")
    unnamed = upload(client, admin, 2034)
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "district"
    for_dinh_lap = upload(client, admin, 2034, district=DINH_LAP)
    assert for_dinh_lap.status_code == 201
    own = upload(client, admin, 2034, docx(), "bao-cao-tinh.docx", district="province")
    assert own.status_code == 201, own.text
    record = own.json()
    assert record["district_code"] is None and record["content_type"].endswith("wordprocessingml.document")
    assert client.get(f"/api/v1/reports/annual/2034/submissions/{record['id']}/file", headers=caoloc).status_code == 404
    rows = client.get("/api/v1/reports/annual/2034/submissions", headers=caoloc).json()
    assert [row["district_code"] for row in rows] == [CAO_LOC]  # the province's own row is not theirs


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (PNG, "bao-cao.pdf", "a PNG image"),
        (plain_zip(), "bao-cao.docx", "a ZIP archive that is not a Word document"),
        (b"", "bao-cao.pdf", "the file is empty"),
    ],
    ids=["png-named-pdf", "zip-named-docx", "empty"],
)
def test_a_file_that_is_not_a_report_by_its_bytes_is_refused_clearly(
    client: TestClient, content: bytes, name: str, words: str
) -> None:
    refused = upload(client, login(client, "caoloc"), 2035, content, name)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["field"] == "file" and words in error["reason"]


def test_a_newer_upload_replaces_the_current_one_and_keeps_the_history(client: TestClient) -> None:
    caoloc = login(client, "caoloc")
    first = upload(client, caoloc, 2032).json()
    second = upload(client, caoloc, 2032, docx(), "ban-sua.docx").json()
    (row,) = client.get("/api/v1/reports/annual/2032/submissions", headers=caoloc).json()
    assert row["submission"]["id"] == second["id"] and row["submission"]["superseded_at"] is None
    assert [e["id"] for e in row["earlier"]] == [first["id"]] and row["earlier"][0]["superseded_at"] is not None
    old = client.get(f"/api/v1/reports/annual/2032/submissions/{first['id']}/file", headers=caoloc)
    assert old.status_code == 200 and old.content == SIGNED_PDF


# --- status by the due day, in Vietnam time ------------------------------------------------------


def test_status_turns_late_after_the_due_days_end_in_vietnam_time(session: Session, tmp_path: Path) -> None:
    def submit(district: str, at: datetime) -> None:
        submit_report(
            year=2030,
            district_code=district,
            filename="bc.pdf",
            data=SIGNED_PDF,
            note=None,
            uploaded_by=None,
            data_dir=tmp_path,
            max_bytes=1 << 20,
            session=session,
            district_codes=None,
            now=at,
        )
        session.commit()

    submit(CAO_LOC, vn(2030, 12, 15, 23, 59, 59))  # 16:59:59 UTC: still the due day where people are
    submit(DINH_LAP, vn(2030, 12, 16, 0, 0, 0))  # 17:00 UTC on the 15th, but the 16th in Vietnam
    status = {
        today: {
            row.district_code: row.status for row in submission_status(session, 2030, district_codes=None, today=today)
        }
        for today in (date(2030, 12, 15), date(2030, 12, 16))
    }
    assert status[date(2030, 12, 15)][CAO_LOC] is SubmissionStatus.SUBMITTED
    assert status[date(2030, 12, 16)][DINH_LAP] is SubmissionStatus.SUBMITTED_LATE
    assert status[date(2030, 12, 15)]["180"] is SubmissionStatus.PENDING  # Lạng Sơn city, on the due day
    assert status[date(2030, 12, 16)]["180"] is SubmissionStatus.LATE
    assert status[date(2030, 12, 16)][None] is SubmissionStatus.PENDING  # the province's own is due on the 20th
    (only,) = submission_status(session, 2030, district_codes={DINH_LAP}, today=date(2030, 12, 16))
    assert only.status is SubmissionStatus.SUBMITTED_LATE


def test_the_service_keeps_a_district_to_its_own_report(session: Session, tmp_path: Path) -> None:
    def submit(district: str | None, scope: set[str] | None, data: bytes = SIGNED_PDF) -> None:
        submit_report(
            year=2030,
            district_code=district,
            filename="bc.pdf",
            data=data,
            note=None,
            uploaded_by=None,
            data_dir=tmp_path,
            max_bytes=50 if data != SIGNED_PDF else 1 << 20,
            session=session,
            district_codes=scope,
            now=vn(2030, 12, 1),
        )

    with pytest.raises(NotFound):
        submit(DINH_LAP, {CAO_LOC})
    with pytest.raises(NotFound):
        submit(None, {CAO_LOC})  # the province's own report is not a district's
    with pytest.raises(InvalidInput, match="report refused"):
        submit(CAO_LOC, None, b"%PDF-" + b"x" * 100)  # larger than the cap


# --- the CLI ------------------------------------------------------------------------------------


def test_the_cli_submits_and_lists_in_vietnam_time(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.db import session_scope
    from monitor.inventory.units import init_province, load_units

    with session_scope(make_engine(sqlite_settings)) as session:
        init_province(session, load_units("lang-son", "2020"))
    monkeypatch.setenv("MONITOR_DATABASE_URL", sqlite_settings.effective_database_url)
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    signed = tmp_path / "bao-cao-dinh-lap.pdf"
    signed.write_bytes(SIGNED_PDF)
    renamed = tmp_path / "anh.pdf"
    renamed.write_bytes(PNG)
    runner = CliRunner()
    sent = runner.invoke(
        app, ["report", "submit", "--year", "2033", "--district", DINH_LAP, str(signed), "--note", "bản ký"]
    )
    assert sent.exit_code == 0, sent.output
    assert "bao-cao-dinh-lap.pdf" in sent.stdout
    refused = runner.invoke(app, ["report", "submit", "--year", "2033", "--district", DINH_LAP, str(renamed)])
    assert refused.exit_code == 2 and "a PNG image" in refused.output
    listed = runner.invoke(app, ["report", "submissions", "--year", "2033"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.stdout.splitlines() if "Đình Lập" in line)
    assert "15/12/2033" in line and "Đã nộp đúng hạn" in line
    assert any(ch.isdigit() for ch in line.split("Đã nộp đúng hạn")[1])  # dd/mm/yyyy HH:MM of the upload
    assert "Chưa nộp" in next(line for line in listed.stdout.splitlines() if "Cao Lộc" in line)


# --- reminders ----------------------------------------------------------------------------------


def _deliveries(engine: Engine) -> list[NotificationDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.id))))


def _submit(session: Session, tmp_path: Path, district: str | None, at: datetime) -> None:
    submit_report(
        year=2030,
        district_code=district,
        filename="bc.pdf",
        data=SIGNED_PDF,
        note=None,
        uploaded_by=None,
        data_dir=tmp_path,
        max_bytes=1 << 20,
        session=session,
        district_codes=None,
        now=at,
    )
    session.commit()


def test_reminders_are_queued_once_by_two_processes_and_never_to_a_district_that_submitted(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    add_people(session)
    add_channel(session, "mail", "email", {"smtp_host": "127.0.0.1", "from_addr": "giamsat@langson.gov.vn"})
    add_channel(session, "hook", "webhook", {"url": "http://127.0.0.1:9/x", "secret": WEBHOOK_SECRET})
    _submit(session, tmp_path, CAO_LOC, vn(2030, 12, 9, 10))
    first, second = make_engine(settings), make_engine(settings)
    try:
        assert send_report_reminders(first, vn(2030, 12, 9, 23), settings) == {}  # 6 days ahead: too early
        now = vn(2030, 12, 10, 8)
        queued = send_report_reminders(first, now, settings)
        assert send_report_reminders(second, now, settings) == {}
        assert send_report_reminders(second, now + timedelta(hours=1), settings) == {}
    finally:
        first.dispose()
        second.dispose()
    rows = _deliveries(session.get_bind())  # type: ignore[arg-type]
    assert CAO_LOC not in queued and len(queued) == 10  # every district but Cao Lộc, which has sent its report
    assert sorted(r.recipient for r in rows if r.recipient != "webhook") == [ADDRESS["dinhlap"]]  # officers only
    assert len([r for r in rows if r.recipient == "webhook"]) == 10
    dinh_lap = next(r for r in rows if r.recipient == ADDRESS["dinhlap"])
    assert dinh_lap.subject == "Nhắc nộp báo cáo kết quả năm 2030: hạn 15/12/2030, Huyện Đình Lập chưa nộp."
    assert "Còn 5 ngày đến hạn." in dinh_lap.body and dinh_lap.district_code == DINH_LAP
    stages = {(r.target, r.stage) for r in session.exec(select(ReportReminder))}
    assert (DINH_LAP, "ahead") in stages and len(stages) == 10

    # The due day: one more each, marked `due`; it also opens the province's lead time before the 20th, so the
    # administrators hear which districts are still missing, once: the day after, nothing more is queued.
    due_day = send_report_reminders(session.get_bind(), vn(2030, 12, 15, 7), settings)  # type: ignore[arg-type]
    assert len(due_day) == 11 and "province" in due_day and CAO_LOC not in due_day
    assert send_report_reminders(session.get_bind(), vn(2030, 12, 16, 7), settings) == {}  # type: ignore[arg-type]
    province_rows = [r for r in _deliveries(session.get_bind()) if r.district_code is None]  # type: ignore[arg-type]
    assert sorted(r.recipient for r in province_rows) == sorted([ADDRESS["admin"], "webhook"])
    assert province_rows[0].subject.startswith("Nhắc gửi báo cáo kết quả năm 2030 của tỉnh: hạn 20/12/2030")
    assert "• Huyện Đình Lập" in province_rows[0].body and "Huyện Cao Lộc" not in province_rows[0].body
    _submit(session, tmp_path, None, vn(2030, 12, 17, 9))
    assert send_report_reminders(session.get_bind(), vn(2030, 12, 20, 7), settings) == {}  # type: ignore[arg-type]


def test_a_reminder_reaches_a_webhook_through_the_real_delivery_worker(session: Session, settings: Settings) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    now = vn(2030, 12, 12, 8)

    async def scenario() -> tuple[DeliveryReport, DeliveryReport, list[Received]]:
        async with webhook_peer() as peer:
            add_channel(
                session, "dl-hook", "webhook", {"url": peer.url, "secret": WEBHOOK_SECRET}, district_code=DINH_LAP
            )
            await asyncio.to_thread(send_report_reminders, engine, now, settings)
            async with open_senders() as senders:
                report = await deliver_due(engine=engine, now=now, senders=senders)
                await asyncio.to_thread(send_report_reminders, engine, now + timedelta(hours=1), settings)
                again = await deliver_due(engine=engine, now=now + timedelta(hours=1), senders=senders)
            return report, again, list(peer.received)

    report, again, received = asyncio.run(scenario())
    assert (report.sent, again.claimed) == (1, 0)
    (message,) = received
    body = message.json()
    assert message.signature_ok and body["count"] == 0
    assert body["subject"] == "Nhắc nộp báo cáo kết quả năm 2030: hạn 15/12/2030, Huyện Đình Lập chưa nộp."
    assert "Còn 3 ngày đến hạn." in body["text"]
    (row,) = _deliveries(engine)
    assert row.status == "sent" and row.payload["reminder"]["stage"] == "ahead"
