"""The notifications API on SQLite and PostgreSQL: channels for administrators only, secrets never shown,
deliveries by district, test messages to real peers on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.alerts.models import NotificationChannel
from monitor.alerts.notify import enqueue_many
from monitor.config import load_settings
from monitor.db import make_engine, session_scope
from monitor.inventory.units import init_province, load_units
from monitor.web.api import notifications
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, _fresh_database_url, _settings_for, login
from tests.peers import free_port
from tests.test_notify_support import (
    ADDRESS,
    BOT_TOKEN,
    CAO_LOC,
    DINH_LAP,
    DINH_LAP_TOWN,
    T0,
    WEBHOOK_SECRET,
    add_people,
    event,
    smtp_peer,
)

SMTP_SECRET = "mail-password-never-shown"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database of each backend with the province and the cast (with passwords, addresses, chats)."""
    tmp = tmp_path_factory.mktemp("notify-api")
    engine = make_engine(_settings_for(_fresh_database_url(request, request.param, tmp), tmp))
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
    with Session(engine) as session:
        add_people(session, with_passwords=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app_client(api_engine: Engine) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=api_engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    app = create_app(settings, api_engine)
    app.include_router(notifications.router)  # what app.py will do
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(app_client: TestClient) -> dict[str, dict[str, str]]:
    """Bearer headers of the cast; the session cookies that logging in set are dropped."""
    found = {name: login(app_client, name) for name in ("admin", "lanhdao", "caoloc", "dinhlap", "kythuat")}
    app_client.cookies.clear()
    return found


class Api:
    """The client acting as one user of the cast."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.client, method)
        return lambda url, **kw: call(f"/api/v1/notifications{url}", headers=self.headers, **kw)


@pytest.fixture
def as_user(app_client: TestClient, tokens: dict[str, dict[str, str]]) -> Any:
    return lambda name: Api(app_client, tokens[name])


def stored(engine: Engine, channel_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        channel = session.get(NotificationChannel, channel_id)
        assert channel is not None
        return dict(channel.config)


# --- channels -----------------------------------------------------------------------------------


def test_an_administrator_manages_channels_and_never_sees_a_secret_again(as_user: Any, api_engine: Engine) -> None:
    admin = as_user("admin")
    created = [
        admin.post(
            "/channels",
            json={
                "name": "Hook Cao Lộc",
                "kind": "webhook",
                "district_code": CAO_LOC,
                "min_priority": "P2",
                "config": {"url": "https://hooks.example.vn/in?token=url-token-1", "secret": WEBHOOK_SECRET},
            },
        ),
        admin.post("/channels", json={"name": "Bot tỉnh", "kind": "telegram", "config": {"bot_token": BOT_TOKEN}}),
        admin.post(
            "/channels",
            json={
                "name": "Thư tỉnh",
                "kind": "email",
                "config": {
                    "smtp_host": "mail.langson.gov.vn",
                    "username": "u",
                    "password": SMTP_SECRET,
                    "from_addr": "g@langson.gov.vn",
                },
            },
        ),
    ]
    assert [r.status_code for r in created] == [201, 201, 201], [r.text for r in created]
    hook = created[0].json()
    assert hook["config"] == {
        "language": "vi",
        "timeout_s": 10.0,
        "url": "https://hooks.example.vn/in?***set***",
        "secret": "***set***",
    }
    assert (hook["kind_label"], hook["district_code"], hook["min_priority"]) == ("Webhook", CAO_LOC, "P2")
    answers = [r.text for r in created]
    answers += [admin.get("/channels").text] + [admin.get(f"/channels/{r.json()['id']}").text for r in created]
    changed = admin.patch(f"/channels/{hook['id']}", json={"config": {"secret": "***set***", "language": "en"}})
    answers.append(changed.text)
    assert changed.status_code == 200 and changed.json()["config"]["language"] == "en"
    assert stored(api_engine, hook["id"])["secret"] == WEBHOOK_SECRET  # the marker kept it
    replaced = admin.patch(f"/channels/{hook['id']}", json={"config": {"secret": "a-brand-new-secret-0042"}})
    answers.append(replaced.text)
    assert stored(api_engine, hook["id"])["secret"] == "a-brand-new-secret-0042"
    for secret in (WEBHOOK_SECRET, BOT_TOKEN, SMTP_SECRET, "url-token-1", "a-brand-new-secret-0042"):
        assert all(secret not in answer for answer in answers), secret
    assert admin.patch(f"/channels/{hook['id']}", json={"name": "Bot tỉnh"}).status_code == 409
    assert admin.patch(f"/channels/{hook['id']}", json={"active": False}).json()["active"] is False
    for response in created:
        assert admin.delete(f"/channels/{response.json()['id']}").status_code == 204
    assert admin.get(f"/channels/{hook['id']}").status_code == 404


def test_a_bad_channel_is_refused_naming_each_field(as_user: Any) -> None:
    admin = as_user("admin")
    refused = admin.post(
        "/channels", json={"name": "x", "kind": "webhook", "config": {"url": "ftp://x", "secret": "short"}}
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"config.url", "config.secret"}
    nowhere = admin.post(
        "/channels",
        json={"name": "y", "kind": "telegram", "district_code": "999", "config": {"bot_token": BOT_TOKEN}},
    )
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "district_code"
    assert admin.post("/channels", json={"name": "z", "kind": "sms", "config": {}}).status_code == 422


@pytest.mark.parametrize("name", ["caoloc", "lanhdao", "kythuat"])
def test_only_administrators_manage_channels(as_user: Any, name: str) -> None:
    admin, other = as_user("admin"), as_user(name)
    channel = admin.post(
        "/channels", json={"name": f"Bot {name}", "kind": "telegram", "config": {"bot_token": BOT_TOKEN}}
    ).json()
    assert other.get("/channels").status_code == 403
    assert other.get(f"/channels/{channel['id']}").status_code == 403
    assert (
        other.post("/channels", json={"name": "n", "kind": "telegram", "config": {"bot_token": BOT_TOKEN}}).status_code
        == 403
    )
    assert other.patch(f"/channels/{channel['id']}", json={"active": False}).status_code == 403
    assert other.post(f"/channels/{channel['id']}/test").status_code == 403
    assert other.delete(f"/channels/{channel['id']}").status_code == 403
    assert admin.delete(f"/channels/{channel['id']}").status_code == 204


def test_anonymous_callers_are_asked_to_sign_in(app_client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    assert app_client.get("/api/v1/notifications/channels").status_code == 401
    assert app_client.get("/api/v1/notifications/deliveries").status_code == 401


# --- deliveries ---------------------------------------------------------------------------------


def test_deliveries_are_listed_by_district_with_their_attempts_and_errors(as_user: Any, api_engine: Engine) -> None:
    admin = as_user("admin")
    channel = admin.post(
        "/channels",
        json={
            "name": "Thư kiểm tra",
            "kind": "email",
            "config": {"smtp_host": "mail.langson.gov.vn", "from_addr": "g@langson.gov.vn"},
        },
    ).json()
    with Session(api_engine) as session:
        made = enqueue_many(
            [event(), event("06613-CL01", district=DINH_LAP, commune=DINH_LAP_TOWN, priority="P2")],
            session=session,
            now=T0,
        )
        failed = next(d for d in made if d.recipient == ADDRESS["dinhlap"])
        failed.status, failed.attempts, failed.last_error = "failed", 5, "SMTP mail.langson.gov.vn:587: 554 refused"
        session.add(failed)
        session.commit()
    query = {"channel": channel["id"]}
    everything = admin.get("/deliveries", params=query).json()
    assert everything["total"] == 4  # Cao Lộc: officer and technician; Đình Lập (a P2): officer and admin
    assert {i["district_code"] for i in everything["items"]} == {CAO_LOC, DINH_LAP}
    assert as_user("lanhdao").get("/deliveries", params=query).json()["total"] == 4
    cao_loc = as_user("caoloc").get("/deliveries", params=query).json()
    assert cao_loc["total"] == 2 and {i["district_code"] for i in cao_loc["items"]} == {CAO_LOC}
    dinh_lap = as_user("dinhlap").get("/deliveries", params={**query, "status": "failed"}).json()
    (item,) = dinh_lap["items"]
    assert (item["recipient"], item["attempts"], item["status_label"]) == (ADDRESS["dinhlap"], 5, "Gửi lỗi")
    assert item["last_error"].endswith("554 refused") and item["problem_key"] == "device:06613-CL01:offline"
    assert (item["channel_name"], item["event_kind"]) == ("Thư kiểm tra", "opened")
    assert as_user("kythuat").get("/deliveries").status_code == 403
    page = admin.get("/deliveries", params={**query, "limit": 2, "offset": 2}).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything["items"][2:4]]
    assert admin.delete(f"/channels/{channel['id']}").status_code == 204


# --- test messages ------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bool, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        good = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest() == self.headers["X-Signature-SHA256"]
        self.received.append((good, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[str]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_a_test_message_goes_out_signed_and_a_failure_says_why(as_user: Any, hook_server: str) -> None:
    admin = as_user("admin")
    good = admin.post(
        "/channels",
        json={"name": "Hook thử", "kind": "webhook", "config": {"url": hook_server, "secret": WEBHOOK_SECRET}},
    ).json()
    answer = admin.post(f"/channels/{good['id']}/test")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sent": True, "recipient": "webhook", "subject": "Thử kênh thông báo «Hook thử»"}
    ((signed, body),) = _Hook.received
    assert signed and body["count"] == 0 and body["subject"] == "Thử kênh thông báo «Hook thử»"
    closed = f"http://127.0.0.1:{free_port()}/hook"
    bad = admin.post(
        "/channels", json={"name": "Hook hỏng", "kind": "webhook", "config": {"url": closed, "secret": WEBHOOK_SECRET}}
    ).json()
    failure = admin.post(f"/channels/{bad['id']}/test")
    assert failure.status_code == 502 and "ConnectError" in failure.json()["detail"]
    for channel in (good, bad):
        admin.delete(f"/channels/{channel['id']}")


def test_a_test_email_goes_to_the_administrators_own_address(as_user: Any) -> None:
    admin = as_user("admin")
    with smtp_peer() as peer:
        config = {"smtp_host": "127.0.0.1", "smtp_port": peer.port, "starttls": False, "from_addr": "g@langson.gov.vn"}
        channel = admin.post("/channels", json={"name": "Thư thử", "kind": "email", "config": config}).json()
        answer = admin.post(f"/channels/{channel['id']}/test", json={})
        other = admin.post(f"/channels/{channel['id']}/test", json={"recipient": "not an address"})
    assert answer.status_code == 200 and answer.json()["recipient"] == ADDRESS["admin"]
    (mail,) = peer.mailbox.to(ADDRESS["admin"])
    assert mail["Subject"] == "Thử kênh thông báo «Thư thử»"
    assert other.status_code == 422
    admin.delete(f"/channels/{channel['id']}")
