"""The Zalo channel against a stand-in of Zalo's HTTP API on loopback, on SQLite and PostgreSQL.

Zalo's servers (openapi.zalo.me, business.openapi.zalo.me, oauth.zaloapp.com) cannot be reached from the
tests, so `ZaloPeer` is a mock speaking their documented contract: OA messages at /v3.0/oa/message/cs and
ZNS at /message/template (header `access_token`, answers `{"error": 0}` or a refusal, -216 for a token it
does not know), and the renewal at /v4/oa/access_token (header `secret_key`, a form), which ROTATES the
refresh token as Zalo does: each one works once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.models import NotificationChannel, NotificationDelivery
from monitor.alerts.notify import DeliveryPolicy, DeliveryReport, deliver_due, enqueue, open_senders
from monitor.alerts.notify.channels import OutgoingMessage
from monitor.alerts.notify.schemas import ChannelUpdate, merge_config, parse_config, public_config
from monitor.alerts.notify.service import send_test, update_channel
from monitor.alerts.notify.zalo import NEW_REFRESH_TOKEN, ZALO_MAX_TEXT
from monitor.auth.models import User
from monitor.config import Settings, load_settings
from monitor.db import make_engine, session_scope
from monitor.errors import InvalidInput
from monitor.inventory.units import init_province, load_units
from monitor.web.api import notifications
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, _fresh_database_url, _settings_for, login
from tests.test_notify_support import T0, add_channel, add_people, event, serve, telegram_peer

APP_ID, APP_SECRET = "4318492011", "zalo-app-secret-0042"
FIRST_REFRESH, FIRST_ACCESS = "refresh-token-0-ABCDEFGH", "access-token-0-ABCDEFGH"
FOLLOWERS = ["2512345678901234567", "2598765432109876543"]
SITE = "https://giamsat.example.vn"
FAST = DeliveryPolicy(backoff=timedelta(seconds=30), max_attempts=3)


# --- a stand-in for Zalo's API ------------------------------------------------------------------


@dataclass
class ZaloPeer:
    """Zalo's OA, ZNS and OAuth endpoints as documented; every request kept, refresh tokens rotating."""

    access_tokens: set[str] = field(default_factory=lambda: {FIRST_ACCESS})
    refresh_token: str = FIRST_REFRESH
    #: Answers given to messages before the normal one (a refusal in the body, an HTTP error).
    refusals: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: How long a renewal takes: long enough for two dispatchers to meet.
    refresh_delay_s: float = 0.3
    messages: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    refreshes: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    issued: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def message(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.messages.append((request.path, dict(request.headers), data))
        token = request.headers.get("access_token", "")
        if token not in self.access_tokens:
            # Zalo's answer to an unknown token, echoing it (a peer may): it must not reach the table.
            return web.json_response({"error": -216, "message": f"Access token {token} is invalid"})
        if self.refusals:
            status, answer = self.refusals.pop(0)
            return web.json_response(answer, status=status)
        return web.json_response({"error": 0, "message": "Success", "data": {"message_id": f"m{len(self.messages)}"}})

    async def renew(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.refreshes.append((dict(request.headers), {k: str(v) for k, v in form.items()}))
        await asyncio.sleep(self.refresh_delay_s)
        if request.headers.get("secret_key") != APP_SECRET or form.get("app_id") != APP_ID:
            return web.json_response({"error": -14002, "error_name": "Invalid app", "error_description": "bad app"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return web.json_response(
                {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_description": "Refresh token is invalid",
                }
            )
        self.issued += 1
        access, self.refresh_token = f"access-token-{self.issued}-NEWNEWNEW", f"refresh-token-{self.issued}-NEWNEW"
        self.access_tokens = {access}  # the old access token dies with its refresh token
        return web.json_response({"access_token": access, "refresh_token": self.refresh_token, "expires_in": "90000"})


@asynccontextmanager
async def zalo_peer(**fields: Any) -> AsyncIterator[ZaloPeer]:
    peer = ZaloPeer(**fields)
    app = web.Application()
    app.router.add_post("/v3.0/oa/message/cs", peer.message)
    app.router.add_post("/message/template", peer.message)
    app.router.add_post("/v4/oa/access_token", peer.renew)
    async with serve(app) as port:
        peer.port = port
        yield peer


def zalo_config(peer: ZaloPeer, **extra: Any) -> dict[str, Any]:
    """A channel's config pointing at the stand-in, with a valid access token for a day."""
    return {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "refresh_token": FIRST_REFRESH,
        "access_token": FIRST_ACCESS,
        "access_token_expires_at": (T0 + timedelta(days=1)).isoformat(),
        "recipients": FOLLOWERS[:1],
        "oa_api_base_url": peer.url,
        "zns_api_base_url": peer.url,
        "oauth_base_url": peer.url,
        "timeout_s": 5.0,
    } | extra


def stored(engine: Engine, name: str = "zalo") -> dict[str, Any]:
    with Session(engine) as session:
        channel = session.exec(select(NotificationChannel).where(NotificationChannel.name == name)).one()
        return dict(channel.config)


def deliveries(engine: Engine) -> list[NotificationDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.id))))


def bind(session: Session) -> Engine:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    return engine


# --- OA messages --------------------------------------------------------------------------------


def test_an_oa_message_goes_to_the_follower_with_the_access_token_header(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> DeliveryReport:
        async with zalo_peer() as peer:
            add_channel(session, "zalo", "zalo", zalo_config(peer))
            enqueue(event(), session=session, now=T0)
            session.commit()
            report = await deliver_due(engine=engine, now=T0)
            messages.extend(peer.messages)
            assert peer.refreshes == []
            return report

    messages: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    report = asyncio.run(scenario())
    assert report.sent == 1
    ((path, headers, body),) = messages
    assert path == "/v3.0/oa/message/cs" and headers["access_token"] == FIRST_ACCESS
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert set(body) == {"recipient", "message"} and body["recipient"] == {"user_id": FOLLOWERS[0]}
    text = body["message"]["text"]
    assert text.startswith("[P3] Sự cố mới: Mất kết nối – 06184-CL01") and "Phiếu sửa chữa: LS-2026-000123" in text
    assert SITE not in text  # no public_url, no link
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("sent", 1)


def test_messages_end_with_the_tickets_page_when_the_service_has_a_public_url(session: Session) -> None:
    engine = bind(session)
    policy = DeliveryPolicy(public_url=SITE + "/")
    long_title = "Cụm loa mất điện lưới " * 150  # far beyond Zalo's 2000 characters

    async def scenario() -> None:
        async with zalo_peer() as peer, telegram_peer() as tg:
            add_channel(session, "zalo", "zalo", zalo_config(peer))
            tg_config = {"api_base_url": tg.base_url, "bot_token": "123456789:AAE-secret-token_xyz", "chat_ids": ["-1"]}
            add_channel(session, "tg", "telegram", tg_config)
            alone = event()
            enqueue(alone.__class__(**{**alone.to_json(), "title": long_title, "at": T0}), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0, policy=policy)).sent == 2
            texts.append(peer.messages[0][2]["message"]["text"])
            texts.append(tg.messages[0]["text"])

    texts: list[str] = []
    asyncio.run(scenario())
    zalo_text, telegram_text = texts
    link = f"{SITE}/tickets/LS-2026-000123"
    assert zalo_text.endswith("…\n" + link) and ZALO_MAX_TEXT - 2 <= len(zalo_text) <= ZALO_MAX_TEXT
    assert telegram_text.endswith("\n" + link)


def test_a_digest_links_each_ticket() -> None:
    from monitor.alerts.notify.templates import Notice, render_digest

    notices = [Notice(event(f"06184-CL0{i}", ticket=f"LS-2026-00012{i}")) for i in range(3)]
    text = render_digest(notices, "vi", public_url=SITE).text
    assert all(f"{SITE}/tickets/LS-2026-00012{i}" in text for i in range(3))


# --- the access token's renewal -----------------------------------------------------------------


def test_an_expired_token_is_renewed_first_and_the_new_pair_is_stored(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> ZaloPeer:
        async with zalo_peer() as peer:
            expired = (T0 - timedelta(minutes=1)).isoformat()
            add_channel(session, "zalo", "zalo", zalo_config(peer, access_token_expires_at=expired))
            enqueue(event(), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0)).sent == 1
            return peer

    peer = asyncio.run(scenario())
    ((headers, form),) = peer.refreshes
    assert headers["secret_key"] == APP_SECRET
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form == {"refresh_token": FIRST_REFRESH, "app_id": APP_ID, "grant_type": "refresh_token"}
    ((_, sent_with, _),) = peer.messages
    assert sent_with["access_token"] == "access-token-1-NEWNEWNEW"
    config = stored(engine)
    assert config["refresh_token"] == peer.refresh_token == "refresh-token-1-NEWNEW"
    assert config["access_token"] == "access-token-1-NEWNEWNEW"
    assert config["access_token_expires_at"] == (T0 + timedelta(seconds=90000)).isoformat()
    assert "token_claim" not in config


def test_a_token_zalo_calls_invalid_is_renewed_and_the_message_sent_again(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> ZaloPeer:
        async with zalo_peer(access_tokens={"someone-elses-token"}) as peer:
            add_channel(session, "zalo", "zalo", zalo_config(peer))  # its expiry says it is fine
            enqueue(event(), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0)).sent == 1
            return peer

    peer = asyncio.run(scenario())
    assert [m[1]["access_token"] for m in peer.messages] == [FIRST_ACCESS, "access-token-1-NEWNEWNEW"]
    assert len(peer.refreshes) == 1 and stored(engine)["refresh_token"] == peer.refresh_token
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("sent", 1)


def test_two_dispatchers_on_two_engines_renew_the_token_once(session: Session, settings: Settings) -> None:
    engine, other = bind(session), make_engine(settings)

    async def scenario() -> tuple[ZaloPeer, list[DeliveryReport]]:
        async with zalo_peer() as peer:
            expired = (T0 - timedelta(hours=1)).isoformat()
            add_channel(
                session, "zalo", "zalo", zalo_config(peer, recipients=FOLLOWERS, access_token_expires_at=expired)
            )
            enqueue(event(), session=session, now=T0)
            session.commit()
            one_each = DeliveryPolicy(batch=1)
            reports = await asyncio.gather(
                deliver_due(engine=engine, now=T0, policy=one_each), deliver_due(engine=other, now=T0, policy=one_each)
            )
            return peer, list(reports)

    try:
        peer, reports = asyncio.run(scenario())
    finally:
        other.dispose()
    assert [r.sent for r in reports] == [1, 1]
    assert [form["refresh_token"] for _, form in peer.refreshes] == [FIRST_REFRESH]  # once, never twice
    assert {m[2]["recipient"]["user_id"] for m in peer.messages} == set(FOLLOWERS)
    assert {m[1]["access_token"] for m in peer.messages} == {"access-token-1-NEWNEWNEW"}
    assert stored(engine)["refresh_token"] == peer.refresh_token


def test_concurrent_messages_of_one_worker_renew_the_token_once(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> ZaloPeer:
        async with zalo_peer() as peer:
            config = zalo_config(peer, recipients=FOLLOWERS, access_token=None, access_token_expires_at=None)
            add_channel(session, "zalo", "zalo", config)
            enqueue(event(), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0)).sent == 2
            return peer

    peer = asyncio.run(scenario())
    assert len(peer.refreshes) == 1 and len(peer.messages) == 2


def test_a_refused_refresh_token_says_what_to_do_and_is_not_sent_again(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> ZaloPeer:
        async with zalo_peer(refresh_token="a-token-the-service-never-had") as peer:
            config = zalo_config(peer, access_token_expires_at=(T0 - timedelta(hours=1)).isoformat())
            channel = add_channel(session, "zalo", "zalo", config)
            enqueue(event(), session=session, now=T0)
            session.commit()
            first = await deliver_due(engine=engine, now=T0, policy=FAST)
            second = await deliver_due(engine=engine, now=T0 + timedelta(seconds=30), policy=FAST)
            assert (first.retrying, second.retrying, len(peer.refreshes)) == (1, 1, 1)
            # The administrator enters a new refresh token; the next attempt goes through.
            assert channel.id is not None
            with Session(engine) as admin:
                changes = ChannelUpdate(config={"refresh_token": "a-token-the-service-never-had"})
                update_channel(channel.id, changes, session=admin)
                admin.commit()
            third = await deliver_due(engine=engine, now=T0 + timedelta(seconds=90), policy=FAST)
            assert third.sent == 1 and len(peer.refreshes) == 2
            return peer

    asyncio.run(scenario())
    (row,) = deliveries(engine)
    assert (row.status, row.attempts) == ("sent", 3)
    assert row.last_error is not None and NEW_REFRESH_TOKEN in row.last_error
    assert "create a new refresh token in the Zalo OA admin page" in row.last_error


# --- refusals, retries, secrets -----------------------------------------------------------------


def test_a_refusal_is_retried_with_backoff_and_fails_after_the_last_attempt(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    engine = bind(session)
    refusal = {"error": -230, "message": f"User has not interacted with the OA in 7 days; token {FIRST_ACCESS}"}

    async def scenario() -> list[DeliveryReport]:
        async with zalo_peer(refusals=[(200, refusal)] * 3) as peer:
            add_channel(session, "zalo", "zalo", zalo_config(peer))
            enqueue(event(), session=session, now=T0)
            session.commit()
            reports = []
            async with open_senders() as senders:
                for seconds in (0, 29, 30, 90):
                    now = T0 + timedelta(seconds=seconds)
                    reports.append(await deliver_due(engine=engine, now=now, senders=senders, policy=FAST))
            return reports

    with caplog.at_level(logging.DEBUG):
        reports = asyncio.run(scenario())
    assert [(r.retrying, r.failed) for r in reports] == [(1, 0), (0, 0), (1, 0), (0, 1)]
    (row,) = deliveries(engine)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.last_error == "Zalo answered error -230: User has not interacted with the OA in 7 days; token ***"
    for secret in (FIRST_ACCESS, FIRST_REFRESH, APP_SECRET):
        assert secret not in caplog.text


def test_a_renewed_token_echoed_by_zalo_is_kept_out_of_the_error(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> None:
        async with zalo_peer() as peer:
            peer.refusals = [(200, {"error": -201, "message": "refused, token access-token-1-NEWNEWNEW"})]
            config = zalo_config(peer, access_token_expires_at=(T0 - timedelta(hours=1)).isoformat())
            add_channel(session, "zalo", "zalo", config)
            enqueue(event(), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0)).retrying == 1

    asyncio.run(scenario())
    (row,) = deliveries(engine)
    assert row.last_error == "Zalo answered error -201: refused, token ***"


# --- ZNS ----------------------------------------------------------------------------------------


def test_zns_sends_the_template_to_the_district_peoples_phones(session: Session) -> None:
    engine = bind(session)
    add_people(session)
    officer = session.exec(select(User).where(User.username == "caoloc")).one()
    officer.phone = "0912 345 678"
    session.add(officer)
    session.commit()

    async def scenario() -> ZaloPeer:
        async with zalo_peer() as peer:
            config = zalo_config(peer, mode="zns", template_id="301234", recipients=[])
            add_channel(session, "zalo", "zalo", config)
            enqueue(event(), session=session, now=T0)
            session.commit()
            assert (await deliver_due(engine=engine, now=T0, policy=DeliveryPolicy(public_url=SITE))).sent == 1
            return peer

    peer = asyncio.run(scenario())
    ((path, headers, body),) = peer.messages
    assert path == "/message/template" and headers["access_token"] == FIRST_ACCESS
    assert body["phone"] == "84912345678" and body["template_id"] == "301234"
    assert body["template_data"]["link"] == f"{SITE}/tickets/LS-2026-000123"
    assert body["template_data"]["subject"].startswith("[P3] Sự cố mới") and len(body["tracking_id"]) <= 48


def test_an_oa_channel_without_followers_named_reaches_nobody(session: Session) -> None:
    add_people(session)
    add_channel(session, "zalo", "zalo", zalo_config(ZaloPeer(), recipients=[]))
    assert enqueue(event(), session=session, now=T0) == []


# --- config -------------------------------------------------------------------------------------


def test_the_config_checks_each_mode_and_hides_what_the_service_keeps() -> None:
    base = {"app_id": APP_ID, "app_secret": APP_SECRET, "refresh_token": FIRST_REFRESH}
    with pytest.raises(InvalidInput):
        parse_config("zalo", base | {"mode": "zns"})  # no template
    with pytest.raises(InvalidInput) as refused:
        parse_config("zalo", base | {"recipients": ["0912345678x"]})
    assert refused.value.problems[0].field == "config.recipients"
    zns = parse_config("zalo", base | {"mode": "zns", "template_id": "1", "recipients": ["+84 912.345.678"]})
    assert zns.recipients == ["84912345678"]  # type: ignore[union-attr]
    kept = {**base, "access_token": FIRST_ACCESS, "access_token_expires_at": T0.isoformat(), "token_claim": "x"}
    assert public_config(kept) == {
        "app_id": APP_ID,
        "app_secret": "***set***",
        "refresh_token": "***set***",
        "access_token": "***set***",
    }
    assert merge_config(kept, {"refresh_token": "***set***"}) == kept
    assert merge_config(kept, {"refresh_token": "a-new-one-from-the-admin-page"}) == {
        **base,
        "refresh_token": "a-new-one-from-the-admin-page",
    }


def test_a_long_text_is_cut_but_keeps_its_link() -> None:
    link = f"{SITE}/tickets/LS-2026-000123"
    message = OutgoingMessage(key="k", subject="S", text="x" * 5000, at=T0, link=link)
    text = message.chat_text_within(ZALO_MAX_TEXT)
    assert len(text) == ZALO_MAX_TEXT and text.endswith("…\n" + link)
    assert OutgoingMessage(key="k", subject="S", text="short", at=T0, link=link).chat_text == f"S\n\nshort\n{link}"


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("zalo-api")
    engine = make_engine(_settings_for(_fresh_database_url(request, request.param, tmp), tmp))
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
    with Session(engine) as session:
        add_people(session, with_passwords=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def admin_client(api_engine: Engine) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=api_engine.url.render_as_string(hide_password=False), secret_key=TEST_SECRET, cookie_secure=False
    )
    app = create_app(settings, api_engine)
    app.include_router(notifications.router)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(login(client, "admin"))
        client.cookies.clear()
        yield client


def test_the_api_never_shows_a_zalo_secret_and_the_test_button_sends(
    admin_client: TestClient, api_engine: Engine
) -> None:
    async def scenario() -> list[Any]:
        async with zalo_peer() as peer:
            config = zalo_config(peer)
            del config["access_token_expires_at"]  # kept by the service: a client may not set it
            answers = [
                admin_client.post(
                    "/api/v1/notifications/channels", json={"name": "Zalo OA", "kind": "zalo", "config": config}
                )
            ]
            created = answers[0].json()
            answers.append(admin_client.get("/api/v1/notifications/channels"))
            answers.append(
                await asyncio.to_thread(admin_client.post, f"/api/v1/notifications/channels/{created['id']}/test")
            )
            answers.append(
                admin_client.patch(
                    f"/api/v1/notifications/channels/{created['id']}", json={"config": {"access_token_expires_at": "x"}}
                )
            )
            messages.extend(peer.messages)
            return answers

    messages: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    created, listed, tested, refused = asyncio.run(scenario())
    assert created.status_code == 201, created.text
    assert created.json()["kind_label"] == "Zalo"
    assert {k: v for k, v in created.json()["config"].items() if k.endswith("token") or k == "app_secret"} == {
        "app_secret": "***set***",
        "refresh_token": "***set***",
        "access_token": "***set***",
    }
    for secret in (APP_SECRET, FIRST_REFRESH, FIRST_ACCESS):
        assert secret not in created.text and secret not in listed.text and secret not in tested.text
    assert tested.status_code == 200, tested.text
    assert tested.json() == {"sent": True, "recipient": FOLLOWERS[0], "subject": "Thử kênh thông báo «Zalo OA»"}
    ((path, headers, body),) = messages
    assert path == "/v3.0/oa/message/cs" and headers["access_token"] == FIRST_ACCESS
    assert "Đây là tin nhắn thử" in body["message"]["text"]
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "config.access_token_expires_at"
    admin_client.delete(f"/api/v1/notifications/channels/{created.json()['id']}")


def test_a_test_message_renews_an_expired_token_through_the_channels_database(session: Session) -> None:
    engine = bind(session)

    async def scenario() -> ZaloPeer:
        async with zalo_peer() as peer:
            config = zalo_config(peer, access_token_expires_at=(T0 - timedelta(hours=1)).isoformat())
            channel = add_channel(session, "zalo", "zalo", config)
            async with open_senders() as senders:
                await send_test(channel, recipient=FOLLOWERS[1], senders=senders, now=T0, engine=engine)
            return peer

    peer = asyncio.run(scenario())
    assert len(peer.refreshes) == 1 and stored(engine)["refresh_token"] == peer.refresh_token
    assert peer.messages[0][2]["recipient"] == {"user_id": FOLLOWERS[1]}
