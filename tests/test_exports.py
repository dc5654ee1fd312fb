"""CSV and XLSX exports of the ticket queue and the device list, for the offices that live in Excel.

An export holds exactly the rows of its list under the same filters, scoped like it, in Vietnamese; and it
streams: a large export is read in batches as it is sent, never built whole. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.auth.cast import seed_cast
from monitor.config import Settings, load_settings
from monitor.db import make_engine
from monitor.health.models import DeviceHealthRow
from monitor.i18n import format_datetime
from monitor.inventory.models import Device
from monitor.inventory.units import init_province, load_units
from monitor.tickets.choices import TicketStatus
from monitor.tickets.export import ticket_rows
from monitor.tickets.models import Ticket
from monitor.tickets.queries import TicketFilters
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

PEOPLE = ("admin", "caoloc", "dinhlap", "kythuat", "lanhdao")
LOCAL_TIME = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$")
EVERY_STATUS = ["new", "acknowledged", "in_progress", "waiting", "resolved", "closed", "reopened", "planned"]


@pytest.fixture(scope="module")
def app(demo_cast: Engine, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("export-data"),
    )
    return create_app(settings, demo_cast)


@pytest.fixture(scope="module")
def clients(app: FastAPI, demo_cast: Engine) -> Iterator[dict[str, TestClient]]:
    """The cast signed in, and a few tickets in Cao Lộc and Đình Lập in several states."""
    people = {}
    for user in PEOPLE:
        client = TestClient(app)
        client.__enter__()
        client.headers.update(login(client, user))
        people[user] = client
    caoloc, dinhlap = people["caoloc"], people["dinhlap"]
    dinh_lap_commune = dinhlap.get("/api/v1/communes", params={"district": "189", "limit": 1}).json()["items"][0]
    made = []
    for n, (client, commune, device, priority) in enumerate(
        [
            (caoloc, "06190", "06190-CL01", "P1"),
            (caoloc, "06190", None, "P2"),
            (caoloc, "06190", "06190-CL02", "P3"),
            (dinhlap, dinh_lap_commune["code"], None, "P2"),
            (dinhlap, dinh_lap_commune["code"], None, "P4"),
        ]
    ):
        body: dict[str, Any] = {"title": f"Sự cố số {n}: loa không phát", "commune_code": commune, "priority": priority}
        if device:
            body["device_code"] = device
        response = client.post("/api/v1/tickets", json=body)
        assert response.status_code == 201, response.text
        made.append(response.json()["code"])
    tech_id = people["kythuat"].get("/api/v1/auth/me").json()["id"]
    assert caoloc.post(f"/api/v1/tickets/{made[0]}/assign", json={"assignee_id": tech_id}).status_code == 200
    assert caoloc.post(f"/api/v1/tickets/{made[1]}/transitions", json={"action": "resolve"}).status_code == 200
    with Session(demo_cast) as session:  # one device down, for the device list's state filter
        device_id = session.execute(sa.select(Device.id).where(Device.code == "06190-CL01")).scalar_one()
        session.add(DeviceHealthRow(device_id=device_id, state="down", since=datetime(2026, 12, 6, 3, 32, tzinfo=UTC)))
        session.commit()
    yield people
    for client in people.values():
        client.__exit__(None, None, None)


def listed_tickets(client: TestClient, params: dict[str, Any]) -> list[str]:
    """Every ticket code of the list under `params`, paging with its cursor."""
    codes: list[str] = []
    after = None
    while True:
        page = client.get("/api/v1/tickets", params={**params, "limit": 200, **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        codes += [t["code"] for t in page.json()["items"]]
        after = page.json()["next_cursor"]
        if after is None:
            return codes


def listed_devices(client: TestClient, params: dict[str, Any]) -> list[str]:
    codes: list[str] = []
    after = None
    while True:
        page = client.get("/api/v1/devices", params={**params, "limit": 1000, **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        codes += [d["code"] for d in page.json()["items"]]
        after = page.json()["next_after"]
        if after is None:
            return codes


def exported_csv(client: TestClient, path: str, params: dict[str, Any]) -> list[list[str]]:
    """The CSV export's lines (header first), checked to be a file to save, UTF-8 with a BOM."""
    response = client.get(path, params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="[a-z]+-\d{8}-\d{4}\.csv"', disposition), disposition
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def exported_xlsx(client: TestClient, path: str, params: dict[str, Any]) -> list[list[Any]]:
    response = client.get(path, params={**params, "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert response.headers["content-disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return [list(row) for row in book.active.iter_rows(values_only=True)]


TICKET_FILTERS = [
    {},
    {"status": EVERY_STATUS},
    {"status": ["resolved"]},
    {"priority": ["P1", "P2"], "status": EVERY_STATUS},
    {"district": "183", "status": EVERY_STATUS},
    {"commune": "06190", "q": "loa khong phat"},
    {"device": "06190-CL01"},
    {"source": ["manual"], "breached": False},
]


@pytest.mark.parametrize("params", TICKET_FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "-")
@pytest.mark.parametrize("user", ["admin", "caoloc", "dinhlap"])
def test_the_ticket_export_holds_exactly_the_rows_of_the_list_with_the_same_filters(
    clients: dict[str, TestClient], user: str, params: dict[str, Any]
) -> None:
    client = clients[user]
    if user == "dinhlap" and params.get("district") == "183":
        assert client.get("/api/v1/tickets/export", params=params).status_code == 404
        return
    listed = listed_tickets(client, params)
    lines = exported_csv(client, "/api/v1/tickets/export", params)
    assert sorted(line[0] for line in lines[1:]) == sorted(listed)
    xlsx = exported_xlsx(client, "/api/v1/tickets/export", params)
    assert [row[0] for row in xlsx[1:]] == [line[0] for line in lines[1:]]


def test_an_officer_exports_only_their_district_and_another_district_is_a_404(clients: dict[str, TestClient]) -> None:
    caoloc = clients["caoloc"]
    tickets = exported_csv(caoloc, "/api/v1/tickets/export", {"status": EVERY_STATUS})
    assert len(tickets) > 1 and {line[10] for line in tickets[1:]} == {"183"}
    devices = exported_csv(caoloc, "/api/v1/devices/export", {})
    assert len(devices) > 1 and {line[5] for line in devices[1:]} == {"183"}
    everything = exported_csv(clients["admin"], "/api/v1/tickets/export", {"status": EVERY_STATUS})
    assert {line[10] for line in everything[1:]} == {"183", "189"}
    for path in ("/api/v1/tickets/export", "/api/v1/devices/export"):
        for fmt in ("csv", "xlsx"):
            refused = caoloc.get(path, params={"district": "189", "format": fmt})
            assert refused.status_code == 404, path
            assert refused.headers["content-type"] == "application/problem+json"
        assert clients["admin"].get(path, params={"district": "189"}).status_code == 200
    other_commune = clients["dinhlap"].get("/api/v1/communes", params={"limit": 1}).json()["items"][0]["code"]
    assert caoloc.get("/api/v1/devices/export", params={"commune": other_commune}).status_code == 404


def test_the_ticket_export_speaks_vietnamese_with_local_times_and_english_when_asked(
    clients: dict[str, TestClient],
) -> None:
    admin = clients["admin"]
    listed = admin.get("/api/v1/tickets", params={"device": "06190-CL01"}).json()["items"]
    lines = exported_csv(admin, "/api/v1/tickets/export", {"device": "06190-CL01"})
    header, first = lines[0], dict(zip(lines[0], lines[1], strict=True))
    assert header[:4] == ["Mã phiếu", "Tiêu đề", "Trạng thái", "Mức ưu tiên"]
    assert "Hạn khắc phục" in header and "Người phụ trách" in header
    ticket = next(t for t in listed if t["code"] == first["Mã phiếu"])
    assert first["Trạng thái"] == "Mới" and first["Mức ưu tiên"] == "P1 – Khẩn cấp"
    assert first["Nguồn"] == "Báo cáo thủ công" and first["Loại sự cố"] == "Cơ sở báo hỏng"
    assert (
        first["Xã"]
        and first["Huyện/khu vực"] == "Huyện Cao Lộc"
        and first["Người phụ trách"] == "Kỹ thuật viên Cao Lộc"
    )
    assert LOCAL_TIME.match(first["Tạo lúc"])
    assert first["Tạo lúc"] == format_datetime(datetime.fromisoformat(ticket["created_at"]))
    assert first["Hạn khắc phục"] == format_datetime(datetime.fromisoformat(ticket["resolve_due_at"]))
    assert first["Tiếp nhận lúc"] == "" and first["Quá hạn SLA"] == "Không"

    english = exported_csv(admin, "/api/v1/tickets/export", {"device": "06190-CL01", "lang": "en"})
    row = dict(zip(english[0], english[1], strict=True))
    assert english[0][:4] == ["Ticket", "Title", "Status", "Priority"]
    assert (row["Status"], row["Priority"], row["SLA breached"]) == ("New", "P1 – Urgent", "No")

    workbook = exported_xlsx(admin, "/api/v1/tickets/export", {"device": "06190-CL01"})
    assert workbook[0] == header
    created = workbook[1][header.index("Tạo lúc")]
    assert isinstance(created, datetime)  # a real date, shown dd/mm/yyyy hh:mm in local time
    assert created.strftime("%d/%m/%Y %H:%M") == first["Tạo lúc"]


def test_the_device_export_holds_the_rows_of_the_list_with_their_health_in_vietnamese(
    clients: dict[str, TestClient],
) -> None:
    admin = clients["admin"]
    for params in ({}, {"district": "183"}, {"state": "down"}, {"kind": "radio_cluster", "q": "cao loc"}):
        lines = exported_csv(admin, "/api/v1/devices/export", params)
        assert [line[0] for line in lines[1:]] == listed_devices(admin, params), params  # by code, as listed
    down = exported_csv(admin, "/api/v1/devices/export", {"state": "down"})
    row = dict(zip(down[0], down[1], strict=True))
    assert down[0][:3] == ["Mã thiết bị", "Tên", "Loại thiết bị"]
    assert (row["Mã thiết bị"], row["Trạng thái"], row["Từ lúc"]) == ("06190-CL01", "Mất kết nối", "06/12/2026 10:32")
    assert row["Loại thiết bị"] == "Cụm loa truyền thanh" and row["Đang sử dụng"] == "Có"
    workbook = exported_xlsx(admin, "/api/v1/devices/export", {"state": "down", "lang": "en"})
    assert workbook[0][:3] == ["Device", "Name", "Kind"]
    assert workbook[1][workbook[0].index("State")] == "Down"
    since = workbook[1][workbook[0].index("Since")]
    assert since.strftime("%d/%m/%Y %H:%M") == "06/12/2026 10:32"  # local time


def test_assignee_me_is_the_caller_in_the_list_and_the_export(clients: dict[str, TestClient]) -> None:
    tech = clients["kythuat"]
    mine = listed_tickets(tech, {"assignee": "me"})
    tech_id = tech.get("/api/v1/auth/me").json()["id"]
    assert mine and mine == listed_tickets(tech, {"assignee": tech_id})
    exported = exported_csv(tech, "/api/v1/tickets/export", {"assignee": "me"})
    assert [line[0] for line in exported[1:]] == mine
    assert {line[12] for line in exported[1:]} == {"Kỹ thuật viên Cao Lộc"}
    assert listed_tickets(clients["caoloc"], {"assignee": "me"}) == []
    for wrong in ("you", "0", "-1", "2147483648"):
        assert tech.get("/api/v1/tickets", params={"assignee": wrong}).status_code == 422, wrong


def test_export_is_not_read_as_a_ticket_or_device_code(clients: dict[str, TestClient], app: FastAPI) -> None:
    admin = clients["admin"]
    assert admin.get("/api/v1/tickets/export").headers["content-type"].startswith("text/csv")
    assert admin.get("/api/v1/devices/export").headers["content-type"].startswith("text/csv")
    assert admin.get("/api/v1/tickets/export", params={"format": "pdf"}).status_code == 422
    assert TestClient(app).get("/api/v1/tickets/export").status_code == 401


# --- streaming ----------------------------------------------------------------------------------

MANY = 20_000


def _fill(province: Engine) -> Engine:
    """The province with its cast and 20,000 tickets of Cao Lộc, inserted directly (closed, so that no
    open-problem rule is in the way)."""
    with Session(province) as session:
        seed_cast(session=session)
        session.commit()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "code": f"LS-2026-{n:06d}",
            "title": f"Cụm loa số {n} mất kết nối, thôn Bản Lòa, xã Hợp Thành",
            "problem_key": f"device:X{n}:offline",
            "scope": "device",
            "scope_code": f"X{n}",
            "kind": "offline",
            "district_code": "183",
            "priority": "P3",
            "source": "auto",
            "status": "closed",
            "created_at": start + timedelta(minutes=n),
            "sla_started_at": start + timedelta(minutes=n),
            "resolve_due_at": start + timedelta(minutes=n, hours=24),
            "resolved_at": start + timedelta(minutes=n, hours=2),
            "closed_at": start + timedelta(minutes=n, hours=80),
            "updated_at": start,
            "details": {},
            "parts_replaced": [],
        }
        for n in range(1, MANY + 1)
    ]
    with province.begin() as connection:
        connection.execute(sa.insert(Ticket), rows)
    return province


@pytest.fixture
def many_tickets(province: Engine) -> Engine:
    """20,000 tickets, on each backend."""
    return _fill(province)


@pytest.fixture
def many_tickets_sqlite(sqlite_settings: Settings) -> Iterator[Engine]:
    """20,000 tickets on SQLite: what memory a stream takes does not depend on the backend, and tracemalloc
    makes the run slow."""
    engine = make_engine(sqlite_settings)
    with Session(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        session.commit()
    yield _fill(engine)
    engine.dispose()


def test_the_rows_of_an_export_are_read_one_batch_at_a_time_as_they_are_taken(many_tickets: Engine) -> None:
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "tickets" in statement:
            selects.append(statement)

    sa.event.listen(many_tickets, "before_cursor_execute", count)
    try:
        rows = ticket_rows(TicketFilters(statuses=frozenset({TicketStatus.CLOSED})), engine=many_tickets, batch=1000)
        assert selects == []  # nothing is read before the first row is asked for
        first = next(rows)
        assert first[0] == "LS-2026-000001" and len(selects) == 1
        for _ in range(1999):
            next(rows)
        assert len(selects) == 2  # two thousand rows: two batches, no more
        assert sum(1 for _ in rows) == MANY - 2000
        assert len(selects) == MANY // 1000 + 1  # the last, short batch says it is the end
    finally:
        sa.event.remove(many_tickets, "before_cursor_execute", count)


async def _stream(app: FastAPI, path: str, query: str, token: str) -> tuple[int, list[int]]:
    """GET through the ASGI app as a server would: the body's chunks are counted and dropped as they come."""
    sizes: list[int] = []
    status = 0
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", token.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            sizes.append(len(message["body"]))

    await app(scope, receive, send)
    return status, sizes


def _measured(client: TestClient, app: FastAPI, query: str, token: str) -> tuple[int, list[int], int]:
    """Status, body chunk sizes and the peak of memory allocated meanwhile (tracemalloc, every thread)."""
    tracemalloc.start()
    try:
        status, sizes = client.portal.call(_stream, app, "/api/v1/tickets/export", query, token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return status, sizes, peak


def test_a_large_export_streams_in_little_memory(many_tickets_sqlite: Engine) -> None:
    url = many_tickets_sqlite.url.render_as_string(hide_password=False)
    app = create_app(load_settings(database_url=url, secret_key=TEST_SECRET), many_tickets_sqlite)
    with TestClient(app) as client:
        token = login(client, "caoloc")["Authorization"]
        client.portal.call(_stream, app, "/api/v1/tickets/export", "status=closed", token)  # warm caches up
        status, sizes, csv_peak = _measured(client, app, "status=closed&format=csv", token)
        xlsx_status, xlsx_sizes, xlsx_peak = _measured(client, app, "status=closed&format=xlsx", token)
    csv_bytes = sum(sizes)
    assert status == xlsx_status == 200
    assert csv_bytes > 4_000_000 and sum(xlsx_sizes) > 1_000_000  # the 20,000 tickets are all there
    assert len(sizes) >= csv_bytes // (128 * 1024) and max(sizes) <= 128 * 1024  # sent in chunks of ~64 KiB
    assert max(xlsx_sizes) <= 64 * 1024
    # Never held whole: building the CSV would take its bytes and more (its text first), the workbook its
    # uncompressed XML, larger still. Measured on 20,000 tickets: 5.9 MB of CSV with a peak of 3.4 MB (two
    # batches of rows in flight), 1.6 MB of XLSX with a peak of 2.9 MB; the peak follows the batch, not the
    # number of tickets.
    assert csv_peak < csv_bytes * 0.75, (csv_peak, csv_bytes)
    assert xlsx_peak < csv_bytes * 0.75, (xlsx_peak, csv_bytes)
