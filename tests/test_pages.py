"""The pages for people, through the app itself: signing in (form fields `username`, `password`, a CSRF cookie),
the same door as the API (another district's ticket is a 404 page), Vietnamese first with English by cookie or
Accept-Language, the security headers, output escaped, a technician's first page, the queue's filters in the URL.
The browser tests (tests/test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.auth.cast import DEMO_PASSWORD
from monitor.config import load_settings
from monitor.db import session_scope, utcnow
from monitor.inventory.models import Commune
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.models import Ticket
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from monitor.web.app import create_app
from monitor.web.ui.render import choose_language, page_policy
from tests.conftest import TEST_SECRET

CAO_LOC, DINH_LAP = "183", "189"


@pytest.fixture(scope="module")
def app(demo_cast: Engine) -> object:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    return create_app(settings, demo_cast)


@pytest.fixture
def browser(app: object) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:  # type: ignore[arg-type]
        yield client


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD, next_path: str = "/") -> object:
    form = client.get("/login", params={"next": next_path})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token.group(1), "next": next_path}
    )


def _open_ticket(session: Session, commune_code: str, title: str, priority: Priority) -> str:
    """A ticket opened by hand (as a commune's report), its code."""
    ticket = service.create_manual_ticket(
        TicketCreate(title=title, commune_code=commune_code, priority=priority),
        actor=None,
        session=session,
        now=utcnow(),
        policy=TicketPolicy(),
    )
    return ticket.code


@pytest.fixture(scope="module")
def tickets(demo_cast: Engine) -> dict[str, str]:
    """A ticket of Cao Lộc and one of Đình Lập, opened by hand (the demo fleet has none yet)."""
    codes = {}
    with session_scope(demo_cast) as session:
        for district, title in (
            (CAO_LOC, "Loa xã <b>im lặng</b> <script>alert(1)</script>"),
            (DINH_LAP, "Bảng tin tắt"),
        ):
            commune = session.exec(
                select(Commune).where(col(Commune.district_code) == district).order_by(col(Commune.code))
            ).first()
            assert commune is not None
            codes[district] = _open_ticket(session, commune.code, title, Priority.P2)
    return codes


def test_a_page_asks_to_sign_in_first_and_comes_back_after(browser: TestClient) -> None:
    answer = browser.get("/tickets?priority=P2")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/tickets%3Fpriority%3DP2"
    signed = sign_in(browser, "caoloc", next_path="/tickets?priority=P2")
    assert signed.status_code == 303 and signed.headers["location"] == "/tickets?priority=P2"  # type: ignore[attr-defined]
    cookie = signed.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert browser.get("/tickets?priority=P2").status_code == 200


def test_a_wrong_password_shows_the_form_again_and_a_foreign_form_is_refused(browser: TestClient) -> None:
    wrong = sign_in(browser, "caoloc", password="not-the-password")
    assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text  # type: ignore[attr-defined]
    forged = browser.post("/login", data={"username": "caoloc", "password": DEMO_PASSWORD, "csrf_token": "x"})
    assert forged.status_code == 403 and "monitor_session" not in forged.headers.get("set-cookie", "")
    assert sign_in(browser, "caoloc", next_path="https://evil.example/").headers["location"] == "/"  # type: ignore[attr-defined]


def test_the_overview_of_an_officer_holds_their_district_alone(browser: TestClient) -> None:
    sign_in(browser, "caoloc")
    page = browser.get("/")
    assert page.status_code == 200
    assert "Huyện Cao Lộc" in page.text and "Huyện Đình Lập" not in page.text
    headers = page.headers
    assert (
        "script-src 'self'" in headers["content-security-policy"]
        and "unsafe-inline" not in headers["content-security-policy"]
    )
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
    assert 'name="csrf-token"' in page.text


def test_another_districts_ticket_is_a_404_page_as_in_the_api(browser: TestClient, tickets: dict[str, str]) -> None:
    sign_in(browser, "caoloc")
    mine = browser.get(f"/tickets/{tickets[CAO_LOC]}")
    assert mine.status_code == 200
    theirs = browser.get(f"/tickets/{tickets[DINH_LAP]}")
    assert theirs.status_code == 404 and theirs.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy trang" in theirs.text and "Bảng tin tắt" not in theirs.text  # nothing of it shown
    assert browser.get(f"/tickets?district={DINH_LAP}").status_code == 404
    unknown = browser.get("/no/such/page")
    assert unknown.status_code == 404 and "Không tìm thấy trang" in unknown.text
    assert browser.get("/api/v1/no-such").headers["content-type"] == "application/problem+json"


def test_text_people_typed_is_shown_as_text(browser: TestClient, tickets: dict[str, str]) -> None:
    sign_in(browser, "caoloc")
    page = browser.get(f"/tickets/{tickets[CAO_LOC]}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    queue = browser.get("/tickets").text
    assert "<b>im lặng</b>" not in queue and "&lt;b&gt;im lặng&lt;/b&gt;" in queue


def test_a_technicians_first_page_is_their_work(browser: TestClient, tickets: dict[str, str]) -> None:
    sign_in(browser, "kythuat")
    home = browser.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/tickets?view=mine"
    work = browser.get("/tickets?view=mine")
    assert "Việc của tôi" in work.text and tickets[CAO_LOC] in work.text  # unassigned in their district
    assert tickets[DINH_LAP] not in work.text


def test_vietnamese_first_english_by_choice(browser: TestClient) -> None:
    sign_in(browser, "lanhdao")
    assert "Tổng quan" in browser.get("/").text
    english = browser.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"})
    assert "Overview" in english.text and english.text.startswith('<!doctype html>\n<html lang="en"')
    switched = browser.get("/lang/en", params={"next": "/tickets"})
    assert switched.status_code == 303 and switched.headers["location"] == "/tickets"
    assert "Repair ticket" in browser.get("/tickets").text and "Filter" in browser.get("/tickets").text
    browser.get("/lang/vi")
    assert "Phiếu sửa chữa" in browser.get("/tickets").text


def test_the_language_is_the_cookie_then_accept_language_then_vietnamese() -> None:
    assert choose_language("en", "vi") == "en"
    assert choose_language(None, "fr-FR,en;q=0.8,vi;q=0.9") == "vi"
    assert choose_language(None, "fr, en;q=0.1") == "en"
    assert choose_language("xx", None) == "vi"


def test_the_queue_keeps_its_filters_in_the_url_and_links_the_export(
    browser: TestClient, tickets: dict[str, str], demo_cast: Engine
) -> None:
    sign_in(browser, "admin")
    page = browser.get("/tickets", params={"q": "bang tin", "priority": "P2"})  # no diacritics: finds "Bảng tin"
    assert page.status_code == 200 and tickets[DINH_LAP] in page.text and tickets[CAO_LOC] not in page.text
    assert "/api/v1/tickets/export?format=xlsx&amp;q=bang+tin&amp;priority=P2" in page.text
    with session_scope(demo_cast) as session:
        assert session.exec(select(Ticket).where(col(Ticket.code) == tickets[DINH_LAP])).one().priority == "P2"


def test_the_map_tile_host_alone_joins_the_image_policy() -> None:
    assert "img-src 'self' data:;" in page_policy(None)
    assert "img-src 'self' data: https://tiles.example.vn;" in page_policy("https://tiles.example.vn/{z}/{x}/{y}.png")


def test_a_plain_form_carries_the_sessions_csrf_token(browser: TestClient) -> None:
    sign_in(browser, "caoloc")
    page = browser.get("/").text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert token is not None and f'name="csrf_token" value="{token.group(1)}"' in page  # the sign-out form
    assert browser.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert browser.get("/").status_code == 200  # still signed in
    out = browser.post("/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser.get("/").status_code == 303


def test_the_training_register_page_holds_the_district_alone(browser: TestClient, app: object) -> None:
    from monitor.i18n import local_today
    from tests.conftest import login

    with TestClient(app) as api:  # type: ignore[arg-type]
        admin = login(api, "admin")
        for district, topic in ((CAO_LOC, "Vận hành cụm loa IP"), (DINH_LAP, "Biên tập tin bài")):
            body = {"held_on": local_today().isoformat(), "district_code": district, "topic": topic, "hours": 8}
            assert api.post("/api/v1/training/sessions", json=body, headers=admin).status_code == 201
    sign_in(browser, "caoloc")
    page = browser.get("/training")
    assert page.status_code == 200 and "Vận hành cụm loa IP" in page.text and "Biên tập tin bài" not in page.text
    assert 'data-api="/api/v1/training/sessions"' in page.text  # an officer records their district's sessions
    sign_in(browser, "kythuat")
    assert 'data-api="/api/v1/training/sessions"' not in browser.get("/training").text


def test_the_queue_shows_more_rows_in_place_without_the_page_around_them(
    browser: TestClient, demo_cast: Engine
) -> None:
    """ "Xem thêm" asks htmx for the next page of rows: the rows alone (not the page's filters, their selects and
    the people they list), each ticket once over both pages."""
    with session_scope(demo_cast) as session:
        commune = session.exec(
            select(Commune).where(col(Commune.district_code).not_in([CAO_LOC, DINH_LAP])).order_by(col(Commune.code))
        ).first()
        assert commune is not None
        made = {_open_ticket(session, commune.code, f"Trang sau {n}", Priority.P4) for n in range(60)}
    sign_in(browser, "admin")
    first = browser.get("/tickets", params={"q": "trang sau"})
    assert first.status_code == 200 and "<select" in first.text
    shown = re.findall(r'<a href="/tickets/([A-Z0-9-]+)" class="title">', first.text)
    assert len(shown) == 50
    more = re.search(r'hx-get="(/tickets\?[^"]+)"', first.text)
    assert more is not None
    rows = browser.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert rows.status_code == 200 and "<html" not in rows.text and "<select" not in rows.text
    shown += re.findall(r'<a href="/tickets/([A-Z0-9-]+)" class="title">', rows.text)
    assert len(shown) == len(set(shown)) == 60 and set(shown) == made
    assert "hx-get" not in rows.text  # the last page: no further "Xem thêm"
