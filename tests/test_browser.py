"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real `monitor serve` on loopback.

An officer of Cao Lộc signs in, sees only Cao Lộc, assigns tickets in bulk and exports the queue; a technician on a
360 x 740 phone takes a ticket, comments (a comment holding <script> stays text), attaches a photo and resolves it;
an action taken with no network waits in the browser and is applied once when the network returns; the language
switch; no page wider than the viewport; no request to any host but the service's own. Kept small: one server,
one browser, a handful of pages.
"""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.alerts.models import AlertProblem
from monitor.config import Settings
from monitor.db import make_engine, session_scope, utcnow
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from tests.conftest import login
from tests.peers import stop_process
from tests.test_web_under_abuse import Served, _serve

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")


def _png() -> bytes:
    """A real 2 x 2 PNG, as a phone's camera would send a (much larger) photo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Served]:
    from tests.conftest import _fresh_database_url, _settings_for

    tmp = tmp_path_factory.mktemp("browser")
    settings: Settings = _settings_for(_fresh_database_url(request, "sqlite", tmp), tmp)
    served = _serve(settings, tmp)
    try:
        yield served
    finally:
        stop_process(served.process)


@pytest.fixture(scope="module")
def tickets(served: Served) -> dict[str, list[str]]:
    engine: Engine = make_engine(Settings(database_url=f"sqlite:///{served.database}"))
    made: dict[str, list[str]] = {"183": [], "189": []}
    commune_codes: dict[str, str] = {}
    with session_scope(engine) as session:
        for district, count in (("183", 3), ("189", 1)):
            commune = session.exec(
                select(Commune).where(col(Commune.district_code) == district).order_by(col(Commune.code))
            ).first()
            assert commune is not None
            commune_codes[district] = commune.code
            for n in range(count):
                made[district].append(
                    service.create_manual_ticket(
                        TicketCreate(
                            title=f"Cụm loa im lặng số {n + 1}", commune_code=commune.code, priority=Priority.P2
                        ),
                        actor=None,
                        session=session,
                        now=utcnow(),
                        policy=TicketPolicy(),
                    ).code
                )
        # An active problem of Cao Lộc, as the dispatcher leaves it, for the officer to acknowledge.
        device = session.exec(select(Device).where(col(Device.commune_code) == commune_codes["183"])).first()
        assert device is not None
        session.add(
            AlertProblem(
                key=f"device:{device.code}:offline",
                scope="device",
                scope_code=device.code,
                kind="offline",
                source="health",
                status="active",
                priority="P2",
                device_id=device.id,
                commune_code=device.commune_code,
                district_code="183",
                title=f"Mất kết nối: {device.name}",
                members=[device.code],
                started_at=utcnow(),
                activated_at=utcnow(),
            )
        )
    engine.dispose()
    return made


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A browser context that signs in and checks every page it opens: within the viewport, no foreign request."""

    def __init__(self, browser: Any, base: str, width: int, height: int) -> None:
        self.base, self.width = base, width
        self.context = browser.new_context(  # a phone in Vietnam asks for Vietnamese
            viewport={"width": width, "height": height}, accept_downloads=True, locale="vi-VN"
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def sign_in(self, username: str) -> None:
        self.page.goto(self.base + "/login")
        self.page.fill("#username", username)
        self.page.fill("#password", "demo-password")
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        assert self.page.evaluate("document.documentElement.scrollWidth") <= self.width, (
            f"{path} is wider than the screen"
        )
        return self.page

    def act(self, button: str, where: str, expect: str) -> None:
        """Tap `button` and wait until the page (reloaded by the action) shows `expect` in `where`."""
        self.page.click(button)
        self.page.wait_for_function(
            "([where, text]) => (document.querySelector(where)?.innerText || '').includes(text)",
            arg=[where, expect],
            timeout=10_000,
        )

    def close(self) -> None:
        foreign = [url for url in self.requests if not url.startswith(self.base) and not url.startswith("data:")]
        self.context.close()
        assert not foreign, f"requests left the host: {foreign}"


def test_an_officer_sees_their_district_assigns_in_bulk_and_exports(
    browser: Any, served: Served, tickets: dict[str, list[str]]
) -> None:
    visit = Visit(browser, served.base, 1280, 900)
    visit.sign_in("caoloc")
    page = visit.open("/")
    assert "Huyện Cao Lộc" in page.content() and "Huyện Đình Lập" not in page.content()
    page = visit.open("/tickets")
    for code in tickets["183"][:2]:
        page.check(f'input[name="codes"][value="{code}"]')
    page.select_option('select[name="action"]', "assign")
    page.select_option(
        'select[name="assignee_id"]',
        label=page.locator('select[name="assignee_id"] option', has_text="Kỹ thuật").first.inner_text(),
    )
    page.click("#bulk button[type=submit]")
    page.wait_for_selector("#messages .message", timeout=10_000)
    assert "2/2" in page.inner_text("#messages")
    page = visit.open("/problems")
    page.check('input[name="ids"]')
    page.fill("#ack-note", "Đã cử kỹ thuật viên")
    visit.act("#ack button[type=submit]", "#problems", "Đã cử kỹ thuật viên")
    page = visit.open("/tickets")
    with page.expect_download() as download:
        page.click("text=Excel (XLSX)")
    assert download.value.suggested_filename.endswith(".xlsx")
    assert visit.open(f"/tickets/{tickets['189'][0]}").locator("h1").inner_text() == "Không tìm thấy trang"
    visit.close()
    headers = login(httpx.Client(base_url=served.base), "caoloc")
    for code in tickets["183"][:2]:
        assert httpx.get(f"{served.base}/api/v1/tickets/{code}", headers=headers).json()["assignee_id"] is not None


def test_a_technician_works_a_ticket_on_a_phone_even_offline(
    browser: Any, served: Served, tickets: dict[str, list[str]], tmp_path: Path
) -> None:
    code = tickets["183"][2]
    visit = Visit(browser, served.base, 360, 740)
    visit.sign_in("kythuat")
    assert visit.page.url.endswith("/tickets?view=mine")
    page = visit.open(f"/tickets/{code}")
    visit.act("text=Tôi nhận phiếu này", ".facts", "Kỹ thuật viên")
    visit.act("button[value=acknowledge]", ".badges", "Đã tiếp nhận")
    page.fill("#comment", "<script>alert('x')</script> đã kiểm tra")
    visit.act("text=Gửi bình luận", ".timeline", "<script>alert('x')</script> đã kiểm tra")
    assert not visit.dialogs  # the comment is text, never run
    photo = tmp_path / "hien-truong.png"
    photo.write_bytes(_png())
    page.set_input_files("#photo", str(photo))
    visit.act("text=Gửi ảnh", "main", "hien-truong.png")

    visit.context.set_offline(True)
    page.fill("#comment", "Gửi khi có sóng")
    page.click("text=Gửi bình luận")
    page.wait_for_selector("#outbox:not([hidden])", timeout=5_000)
    assert "Không có mạng" in page.inner_text("#messages")
    # Back online, Chromium fires "online" itself: the page sends what waits, then reloads (dispatching the
    # event from the test as well raced that reload: "execution context was destroyed"). Had the event been
    # missed, the page's 20 s retry sends it: hence the wait longer than that.
    visit.context.set_offline(False)
    page.wait_for_selector("text=Gửi khi có sóng", timeout=30_000)
    page.wait_for_load_state("load")
    page.evaluate("window.monitorOutbox.flush()")  # a second send of anything left must change nothing
    page = visit.open(f"/tickets/{code}")
    visit.act("button[value=start]", ".badges", "Đang xử lý")
    visit.act("button[value=resolve]", ".badges", "Đã khắc phục")
    visit.close()
    headers = login(httpx.Client(base_url=served.base), "kythuat")
    history = httpx.get(f"{served.base}/api/v1/tickets/{code}/history", headers=headers).json()
    assert [e["note"] for e in history if e["kind"] == "comment"].count("Gửi khi có sóng") == 1
    assert httpx.get(f"{served.base}/api/v1/tickets/{code}", headers=headers).json()["status"] == "resolved"


def test_the_language_switch(browser: Any, served: Served) -> None:
    visit = Visit(browser, served.base, 360, 740)
    visit.sign_in("lanhdao")
    page = visit.open("/")
    assert "Tổng quan" in page.content()
    page.click(".me summary")
    page.click("text=English")
    page.wait_for_load_state("networkidle")
    assert "Overview" in page.content() and page.locator("html").get_attribute("lang") == "en"
    visit.close()


def test_weights_within_budget(served: Served) -> None:
    """First load (page, CSS, JS) at most 200 KB; a later page at most 50 KB (its files are cached a year)."""
    with httpx.Client(base_url=served.base) as client:
        client.headers.update(login(client, "caoloc"))
        client.cookies.set("monitor_session", client.headers["Authorization"][7:])
        page = client.get("/")
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        first = len(page.content) + sum(len(client.get(url).content) for url in assets)
        cached = client.get(assets[0])
        assert "immutable" in cached.headers.get("cache-control", "")
    assert first <= 200_000 and len(page.content) <= 50_000, (first, len(page.content))
