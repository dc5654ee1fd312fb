"""One door for authorization: every route reaches district data through the scoped look-ups of
monitor/web/deps.py, and every list answers a district filter outside one's scope with a 404.

The structural tests walk the routes of the real app, so that a new route cannot forget the door."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.web import deps
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

DOORS = {
    deps.visible_ticket,
    deps.visible_device,
    deps.visible_commune,
    deps.visible_problem,
    deps.visible_window,
    deps.visible_training,
    deps.visible_submission,
}
# Path parameters that name no district's thing, and why.
NOT_DISTRICT_DATA = {
    "device_code": "a device's own heartbeat, authenticated by the device's token",
    "channel_id": "notification channels: administrators only, province-wide",
    "attachment_id": "always beside {code}, a ticket looked up through the door",
    "year": "a year; the rows are filtered by the caller's scope",
    "language": "the pages' language (/lang/{language}), not data",
    "user_id": "accounts: administrators only, province-wide",
}
LISTS = [
    "/api/v1/tickets",
    "/api/v1/problems",
    "/api/v1/devices",
    "/api/v1/communes",
    "/api/v1/training/sessions",
]


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _routes() -> list[APIRoute]:
    """Every API route of the real app, with its prefix (FastAPI keeps included routers apart)."""
    settings = load_settings(database_url="sqlite:///:memory:", secret_key=TEST_SECRET)
    routes = [c.original_route for c in iter_route_contexts(create_app(settings).routes)]
    found = [r for r in routes if isinstance(r, APIRoute)]
    assert len(found) > 30, "the app's routes were not found"
    return found


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_every_route_with_a_district_thing_in_its_path_looks_it_up_through_the_door(route: APIRoute) -> None:
    params = {p.name for p in route.dependant.path_params} | {
        p.name for sub in route.dependant.dependencies for p in sub.path_params
    }
    own = {p.name for p in route.dependant.path_params}  # declared by the route itself, not by a door
    assert not (own - set(NOT_DISTRICT_DATA)), f"{route.path} takes {own} itself: use a Visible* dependency"
    if params - set(NOT_DISTRICT_DATA):
        assert DOORS & set(_calls(route.dependant)), f"{route.path} reaches {params} without a scoped look-up"


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_no_route_takes_a_district_filter_of_its_own(route: APIRoute) -> None:
    assert "district" not in {p.name for p in route.dependant.query_params}, (
        f"{route.path}: take the district filter through ScopedList"
    )


@pytest.fixture(scope="module")
def client(demo_cast: Engine) -> Iterator[TestClient]:
    url = demo_cast.url.render_as_string(hide_password=False)
    settings = load_settings(database_url=url, secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast)) as client:
        yield client


@pytest.mark.parametrize("path", LISTS)
def test_a_district_filter_outside_ones_scope_is_a_404_on_every_list_like_an_unknown_district(
    client: TestClient, path: str
) -> None:
    officer = login(client, "caoloc")  # Cao Lộc, 183
    assert client.get(path, params={"district": "183"}, headers=officer).status_code == 200
    other = client.get(path, params={"district": "189"}, headers=officer)  # Đình Lập
    unknown = client.get(path, params={"district": "999"}, headers=officer)
    assert other.status_code == unknown.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    admin = login(client, "admin")
    assert client.get(path, params={"district": "189"}, headers=admin).status_code == 200
    assert client.get(path, params={"district": "999"}, headers=admin).status_code == 404
