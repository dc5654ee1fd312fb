"""The plan's annual results report: figures from a history built by hand, the document's layout as Nghị định
30/2020/NĐ-CP Phụ lục I sets it (checked in the DOCX itself), the PDF, XLSX and HTML read back, and the CLI and
API scoped like every list (an officer gets their own district, another's is a 404)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from docx import Document
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from monitor.config import load_settings
from monitor.errors import InvalidInput
from monitor.i18n import LOCAL_ZONE, local_today
from monitor.inventory.models import BroadcastSystem, Commune, District
from monitor.reports.annual import PlanCoverage, annual_figures, report_period
from monitor.reports.annual_document import annual_document, date_line, vn_int, vn_percent
from monitor.reports.annual_docx import render_docx
from monitor.reports.annual_html import render_html, render_pdf
from monitor.reports.annual_xlsx import render_xlsx
from monitor.reports.submission import ReportSubmission
from monitor.reports.training import AttendeeRole, TrainingAttendee, TrainingSession
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.test_reports_uptime import add_device, change, fold, history_a

CAO_LOC, DINH_LAP = "183", "189"
TOWN, OTHER_CAO_LOC = "06187", "06184"  # Thị trấn Cao Lộc, Thị trấn Đồng Đăng
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=LOCAL_ZONE).astimezone(UTC)


# --- the words and numbers of an administrative document ---------------------------------------------


def test_the_date_line_pads_days_under_10_and_the_months_january_and_february() -> None:
    assert date_line("Lạng Sơn", date(2026, 12, 5)) == "Lạng Sơn, ngày 05 tháng 12 năm 2026"
    assert date_line("Cao Lộc", date(2027, 2, 14)) == "Cao Lộc, ngày 14 tháng 02 năm 2027"
    assert date_line("Cao Lộc", date(2027, 3, 1)) == "Cao Lộc, ngày 01 tháng 3 năm 2027"


def test_numbers_are_written_the_vietnamese_way() -> None:
    assert vn_int(1_860_289_928) == "1.860.289.928"
    assert vn_percent(0.996412) == "99,64%"
    assert vn_percent(None) == "–"


def test_the_period_runs_from_the_configured_start_to_today() -> None:
    settings = load_settings(secret_key=TEST_SECRET)
    period = report_period(2026, today=date(2026, 12, 6), settings=settings, province=False)
    assert (period.first, period.last, period.due, period.complete) == (
        date(2026, 1, 1),
        date(2026, 12, 6),
        date(2026, 12, 15),
        False,
    )
    past = report_period(2025, today=date(2026, 12, 6), settings=settings, province=True)
    assert (past.first, past.last, past.due, past.complete) == (
        date(2025, 1, 1),
        date(2025, 12, 31),
        date(2025, 12, 20),
        True,
    )
    from_december = load_settings(secret_key=TEST_SECRET, report_period_start="12-15")
    period = report_period(2026, today=date(2026, 12, 20), settings=from_december, province=False)
    assert (period.first, period.last) == (date(2025, 12, 15), date(2026, 12, 14))
    with pytest.raises(InvalidInput):
        report_period(2027, today=date(2026, 12, 6), settings=settings, province=False)


# --- figures from a history built by hand -------------------------------------------------------


def _dinh_lap_commune(session: Session) -> Commune:
    commune = session.exec(
        select(Commune).where(col(Commune.district_code) == DINH_LAP).order_by(col(Commune.code))
    ).first()
    assert commune is not None
    return commune


@pytest.fixture
def history(session: Session) -> Session:
    """Cao Lộc: a cluster of the town down 4 hours in March (history_a), an IP system in the town and a wired one
    in Đồng Đăng, the town's officer trained; Đình Lập: a cluster down for a whole day, whose figures and name
    must never reach Cao Lộc's report."""
    history_a(session)
    elsewhere = _dinh_lap_commune(session)
    other = add_device(session, "DL-CL01", commune=elsewhere.code, installed_on=date(2026, 1, 1))
    change(session, other, "unknown", "up", datetime(2026, 3, 1, 8, tzinfo=LOCAL_ZONE))
    change(session, other, "up", "down", datetime(2026, 3, 4, 0, tzinfo=LOCAL_ZONE))
    change(session, other, "down", "up", datetime(2026, 3, 5, 0, tzinfo=LOCAL_ZONE))
    fold(session)
    session.add(BroadcastSystem(commune_code=TOWN, technology="ip", condition="good", installed_year=2022))
    session.add(BroadcastSystem(commune_code=OTHER_CAO_LOC, technology="wired", condition="degraded"))
    session.add(BroadcastSystem(commune_code=elsewhere.code, technology="ip", condition="good"))
    training = TrainingSession(
        held_on=date(2026, 2, 20), district_code=CAO_LOC, topic="Vận hành cụm loa", organiser="Phòng VHTT", hours=8
    )
    session.add(training)
    session.flush()
    assert training.id is not None
    session.add(
        TrainingAttendee(
            session_id=training.id, name="Nguyễn Văn A", commune_code=TOWN, role=AttendeeRole.COMMUNE_OFFICER.value
        )
    )
    session.commit()
    return session


def _district(session: Session, code: str) -> District:
    district = session.get(District, code)
    assert district is not None
    return district


def test_a_district_report_holds_its_figures_and_its_district_alone(history: Session) -> None:
    settings = load_settings(secret_key=TEST_SECRET)
    figures = annual_figures(history, 2026, now=NOW, settings=settings, district=_district(history, CAO_LOC))
    assert (figures.period.first, figures.period.last) == (date(2026, 1, 1), date(2026, 3, 10))
    assert figures.coverage == PlanCoverage(communes=22, with_radio=2, ip_based=1, legacy_standing=1, to_convert=1)
    total = figures.uptime_by_district.total.figures
    # Up from 08:00 on 1 March to 12:00 on 10 March (220 h), 4 h of it down: 216/220.
    assert total.seconds.get("down") == 4 * 3600
    assert total.seconds.availability == pytest.approx(216 / 220)
    assert [row.key for row in figures.uptime_by_district.rows] == [CAO_LOC]
    assert {row.key for row in figures.uptime_by_commune.rows} <= {
        c.code for c in history.exec(select(Commune).where(col(Commune.district_code) == CAO_LOC))
    }
    assert (figures.training_year.trained, figures.training_year.communes) == (1, 22)
    assert figures.devices_by_kind["radio_cluster"] == 1

    document = annual_document(figures, settings)
    text = "\n".join(block.text for block in document.blocks if hasattr(block, "text"))
    assert "2/22 xã, phường, thị trấn có đài truyền thanh" in text
    assert "đạt 4,55%: chưa đạt mục tiêu 80% đến năm 2025" in text  # 1 of 22 communes IT-telecom based
    assert "đạt 98,18%" in text  # 216/220
    assert "1/22 xã, phường, thị trấn (4,55%) có cán bộ thông tin cơ sở được tập huấn" in text
    assert document.parent_body == "UBND HUYỆN CAO LỘC"
    assert document.place_date == "Cao Lộc, ngày 10 tháng 3 năm 2026"
    everything = text + repr(document.appendix)
    assert _dinh_lap_commune(history).name not in everything and "DL-CL01" not in everything


def test_the_province_report_adds_up_the_districts_and_lists_each(history: Session) -> None:
    settings = load_settings(secret_key=TEST_SECRET)
    history.add(
        ReportSubmission(
            year=2026,
            district_code=CAO_LOC,
            filename="bao-cao.pdf",
            content_type="application/pdf",
            size_bytes=10,
            sha256="0" * 64,
            path="x",
            uploaded_at=NOW,
        )
    )
    history.commit()
    figures = annual_figures(history, 2026, now=NOW, settings=settings, district=None)
    assert len(figures.districts) == 11 and len(figures.coverage_by_district) == 11
    assert figures.coverage.with_radio == 3 and figures.coverage.ip_based == 2
    assert figures.uptime_by_district.total.figures.seconds.get("down") == (4 + 24) * 3600
    document = annual_document(figures, settings)
    assert document.parent_body == settings.report_province_parent
    assert document.place_date.startswith("Lạng Sơn, ngày 10 tháng 3 năm 2026")
    opening = document.blocks[1].text  # type: ignore[union-attr]
    assert opening.startswith("Đến ngày 10/03/2026, 1/11 huyện, thành phố đã gửi báo cáo kết quả năm 2026; chưa gửi:")
    assert "Huyện Đình Lập" in opening and "Huyện Cao Lộc" not in opening
    coverage = next(table for table in document.appendix if table.key == "coverage")
    assert [row[0] for row in coverage.rows] == sorted(code for code, _ in figures.districts)


# --- the files --------------------------------------------------------------------------------------


def _docx_text(document: object) -> str:
    parts = [p.text for p in document.paragraphs]  # type: ignore[attr-defined]
    for table in document.tables:  # type: ignore[attr-defined]
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)


def test_the_docx_is_laid_out_as_the_decree_asks_and_holds_the_figures(history: Session) -> None:
    settings = load_settings(secret_key=TEST_SECRET)
    figures = annual_figures(history, 2026, now=NOW, settings=settings, district=_district(history, CAO_LOC))
    doc = Document(io.BytesIO(render_docx(annual_document(figures, settings))))
    section = doc.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # Word keeps twips
    assert 20 <= section.top_margin.mm <= 25 and 20 <= section.bottom_margin.mm <= 25
    assert 30 <= section.left_margin.mm <= 35 and 15 <= section.right_margin.mm <= 20
    fonts = {run.font.name for p in doc.paragraphs for run in p.runs}
    fonts |= {
        run.font.name for t in doc.tables for r in t.rows for c in r.cells for p in c.paragraphs for run in p.runs
    }
    assert fonts == {"Times New Roman"}
    body_sizes = {run.font.size.pt for p in doc.paragraphs if p.paragraph_format.first_line_indent for run in p.runs}
    assert body_sizes and body_sizes <= {13, 14}
    # The page number: in the header, not on the first page.
    assert section.different_first_page_header_footer
    assert "PAGE" in section.header._element.xml and "PAGE" not in section.first_page_header._element.xml
    heading = doc.tables[0].rows[0].cells
    assert heading[0].text.split("\n")[:2] == ["UBND HUYỆN CAO LỘC", settings.report_district_body]
    assert re.search(r"Số:\s+/BC-VHTT", heading[0].text)
    assert heading[1].text.split("\n")[:3] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "",  # the line under the motto
    ]
    assert "Cao Lộc, ngày 10 tháng 3 năm 2026" in heading[1].text
    date_run = next(run for p in heading[1].paragraphs for run in p.runs if run.text.startswith("Cao Lộc, ngày"))
    assert date_run.font.italic
    text = _docx_text(doc)
    assert "BÁO CÁO\n" in text and "Kết quả thực hiện Đề án nâng cao hiệu quả" in text
    assert "đạt 98,18%" in text and "Nơi nhận:" in text and "TRƯỞNG PHÒNG" in text
    assert "Phụ lục 1" in text and "[Đơn vị bổ sung:" in text


def test_the_pdf_xlsx_and_html_hold_the_same_figures(history: Session) -> None:
    settings = load_settings(secret_key=TEST_SECRET)
    figures = annual_figures(history, 2026, now=NOW, settings=settings, district=_district(history, CAO_LOC))
    document = annual_document(figures, settings)

    pdf = PdfReader(io.BytesIO(render_pdf(document)))
    assert len(pdf.pages) >= 3
    width, height = float(pdf.pages[0].mediabox.width), float(pdf.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    first = pdf.pages[0].extract_text()
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in first and "BÁO CÁO" in first
    assert "1" not in first.splitlines()  # no page number on the first page
    assert "2" in pdf.pages[1].extract_text().splitlines()  # the number, from page 2 on
    assert "98,18%" in "".join(page.extract_text() for page in pdf.pages)
    fonts = set()
    for page in pdf.pages:
        for font in page["/Resources"]["/Font"].values():  # type: ignore[index]
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert any("Liberation-Serif" in name or "Times" in name for name in fonts), fonts

    book = load_workbook(io.BytesIO(render_xlsx(document)))
    assert book.sheetnames[0] == "Báo cáo"
    uptime = next(sheet for sheet in book.worksheets if "Tỷ lệ hoạt động theo xã" in str(sheet["A1"].value))
    rows = list(uptime.iter_rows(min_row=5, values_only=True))
    total = next(row for row in rows if row[1] == "Tổng cộng")
    assert total[3] == pytest.approx(216 / 220) and total[5] == pytest.approx(4.0)

    html = render_html(document).decode()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "98,18%" in html and "Phụ lục 1" in html


def test_names_people_typed_are_escaped_in_the_html(history: Session) -> None:
    town = history.get(Commune, TOWN)
    assert town is not None
    town.name = "Thị trấn <script>alert(1)</script>"
    history.add(town)
    history.commit()
    settings = load_settings(secret_key=TEST_SECRET)
    figures = annual_figures(history, 2026, now=NOW, settings=settings, district=_district(history, CAO_LOC))
    html = render_html(annual_document(figures, settings)).decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- the CLI and the API ---------------------------------------------------------------------------


def test_the_cli_writes_a_district_report(demo_cast: Engine, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DATABASE_URL", demo_cast.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    output = tmp_path / "bao-cao.docx"  # type: ignore[operator]
    year = str(local_today().year)
    result = CliRunner().invoke(
        app, ["report", "annual", "--year", year, "--district", CAO_LOC, "--format", "docx", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    text = _docx_text(Document(str(output)))
    assert "UBND HUYỆN CAO LỘC" in text and "Huyện Đình Lập" not in text
    unknown = CliRunner().invoke(app, ["report", "annual", "--year", year, "--district", "999", "--output", "x.docx"])
    assert unknown.exit_code == 2 and "999" in unknown.output
    bad = CliRunner().invoke(app, ["report", "annual", "--year", year, "--format", "odt", "--output", "x.odt"])
    assert bad.exit_code == 2 and "docx" in bad.output


@pytest.fixture(scope="module")
def clients(demo_cast: Engine) -> Iterator[dict[str, TestClient]]:
    settings = load_settings(database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast), raise_server_exceptions=False) as client:
        tokens = {name: login(client, name) for name in ("admin", "lanhdao", "caoloc", "kythuat")}

        class _As:
            def __init__(self, headers: dict[str, str]) -> None:
                self.headers = headers

            def get(self, url: str, **kwargs: object) -> object:
                return client.get(url, headers=self.headers, **kwargs)  # type: ignore[arg-type]

        yield {name: _As(headers) for name, headers in tokens.items()}  # type: ignore[misc]


def test_the_api_gives_an_officer_their_own_district_and_nothing_else(clients: dict[str, TestClient]) -> None:
    url = f"/api/v1/reports/annual/{local_today().year}"
    mine = clients["caoloc"].get(url)
    assert mine.status_code == 200, mine.text
    assert mine.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.wordprocessingml")
    assert f"-{CAO_LOC}.docx" in mine.headers["content-disposition"]
    text = _docx_text(Document(io.BytesIO(mine.content)))
    assert "UBND HUYỆN CAO LỘC" in text and "Huyện Đình Lập" not in text
    assert clients["caoloc"].get(url, params={"district": DINH_LAP}).status_code == 404
    assert clients["kythuat"].get(url).status_code == 403


def test_the_api_gives_leadership_the_province_in_every_format(clients: dict[str, TestClient]) -> None:
    url = f"/api/v1/reports/annual/{local_today().year}"
    xlsx = clients["lanhdao"].get(url, params={"format": "xlsx"})
    assert xlsx.status_code == 200 and "-tinh.xlsx" in xlsx.headers["content-disposition"]
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames[0] == "Báo cáo"
    html = clients["admin"].get(url, params={"format": "html", "district": DINH_LAP})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "script-src" not in html.headers["content-security-policy"]
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "UBND HUYỆN ĐÌNH LẬP" in html.text
    assert clients["admin"].get(url, params={"format": "odt"}).status_code == 422
    assert clients["admin"].get(f"/api/v1/reports/annual/{local_today().year + 1}").status_code == 422
