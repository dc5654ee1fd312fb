"""The yearly review and the budget basis: a month of history and tickets built by hand, answers known by hand.

Cao Lộc's town has an old cluster (flagged for age), a cluster repaired four times (flagged for repairs) and a
bulletin board down three days of March (flagged for availability); Đình Lập's town has a cluster repaired three
times (not flagged: the rule is *more than* three). Each case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.health.models import StateChange
from monitor.i18n import LOCAL_ZONE
from monitor.inventory.models import Device
from monitor.priority import Priority
from monitor.reports.review import (
    ReplaceReason,
    ReviewPolicy,
    UnitCosts,
    YearlyReview,
    load_unit_costs,
    yearly_review,
)
from monitor.reports.review_export import YearlyReviewPublic, render_review, review_dict
from monitor.reports.spans import fold_changes
from monitor.tickets import service
from monitor.tickets.choices import ProblemScope
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import InspectionScheduleCreate, TicketCreate
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

CAO_LOC, DINH_LAP = "183", "189"
TOWN, DINH_LAP_TOWN = "06187", "06613"  # Thị trấn Cao Lộc, Thị trấn Đình Lập
FIRST, LAST = date(2026, 3, 1), date(2026, 3, 31)
NOW = datetime(2026, 4, 10, 9, 0, tzinfo=LOCAL_ZONE).astimezone(UTC)
POLICY = TicketPolicy()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "report-costs.yaml"


def local(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=LOCAL_ZONE).astimezone(UTC)


def add_device(
    session: Session, code: str, kind: str, commune: str, installed_on: date | None, *, active: bool = True
) -> int:
    device = Device(
        code=code,
        name=f"Thiết bị {code}",
        kind=kind,
        commune_code=commune,
        profile="vietloa-ip200-http",
        protocol="http",
        installed_on=installed_on,
        active=active,
        created_at=datetime(2026, 1, 1, tzinfo=LOCAL_ZONE).astimezone(UTC),
    )
    session.add(device)
    session.flush()
    assert device.id is not None
    return device.id


def change(session: Session, device_id: int, old: str, new: str, at: datetime) -> None:
    session.add(StateChange(device_id=device_id, old_state=old, new_state=new, at=at, reason="test"))


def repair(
    session: Session, device: str | None, *, day: int, month: int = 3, costs: tuple[int, int, list[str]] | None = None
) -> str:
    """A manual corrective ticket about `device` (None: the Cao Lộc town itself), resolved the same day."""
    data = TicketCreate(
        title="Cụm loa im lặng", device_code=device, commune_code=None if device else TOWN, priority=Priority.P2
    )
    code = service.create_manual_ticket(data, actor=None, session=session, now=local(day, 8, month), policy=POLICY).code
    service.transition(code, "resolve", actor=None, session=session, now=local(day, 15, month), policy=POLICY)
    if costs is not None:
        parts, labour, names = costs
        service.record_costs(code, parts, labour, names, actor=None, session=session, now=local(day, 16, month))
    return code


def schedule(session: Session, district: str) -> list[str]:
    """A cluster inspection per device of `district`, due 15 March, opened on 20 February."""
    data = InspectionScheduleCreate(
        name="Kiểm tra định kỳ cụm loa",
        district_code=district,
        device_kind="radio_cluster",
        per=ProblemScope.DEVICE,
        every_months=12,
        first_due_on=date(2026, 3, 15),
        lead_days=23,
    )
    service.create_schedule(data, session=session, now=local(1, 8, 2))
    opened = service.open_planned_tickets(date(2026, 2, 20), session=session, policy=POLICY, now=local(20, 8, 2))
    return [ticket.code for ticket in sorted(opened, key=lambda t: t.scope_code)]


@pytest.fixture
def fleet(session: Session) -> Session:
    old = add_device(session, "06187-CL01", "radio_cluster", TOWN, date(2016, 1, 1))
    often = add_device(session, "06187-CL02", "radio_cluster", TOWN, date(2024, 1, 1))
    board = add_device(session, "06187-BB1", "bulletin_board", TOWN, date(2024, 1, 1))
    far = add_device(session, "06613-CL01", "radio_cluster", DINH_LAP_TOWN, date(2025, 6, 1))
    add_device(session, "06187-CL04", "radio_cluster", TOWN, date(2015, 1, 1), active=False)  # retired
    for device in (old, often, board, far):
        change(session, device, "unknown", "up", local(1))
    change(session, board, "up", "down", local(10))
    change(session, board, "down", "up", local(13))
    session.flush()
    fold_changes(session, NOW)

    repair(session, "06187-CL02", day=2, costs=(650_000, 200_000, ["Bộ nguồn 12V"]))
    repair(session, "06187-CL02", day=5, costs=(1_070_000, 300_000, ["Bộ nguồn 12V", "Loa nén 30W"]))
    repair(session, "06187-CL02", day=9)
    repair(session, "06187-CL02", day=20)
    repair(session, None, day=21, costs=(0, 100_000, []))  # the whole commune: costs, no device
    repair(session, "06613-CL01", day=3, costs=(980_000, 500_000, ["Mô-đun 4G"]))
    twice = repair(session, "06613-CL01", day=11)  # fixed, back, fixed again: two repairs, one ticket
    service.transition(twice, "reopen", actor=None, session=session, now=local(12, 8), policy=POLICY)
    service.transition(twice, "resolve", actor=None, session=session, now=local(12, 10), policy=POLICY)
    repair(session, "06613-CL01", day=2, month=4, costs=(5_000_000, 0, ["Bộ khuếch đại 60W"]))  # after the period

    on_time, late = schedule(session, CAO_LOC)  # CL01 inspected on 10 March, CL02 on 20 March (due 15 March)
    service.transition(on_time, "start", actor=None, session=session, now=local(10, 8), policy=POLICY)
    service.transition(on_time, "resolve", actor=None, session=session, now=local(10, 11), policy=POLICY)
    service.transition(late, "resolve", actor=None, session=session, now=local(20, 11), policy=POLICY)
    schedule(session, DINH_LAP)  # never done: open past its due day
    add_device(session, "06187-CL03", "radio_cluster", TOWN, date(2026, 4, 2))  # installed after the period
    session.commit()
    return session


def review(session: Session, districts: list[str] | None = None, policy: ReviewPolicy | None = None) -> YearlyReview:
    return yearly_review(session, FIRST, LAST, now=NOW, districts=districts, policy=policy or ReviewPolicy())


def test_each_reason_flags_a_device_and_a_sound_device_is_not_flagged(fleet: Session) -> None:
    result = review(fleet)
    devices = {d.code: d for c in result.communes for d in c.devices}
    assert set(devices) == {"06187-CL01", "06187-CL02", "06187-BB1", "06613-CL01"}  # installed, active
    assert devices["06187-CL01"].reasons == (ReplaceReason.AGE,)
    assert devices["06187-CL01"].age_years == pytest.approx(10.25, abs=0.01)
    assert devices["06187-CL02"].reasons == (ReplaceReason.REPAIRS,)
    assert (devices["06187-CL02"].repairs, devices["06187-CL02"].cost_vnd) == (4, 2_220_000)
    board = devices["06187-BB1"]
    assert board.reasons == (ReplaceReason.AVAILABILITY,)
    assert board.availability == pytest.approx(28 / 31)
    assert (board.outages, board.down_s) == (1, 3 * 86_400)
    sound = devices["06613-CL01"]
    assert (sound.reasons, sound.repairs, sound.cost_vnd, sound.availability) == ((), 3, 1_480_000, 1.0)
    assert [d.code for d in result.flagged_devices] == ["06187-BB1", "06187-CL01", "06187-CL02"]
    lenient = review(fleet, policy=ReviewPolicy(replace_after_years=11, replace_after_repairs=4))
    assert [d.code for d in lenient.flagged_devices] == ["06187-BB1"]


def test_a_device_that_came_back_by_itself_was_not_repaired(fleet: Session) -> None:
    from monitor.tickets.lifecycle import ProblemReport

    report = ProblemReport(
        scope=ProblemScope.DEVICE,
        scope_code="06187-BB1",
        kind="offline",
        title="Mất kết nối: bảng tin",
        device_id=fleet.exec(select(Device.id).where(Device.code == "06187-BB1")).one(),
        commune_code=TOWN,
        priority=Priority.P2,
        occurred_at=local(10),
    )
    ticket = service.open_or_update_ticket(report, session=fleet, now=local(10, 1), policy=POLICY).ticket
    service.resolve_problem(ticket.problem_key, session=fleet, recovered_at=local(13), policy=POLICY)
    fleet.commit()
    board = next(d for c in review(fleet).communes for d in c.devices if d.code == "06187-BB1")
    assert board.repairs == 0 and board.outages == 1


def test_communes_carry_their_systems_and_figures_in_district_order(fleet: Session) -> None:
    result = review(fleet)
    assert len(result.communes) == 200
    assert [c.district_code for c in result.communes] == sorted(c.district_code for c in result.communes)
    town = next(c for c in result.communes if c.code == TOWN)
    assert (town.district_code, town.district_name) == (CAO_LOC, "Huyện Cao Lộc")
    assert (len(town.devices), town.outages, town.repairs) == (3, 1, 4)
    assert town.cost_vnd == 2_320_000  # the commune's own ticket too
    assert town.availability == pytest.approx((3 * 31 - 3) / (3 * 31))
    assert [d.code for d in town.flagged] == ["06187-BB1", "06187-CL01", "06187-CL02"]
    empty = next(c for c in result.communes if not c.devices)
    assert (empty.availability, empty.systems, empty.has_radio, empty.legacy) == (None, [], False, False)


def test_broadcast_systems_say_radio_ip_and_legacy(session: Session) -> None:
    from monitor.inventory.models import BroadcastSystem

    session.add(BroadcastSystem(commune_code=TOWN, technology="ip", condition="good", installed_year=2022))
    session.add(BroadcastSystem(commune_code=TOWN, technology="fm", condition="broken", installed_year=2005))
    session.add(BroadcastSystem(commune_code=DINH_LAP_TOWN, technology="wired", condition="degraded"))
    session.commit()
    communes = {c.code: c for c in review(session).communes}
    town, far = communes[TOWN], communes[DINH_LAP_TOWN]
    assert town.systems == [("ip", "good", 2022), ("fm", "broken", 2005)]
    assert (town.has_radio, town.ip_based, town.legacy) == (True, True, True)
    assert (far.has_radio, far.ip_based, far.legacy) == (True, False, True)


def test_costs_by_district_and_kind_and_the_parts_most_replaced(fleet: Session) -> None:
    result = review(fleet)
    districts = {row.key: row for row in result.costs_by_district}
    assert len(districts) == 11 and districts["180"].tickets == 0  # every district, with zeros
    assert (districts[CAO_LOC].tickets, districts[CAO_LOC].parts_vnd, districts[CAO_LOC].labour_vnd) == (
        5,
        1_720_000,
        600_000,
    )
    assert (districts[DINH_LAP].tickets, districts[DINH_LAP].total_vnd) == (2, 1_480_000)  # April's is next period
    kinds = [(row.key, row.tickets, row.parts_vnd, row.labour_vnd) for row in result.costs_by_kind]
    assert kinds == [("radio_cluster", 6, 2_700_000, 1_000_000), ("other", 1, 0, 100_000)]
    total = result.costs_total
    assert (total.tickets, total.total_vnd) == (7, 3_800_000)
    assert [(p.name, p.count) for p in result.parts] == [("Bộ nguồn 12V", 2), ("Loa nén 30W", 1), ("Mô-đun 4G", 1)]


def test_planned_work_done_on_time_late_and_overdue(fleet: Session) -> None:
    result = review(fleet)
    rows = {row.key: row for row in result.maintenance}
    cao_loc, dinh_lap = rows[CAO_LOC], rows[DINH_LAP]
    assert (cao_loc.scheduled, cao_loc.done, cao_loc.done_on_time, cao_loc.open_overdue) == (2, 2, 1, 0)
    assert (dinh_lap.scheduled, dinh_lap.done, dinh_lap.done_on_time, dinh_lap.open_overdue) == (1, 0, 0, 1)
    total = result.maintenance_total
    assert (total.scheduled, total.done, total.done_on_time, total.open_overdue) == (3, 2, 1, 1)
    february = yearly_review(
        fleet, date(2026, 2, 1), date(2026, 2, 28), now=NOW, districts=None, policy=ReviewPolicy()
    ).maintenance_total
    assert february.scheduled == 0  # opened in February, due in March
    # overdue as of `now`: on 14 March the inspection due on the 15th was not late yet
    before = yearly_review(fleet, FIRST, LAST, now=local(14, 12), districts=None, policy=ReviewPolicy())
    assert before.maintenance_total.open_overdue == 0


def test_the_estimate_line_by_line(fleet: Session) -> None:
    result = review(fleet)
    lines = {line.key: (line.quantity, line.unit_vnd, line.amount_vnd) for line in result.estimate}
    assert list(lines) == [
        "inspection:radio_cluster",
        "inspection:bulletin_board",
        "repairs:radio_cluster",
        "repairs:bulletin_board",
        "replacement:radio_cluster",
        "replacement:bulletin_board",
    ]
    assert lines["inspection:radio_cluster"] == (3, 400_000, 1_200_000)  # 3 clusters x once a year
    assert lines["inspection:bulletin_board"] == (4, 800_000, 3_200_000)  # 1 board x each quarter
    # 7 repairs over 3 clusters, for 3 clusters next year; 3,700,000 đồng over 6 repair tickets
    assert lines["repairs:radio_cluster"] == (7, 616_667, 7 * 616_667)
    assert lines["repairs:bulletin_board"] == (0, 1_500_000, 0)  # nothing costed: the fallback unit
    assert lines["replacement:radio_cluster"] == (2, 25_000_000, 50_000_000)  # too old, too often repaired
    assert lines["replacement:bulletin_board"] == (1, 120_000_000, 120_000_000)
    assert result.estimate_total_vnd == 1_200_000 + 3_200_000 + 7 * 616_667 + 50_000_000 + 120_000_000
    assert all(line.label_vi and line.label_en for line in result.estimate)
    costs = UnitCosts(
        inspection_vnd={"radio_cluster": 1}, replacement_vnd={}, inspections_per_year={"radio_cluster": 2}
    )
    cheap = {line.key: line.amount_vnd for line in review(fleet, policy=ReviewPolicy(costs=costs)).estimate}
    assert (cheap["inspection:radio_cluster"], cheap["inspection:bulletin_board"]) == (6, 0)


def test_a_district_review_holds_its_district_alone(fleet: Session) -> None:
    result = review(fleet, [DINH_LAP])
    assert {c.district_code for c in result.communes} == {DINH_LAP}
    assert [d.code for c in result.communes for d in c.devices] == ["06613-CL01"]
    assert [row.key for row in result.costs_by_district] == [DINH_LAP]
    assert (result.costs_total.tickets, result.costs_total.total_vnd) == (2, 1_480_000)
    assert [p.name for p in result.parts] == ["Mô-đun 4G"]
    assert [row.key for row in result.maintenance] == [DINH_LAP] and result.maintenance_total.open_overdue == 1
    assert result.flagged_devices == []
    assert [line.key for line in result.estimate] == [
        "inspection:radio_cluster",
        "repairs:radio_cluster",
        "replacement:radio_cluster",
    ]
    body = review_dict(result, NOW)
    assert {c["district_code"] for c in body["communes"]} == {DINH_LAP}
    YearlyReviewPublic.model_validate(body)


def test_the_workbook_has_a_sheet_per_table_with_vietnamese_headers(fleet: Session) -> None:
    book = load_workbook(io.BytesIO(render_review(review(fleet), "xlsx", NOW)))
    assert book.sheetnames == [
        "Xã",
        "Đề xuất thay thế",
        "Bảo trì định kỳ",
        "Chi phí sửa chữa",
        "Vật tư thay thế",
        "Dự toán",
    ]
    flagged = [row for row in book["Đề xuất thay thế"].iter_rows(values_only=True)]
    assert "01/03/2026 – 31/03/2026" in flagged[0][0]
    header = flagged[4]
    assert header[:3] == ("Huyện/khu vực", "Xã", "Mã thiết bị")
    old = next(row for row in flagged[5:] if row[2] == "06187-CL01")
    assert old[header.index("Lý do đề xuất thay thế")] == "Quá niên hạn sử dụng"
    assert old[header.index("Ngày lắp đặt")].date() == date(2016, 1, 1)
    cell = book["Đề xuất thay thế"].cell(row=1 + flagged.index(old), column=1 + header.index("Ngày lắp đặt"))
    assert cell.number_format == "dd/mm/yyyy"
    estimate = [row for row in book["Dự toán"].iter_rows(values_only=True)]
    assert estimate[4] == ("Hạng mục", "Số lượng", "Đơn giá (đồng)", "Thành tiền (đồng)")
    assert estimate[-1][0] == "Tổng cộng" and estimate[-1][3] == review(fleet).estimate_total_vnd
    english = load_workbook(io.BytesIO(render_review(review(fleet), "xlsx", NOW, "en")))
    assert english.sheetnames[-1] == "Estimate"


# --- unit costs --------------------------------------------------------------------------------


def test_the_example_file_holds_the_defaults() -> None:
    assert load_unit_costs(EXAMPLE) == UnitCosts() == load_unit_costs(None)
    assert UnitCosts().replacement_vnd["bulletin_board"] == 120_000_000


def test_a_partial_file_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text("inspection_vnd:\n  radio_cluster: 350000\nrepair_fallback_vnd: 2000000\n", encoding="utf-8")
    costs = load_unit_costs(path)
    assert costs.inspection_vnd["radio_cluster"] == 350_000 and costs.inspection_vnd["bulletin_board"] == 800_000
    assert costs.repair_fallback_vnd == 2_000_000 and costs.replacement_vnd == UnitCosts().replacement_vnd


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("inspection_cost: {}\n", "inspection_cost"),
        ("inspection_vnd:\n  loudspeaker: 1\n", "inspection_vnd.loudspeaker"),
        ("replacement_vnd:\n  gateway: -5\n", "replacement_vnd.gateway"),
        ("replacement_vnd:\n  gateway: 1.5\n", "replacement_vnd.gateway"),
        ("repair_fallback_vnd: lots\n", "repair_fallback_vnd"),
        ("inspections_per_year: 4\n", "inspections_per_year"),
        ("- a list\n", "expected a mapping"),
        ("inspection_vnd: [\n", "costs.yaml"),
    ],
)
def test_a_bad_costs_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_unit_costs(path)
    assert str(path) in str(caught.value) and named in str(caught.value)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_unit_costs(tmp_path / "missing.yaml")


def test_the_policy_comes_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text("repair_fallback_vnd: 900000\n", encoding="utf-8")
    settings = load_settings(
        report_replace_after_years=10, report_replace_below_availability=0.9, report_costs_file=path
    )
    policy = ReviewPolicy.from_settings(settings)
    assert (policy.replace_after_years, policy.replace_after_repairs, policy.replace_below_availability) == (10, 3, 0.9)
    assert policy.costs.repair_fallback_vnd == 900_000
    assert ReviewPolicy.from_settings(load_settings()) == ReviewPolicy()


# --- the API and the CLI -----------------------------------------------------------------------


def _client(engine: Engine, username: str) -> Iterator[TestClient]:
    settings = load_settings(database_url=engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        client.headers.update(login(client, username))
        yield client


@pytest.fixture(scope="module")
def admin(demo_cast: Engine) -> Iterator[TestClient]:
    yield from _client(demo_cast, "admin")


@pytest.fixture(scope="module")
def caoloc(demo_cast: Engine) -> Iterator[TestClient]:
    yield from _client(demo_cast, "caoloc")


PERIOD = {"from": "2026-01-01", "to": "2026-12-31"}


def test_the_api_answers_the_province_and_an_officer_their_district_alone(
    admin: TestClient, caoloc: TestClient
) -> None:
    every = admin.get("/api/v1/reports/review", params=PERIOD)
    assert every.status_code == 200, every.text
    body = YearlyReviewPublic.model_validate(every.json())
    assert len(body.communes) == 200 and body.devices > 1000
    assert len(body.costs_by_district) == 11 and body.estimate_total_vnd > 0
    mine = caoloc.get("/api/v1/reports/review", params=PERIOD)
    assert mine.status_code == 200, mine.text
    assert {c["district_code"] for c in mine.json()["communes"]} == {CAO_LOC}
    assert [row["key"] for row in mine.json()["maintenance"]] == [CAO_LOC]
    assert caoloc.get("/api/v1/reports/review", params={**PERIOD, "district": DINH_LAP}).status_code == 404
    narrowed = admin.get("/api/v1/reports/review", params={**PERIOD, "district": DINH_LAP})
    assert {c["district_code"] for c in narrowed.json()["communes"]} == {DINH_LAP}
    assert admin.get("/api/v1/reports/review", params={"from": "2026-03-05", "to": "2026-03-01"}).status_code == 422


def test_the_api_gives_the_workbook_as_a_file(caoloc: TestClient) -> None:
    response = caoloc.get("/api/v1/reports/review", params={**PERIOD, "format": "xlsx"})
    assert response.status_code == 200
    assert 'filename="review-2026-01-01-2026-12-31.xlsx"' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    communes = [row for row in book["Xã"].iter_rows(values_only=True)]
    assert communes[4][:4] == ("Mã huyện/khu vực", "Huyện/khu vực", "Mã xã", "Tên xã")
    assert {row[0] for row in communes[5:]} == {CAO_LOC}


def test_the_cli_writes_json_and_xlsx(demo_cast: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DATABASE_URL", demo_cast.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    period = ["--from", PERIOD["from"], "--to", PERIOD["to"]]
    result = CliRunner().invoke(app, ["report", "review", *period, "--district", DINH_LAP, "--format", "json"])
    assert result.exit_code == 0, result.output
    body = YearlyReviewPublic.model_validate_json(result.stdout)
    assert {c.district_code for c in body.communes} == {DINH_LAP}
    output = tmp_path / "review.xlsx"
    written = CliRunner().invoke(app, ["report", "review", *period, "--format", "xlsx", "--output", str(output)])
    assert written.exit_code == 0, written.output
    assert load_workbook(output).sheetnames[0] == "Xã"
    assert CliRunner().invoke(app, ["report", "review", *period, "--format", "xlsx"]).exit_code == 2
    assert CliRunner().invoke(app, ["report", "review", *period, "--format", "csv"]).exit_code == 2
    bad = tmp_path / "costs.yaml"
    bad.write_text("inspection_vnd:\n  loudspeaker: 1\n", encoding="utf-8")
    monkeypatch.setenv("MONITOR_REPORT_COSTS_FILE", str(bad))
    refused = CliRunner().invoke(app, ["report", "review", *period])
    assert refused.exit_code == 2 and "loudspeaker" in refused.output


def test_nothing_in_the_period_gives_empty_tables_not_errors(session: Session) -> None:
    result = review(session)
    assert result.estimate == [] and result.estimate_total_vnd == 0 and result.parts == []
    assert result.costs_total.tickets == 0 and result.maintenance_total.scheduled == 0
    assert load_workbook(io.BytesIO(render_review(result, "xlsx", NOW - timedelta(days=1)))).sheetnames[0] == "Xã"
