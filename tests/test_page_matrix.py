"""Every page x every role x own and other district, generated from the app's routes, so that a new page cannot
be forgotten: signed out it sends to /login, signed in it answers (never a server error), a role it is not for
gets 403, and another district's ticket or device is a 404 for a district's people, exactly as in the API
(tests/test_authorization_door.py walks the API's routes the same way)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.config import load_settings
from monitor.db import session_scope, utcnow
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.test_pages import sign_in

ROLES = ("admin", "lanhdao", "caoloc", "dinhlap", "kythuat")
DISTRICT_OF = {"caoloc": "183", "kythuat": "183", "dinhlap": "189"}
#: Pages that are for some roles only (the others get 403).
ONLY_FOR = {"/admin": {"admin"}, "/tickets/new": {"admin", "caoloc", "dinhlap"}}
NOT_PAGES = ("/docs", "/login", "/lang/{language}", "/metrics")  # /metrics: for Prometheus, its own token


@pytest.fixture(scope="module")
def app(demo_cast: Engine) -> object:
    settings = load_settings(
        database_url=demo_cast.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    return create_app(settings, demo_cast)


@pytest.fixture(scope="module")
def things(demo_cast: Engine) -> dict[str, dict[str, str]]:
    """A ticket and a device of Cao Lộc (183) and of Đình Lập (189)."""
    out: dict[str, dict[str, str]] = {}
    with session_scope(demo_cast) as session:
        for district in ("183", "189"):
            commune = session.exec(
                select(Commune).where(col(Commune.district_code) == district).order_by(col(Commune.code))
            ).first()
            assert commune is not None
            device = session.exec(select(Device).where(col(Device.commune_code) == commune.code)).first()
            assert device is not None
            ticket = service.create_manual_ticket(
                TicketCreate(title="Ma trận trang", commune_code=commune.code, priority=Priority.P3),
                actor=None,
                session=session,
                now=utcnow(),
                policy=TicketPolicy(),
            )
            out[district] = {"ticket": ticket.code, "device": device.code}
    return out


def _pages(app: object) -> list[str]:
    every = [c.original_route for c in iter_route_contexts(app.routes)]  # type: ignore[attr-defined]
    routes = [r for r in every if isinstance(r, APIRoute) and not r.include_in_schema]
    pages = sorted({r.path for r in routes if "GET" in r.methods and r.path not in NOT_PAGES})
    assert "/" in pages and "/tickets/{code}" in pages, pages
    return pages


def _fill(path: str, district: str, things: dict[str, dict[str, str]]) -> str:
    if "{code}" in path:
        kind = "ticket" if path.startswith("/tickets/") else "device" if path.startswith("/devices/") else None
        assert kind is not None, f"teach the matrix what {path} names"
        path = path.replace("{code}", things[district][kind])
    assert "{" not in path, f"teach the matrix the parameters of {path}"
    return path


@pytest.fixture(scope="module")
def clients(app: object) -> Iterator[dict[str, TestClient]]:
    signed = {}
    for role in ROLES:
        client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)  # type: ignore[arg-type]
        client.__enter__()
        sign_in(client, role)
        signed[role] = client
    yield signed
    for client in signed.values():
        client.__exit__(None, None, None)


def test_every_page_for_every_role_and_district(
    app: object, clients: dict[str, TestClient], things: dict[str, dict[str, str]]
) -> None:
    checked = 0
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as anonymous:  # type: ignore[arg-type]
        for template in _pages(app):
            for district in ("183", "189"):
                path = _fill(template, district, things)
                assert anonymous.get(path).status_code == 303, f"{path} signed out"
                for role, client in clients.items():
                    answer = client.get(path)
                    checked += 1
                    other = role in DISTRICT_OF and DISTRICT_OF[role] != district and "{" in template
                    if template in ONLY_FOR and role not in ONLY_FOR[template]:
                        expected = {403}
                    elif other:
                        expected = {404}
                    elif template == "/" and role == "kythuat":
                        expected = {303}  # to their work
                    else:
                        expected = {200}
                    assert answer.status_code in expected, (role, path, answer.status_code, answer.text[:300])
                    if answer.status_code == 404:
                        assert things[district]["ticket"] not in answer.text.split("<main>")[-1]
    assert checked >= len(ROLES) * 2 * 10
