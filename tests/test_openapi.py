"""The OpenAPI document tells the truth (issue 10, §4): problems documented as answered, rules in the schema."""

from __future__ import annotations

from fastapi.testclient import TestClient

from monitor.config import Settings, load_settings
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET


def _app(tmp_path):  # type: ignore[no-untyped-def]
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/x.db", secret_key=TEST_SECRET, data_dir=tmp_path)
    return create_app(settings)


def test_every_error_is_a_documented_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = _app(tmp_path).openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert {"type", "title", "status", "detail", "request_id"} <= set(
        schema["components"]["schemas"]["Problem"]["properties"]
    )
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert list(answer["content"]) == ["application/problem+json"], (method, path, status)
            assert {"422", "500", "503"} <= set(operation["responses"]), (method, path)
    channel = schema["paths"]["/api/v1/notifications/channels/{channel_id}"]
    assert {"401", "403", "404"} <= set(channel["get"]["responses"])
    assert {"408", "413", "409"} <= set(channel["patch"]["responses"])


def test_rules_of_the_validators_are_in_the_schema(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schemas = _app(tmp_path).openapi()["components"]["schemas"]
    assert [a["required"] for a in schemas["TicketCreate"]["anyOf"]] == [["commune_code"], ["device_code"]]
    assert [a["required"] for a in schemas["WindowCreate"]["anyOf"]] == [["ends_at"], ["cron", "duration_s"]]
    kinds = [alternative["properties"]["kind"]["const"] for alternative in schemas["ChannelCreate"]["oneOf"]]
    assert kinds == ["webhook", "email", "telegram", "zalo"]


def test_a_method_a_path_does_not_take_lists_every_method_of_the_path(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        answer = client.put("/api/v1/notifications/channels/1")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "DELETE, GET, PATCH"
    # a concrete path is its own resource, not the templated one that also matches it (/tickets/{code}: GET)
    with TestClient(create_app(sqlite_settings)) as client:
        bulk = client.options("/api/v1/tickets/bulk")
    assert bulk.status_code == 405 and bulk.headers["allow"] == "POST"


def test_the_api_documentation_is_served_from_the_package_with_nothing_from_another_host(tmp_path) -> None:
    import re

    from fastapi.testclient import TestClient

    from monitor.config import load_settings
    from monitor.web.app import create_app
    from tests.conftest import TEST_SECRET

    settings = load_settings(database_url=f"sqlite:///{tmp_path}/m.db", secret_key=TEST_SECRET)
    client = TestClient(create_app(settings))
    page = client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/static/") for link in links), links
    for link in links:
        assert client.get(link).status_code == 200, link
    assert client.get("/redoc").status_code == 404  # ReDoc would load its script from a CDN
