"""Enqueue and the delivery worker against real peers on loopback, on SQLite and PostgreSQL.

A webhook receiver (aiohttp) that checks signatures, an SMTP server (aiosmtpd) with STARTTLS and login,
and a stand-in for the Telegram Bot API (aiohttp; the real service cannot be reached from the tests).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.models import NotificationChannel, NotificationDelivery
from monitor.alerts.notify import (
    DeliveryPolicy,
    DeliveryReport,
    DeliveryStats,
    backlog,
    deliver_due,
    enqueue,
    enqueue_many,
    open_senders,
    purge_deliveries,
)
from monitor.alerts.notify.channels import Senders
from tests.peers import free_port
from tests.test_notify_support import (
    ADDRESS,
    BOT_TOKEN,
    CAO_LOC,
    CHAT,
    DINH_LAP,
    DINH_LAP_TOWN,
    SMTP_PASSWORD,
    SMTP_USER,
    T0,
    WEBHOOK_SECRET,
    Received,
    add_channel,
    add_people,
    event,
    smtp_config,
    smtp_peer,
    telegram_peer,
    webhook_peer,
)

FAST = DeliveryPolicy(backoff=timedelta(seconds=30), max_attempts=3)


def deliveries(engine: Engine) -> list[NotificationDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.id))))


def run(engine: Engine, at: timedelta = timedelta(0), senders: Senders | None = None, **kw: object) -> DeliveryReport:
    """One worker run at T0 + `at`."""
    return asyncio.run(deliver_due(engine=engine, now=T0 + at, senders=senders, **kw))  # type: ignore[arg-type]


def webhook_channel(session: Session, url: str, **fields: object) -> NotificationChannel:
    return add_channel(session, "webhook", "webhook", {"url": url, "secret": WEBHOOK_SECRET}, **fields)


# --- enqueue ------------------------------------------------------------------------------------


def test_a_duplicated_event_enqueued_twice_makes_one_delivery(session: Session) -> None:
    add_people(session)
    add_channel(session, "mail", "email", {"smtp_host": "127.0.0.1", "from_addr": "giamsat@langson.gov.vn"})
    first = enqueue(event(), session=session, now=T0)
    session.commit()
    again = enqueue(event(), session=session, now=T0 + timedelta(seconds=5))
    both = enqueue_many(
        [event(), event(), event(kind="resolved", at=T0 + timedelta(minutes=9))], session=session, now=T0
    )
    session.commit()
    assert sorted(d.recipient for d in first) == [ADDRESS["caoloc"], ADDRESS["kythuat"]]
    assert again == [] and len(both) == 2 and {d.payload["notice"]["kind"] for d in both} == {"resolved"}
    assert len(deliveries(session.get_bind())) == 4  # type: ignore[arg-type]


def test_routing_in_the_database_follows_district_priority_and_channel(session: Session) -> None:
    add_people(session)
    add_channel(session, "all-mail", "email", {"smtp_host": "m", "from_addr": "g@langson.gov.vn"})
    add_channel(session, "dl-telegram", "telegram", {"bot_token": BOT_TOKEN}, district_code=DINH_LAP)
    add_channel(session, "urgent-hook", "webhook", {"url": "https://h.vn", "secret": WEBHOOK_SECRET}, min_priority="P2")
    add_channel(session, "off", "webhook", {"url": "https://h.vn", "secret": WEBHOOK_SECRET}, active=False)
    cao_loc_p3 = enqueue(event("06184-CL01"), session=session, now=T0)
    dinh_lap_p1 = enqueue(
        event("06613-CL01", district=DINH_LAP, commune=DINH_LAP_TOWN, priority="P1"), session=session, now=T0
    )
    session.commit()
    assert sorted(d.recipient for d in cao_loc_p3) == [ADDRESS["caoloc"], ADDRESS["kythuat"]]
    assert sorted(d.recipient for d in dinh_lap_p1) == sorted(
        [ADDRESS["admin"], ADDRESS["dinhlap"], CHAT["admin"], CHAT["dinhlap"], "webhook"]
    )
    english = next(d for d in cao_loc_p3 if d.recipient == ADDRESS["kythuat"])
    assert english.subject.startswith("[P3] New problem: Offline – 06184-CL01 (Thị trấn Đồng Đăng, Huyện Cao Lộc)")
    assert {d.district_code for d in dinh_lap_p1} == {DINH_LAP}
    assert all(d.status == "pending" and d.next_attempt_at == T0 for d in cao_loc_p3 + dinh_lap_p1)


# --- webhook ------------------------------------------------------------------------------------


def test_the_webhook_is_signed_and_retried_with_backoff_until_accepted(session: Session) -> None:
    stats = DeliveryStats()

    async def scenario() -> list[DeliveryReport]:
        async with webhook_peer(statuses=[500, 500]) as peer:
            channel = webhook_channel(session, peer.url)
            enqueue(event(), session=session, now=T0)
            session.commit()
            reports = []
            async with open_senders() as senders:
                for seconds in (0, 10, 30, 89, 90, 500):
                    now = T0 + timedelta(seconds=seconds)
                    reports.append(await deliver_due(engine=engine, now=now, senders=senders, policy=FAST, stats=stats))
                    if seconds == 30:
                        (row,) = deliveries(engine)
                        assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(seconds=90))
            received.extend(peer.received)
            assert channel.id is not None
            return reports

    engine: Engine = session.get_bind()  # type: ignore[assignment]
    received: list[Received] = []
    reports = asyncio.run(scenario())
    assert [r.messages_sent + r.messages_failed for r in reports] == [1, 0, 1, 0, 1, 0]
    assert [len(received), all(r.signature_ok for r in received)] == [3, True]
    keys = {r.headers["Idempotency-Key"] for r in received}
    (row,) = deliveries(engine)
    assert keys == {row.idempotency_key}
    assert (row.status, row.attempts, row.sent_at, row.message_key) == (
        "sent",
        3,
        T0 + timedelta(seconds=90),
        row.idempotency_key,
    )
    assert row.last_error == "the webhook answered HTTP 500"
    body = received[-1].json()
    assert body["count"] == 1 and body["events"][0]["problem_key"] == "device:06184-CL01:offline"
    assert body["events"][0]["district_name"] == "Huyện Cao Lộc" and body["subject"] == row.subject
    assert stats.messages() == {("webhook", "failed"): 2, ("webhook", "sent"): 1}
    assert stats.deliveries() == {("webhook", "retrying"): 2, ("webhook", "sent"): 1}


def test_a_peer_that_stays_away_fails_the_delivery_after_the_last_attempt(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    webhook_channel(session, f"http://127.0.0.1:{free_port()}/gone")
    enqueue(event(), session=session, now=T0)
    session.commit()
    policy = DeliveryPolicy(max_attempts=2, backoff=timedelta(seconds=10))
    assert run(engine, policy=policy).retrying == 1
    assert run(engine, timedelta(seconds=10), policy=policy).failed == 1
    (row,) = deliveries(engine)
    assert (row.status, row.attempts, row.next_attempt_at, row.sent_at) == ("failed", 2, None, None)
    assert "ConnectError" in (row.last_error or "")
    assert backlog(engine) == {("webhook", "failed"): 1}
    assert run(engine, timedelta(hours=1), policy=policy).claimed == 0
    with Session(engine) as fresh:
        assert purge_deliveries(session=fresh, before=T0) == 0
        assert purge_deliveries(session=fresh, before=T0 + timedelta(days=1)) == 1
        fresh.commit()
    assert deliveries(engine) == []


def test_a_webhook_refusing_with_a_client_error_fails_at_once(session: Session) -> None:
    async def scenario() -> None:
        async with webhook_peer(statuses=[410]) as peer:
            webhook_channel(session, peer.url)
            enqueue(event(), session=session, now=T0)
            session.commit()
            report = await deliver_due(engine=engine, now=T0)
            assert report.failed == 1

    engine: Engine = session.get_bind()  # type: ignore[assignment]
    asyncio.run(scenario())
    (row,) = deliveries(engine)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "the webhook answered HTTP 410")


# --- e-mail -------------------------------------------------------------------------------------


def test_an_email_goes_through_starttls_with_login_and_its_vietnamese_subject_decodes(
    session: Session, tmp_path: Path
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    add_people(session)
    with smtp_peer(tmp_path) as peer:
        add_channel(session, "mail", "email", smtp_config(peer))
        enqueue(event(priority="P2"), session=session, now=T0)
        session.commit()

        async def scenario() -> DeliveryReport:
            async with open_senders(ssl_context=peer.client_context) as senders:
                return await deliver_due(engine=engine, now=T0, senders=senders)

        report = asyncio.run(scenario())
    assert (report.messages_sent, report.sent) == (3, 3)  # caoloc, kythuat, and admin for a P2
    assert peer.mailbox.tls == [True, True, True] and peer.mailbox.logins == [SMTP_USER] * 3
    (mail,) = peer.mailbox.to(ADDRESS["caoloc"])
    assert mail["Subject"] == "[P2] Sự cố mới: Mất kết nối – 06184-CL01 (Thị trấn Đồng Đăng, Huyện Cao Lộc)"
    assert mail.get_content_type() == "text/plain" and mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "Thời điểm: 26/11/2026 14:05" in body and "Phiếu sửa chữa: LS-2026-000123" in body
    (english,) = peer.mailbox.to(ADDRESS["kythuat"])
    assert english["Subject"].startswith("[P2] New problem: Offline")
    assert not peer.mailbox.to(ADDRESS["dinhlap"]) and not peer.mailbox.to(ADDRESS["lanhdao"])


def test_without_the_servers_certificate_starttls_is_refused_and_retried(session: Session, tmp_path: Path) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    with smtp_peer(tmp_path) as peer:
        add_channel(session, "mail", "email", smtp_config(peer, to=["duty@langson.gov.vn"]))
        enqueue(event(), session=session, now=T0)
        session.commit()
        report = run(engine)  # the system's trust store does not know the self-signed certificate
    (row,) = deliveries(engine)
    assert report.retrying == 1 and peer.mailbox.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "") and SMTP_PASSWORD not in (row.last_error or "")


# --- Telegram -----------------------------------------------------------------------------------


def test_telegram_receives_plain_text_without_parse_mode(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    add_people(session)

    async def scenario() -> list[dict[str, Any]]:
        async with telegram_peer() as peer:
            add_channel(session, "tg", "telegram", {"api_base_url": peer.base_url, "bot_token": BOT_TOKEN})
            enqueue(event(), session=session, now=T0)
            session.commit()
            report = await deliver_due(engine=engine, now=T0)
            assert report.sent == 2
            return peer.messages

    messages = asyncio.run(scenario())
    assert sorted(m["chat_id"] for m in messages) == [CHAT["caoloc"], CHAT["kythuat"]]
    assert all("parse_mode" not in m for m in messages)
    text = next(m["text"] for m in messages if m["chat_id"] == CHAT["caoloc"])
    assert text.startswith("[P3] Sự cố mới: Mất kết nối – 06184-CL01") and "\n\nSự cố mới – P3 – Trung bình" in text


def test_a_refused_bot_token_fails_for_good_and_the_token_is_never_shown(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]

    async def scenario() -> None:
        async with telegram_peer() as peer:
            peer.refuse["-100777"] = (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests",
                    "parameters": {"retry_after": 120},
                },
            )
            config = {"api_base_url": peer.base_url, "bot_token": BOT_TOKEN + "x", "chat_ids": ["-100999"]}
            add_channel(session, "wrong-token", "telegram", config)
            config = {"api_base_url": peer.base_url, "bot_token": BOT_TOKEN, "chat_ids": ["-100777"]}
            add_channel(session, "busy", "telegram", config)
            enqueue(event(), session=session, now=T0)
            session.commit()
            await deliver_due(engine=engine, now=T0)

    asyncio.run(scenario())
    wrong, busy = deliveries(engine)
    assert (wrong.status, wrong.last_error) == ("failed", "Telegram answered HTTP 401: Unauthorized")
    assert BOT_TOKEN not in str(wrong.last_error)
    # Telegram's retry_after (120 s) wins over the first backoff step (30 s).
    assert (busy.status, busy.next_attempt_at) == ("pending", T0 + timedelta(seconds=120))


# --- storms, rate limits, several workers -------------------------------------------------------


def test_a_storm_of_200_events_sends_one_digest_per_recipient_and_channel(session: Session, tmp_path: Path) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    add_people(session)
    storm = [event(f"06184-CL{i:03d}", at=T0 + timedelta(milliseconds=i)) for i in range(200)]

    async def scenario() -> DeliveryReport:
        async with webhook_peer() as hook, telegram_peer() as tg:
            webhook_channel(session, hook.url)
            add_channel(session, "tg", "telegram", {"api_base_url": tg.base_url, "bot_token": BOT_TOKEN})
            add_channel(session, "mail", "email", smtp_config(smtp))
            created = enqueue_many(storm, session=session, now=T0)
            session.commit()
            assert len(created) == 200 * 5  # webhook, 2 chats, 2 mailboxes
            report = await deliver_due(engine=engine, now=T0)
            hooks.extend(hook.received)
            chats.extend(tg.messages)
            return report

    hooks: list[Received] = []
    chats: list[dict[str, Any]] = []
    with smtp_peer() as smtp:
        report = asyncio.run(scenario())
    assert (report.claimed, report.sent, report.messages_sent) == (1000, 1000, 5)
    (hook,) = hooks
    assert hook.signature_ok and hook.json()["count"] == 200 and len(hook.json()["events"]) == 200
    assert sorted(m["chat_id"] for m in chats) == [CHAT["caoloc"], CHAT["kythuat"]]
    assert len(smtp.mailbox.messages) == 2
    (mail,) = smtp.mailbox.to(ADDRESS["caoloc"])
    assert mail["Subject"] == "200 sự cố mới ở Huyện Cao Lộc"
    assert "… và 180 thông báo khác." in mail.get_content()
    (english,) = smtp.mailbox.to(ADDRESS["kythuat"])
    assert english["Subject"] == "200 new problems in Huyện Cao Lộc"
    rows = deliveries(engine)
    assert len({r.message_key for r in rows}) == 5 and {r.status for r in rows} == {"sent"}


def test_the_rate_limit_holds_messages_back_until_the_window_has_room(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    chats = [f"-1001{i}" for i in range(5)]

    async def scenario() -> list[DeliveryReport]:
        async with telegram_peer() as tg:
            config = {"api_base_url": tg.base_url, "bot_token": BOT_TOKEN, "chat_ids": chats}
            add_channel(session, "tg", "telegram", config, rate_limit_per_minute=2)
            enqueue(event(), session=session, now=T0)
            session.commit()
            reports = []
            for seconds in (0, 30, 60, 90, 120):
                reports.append(await deliver_due(engine=engine, now=T0 + timedelta(seconds=seconds)))
            assert len(tg.messages) == 5
            return reports

    reports = asyncio.run(scenario())
    assert [(r.sent, r.rate_limited) for r in reports] == [(2, 3), (0, 0), (2, 1), (0, 0), (1, 0)]
    rows = deliveries(engine)
    assert sorted(r.sent_at for r in rows if r.sent_at) == [T0] * 2 + [T0 + timedelta(seconds=60)] * 2 + [
        T0 + timedelta(seconds=120)
    ]
    assert all(r.attempts == 1 for r in rows)  # held back is not an attempt


def test_two_workers_at_once_never_send_a_delivery_twice(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    add_people(session)

    async def scenario() -> tuple[DeliveryReport, DeliveryReport]:
        async with telegram_peer() as tg:
            config = {"api_base_url": tg.base_url, "bot_token": BOT_TOKEN, "chat_ids": [f"-2{i}" for i in range(40)]}
            add_channel(session, "tg", "telegram", config, rate_limit_per_minute=1000)
            enqueue(event(), session=session, now=T0)
            session.commit()
            small = DeliveryPolicy(batch=15)
            first, second = await asyncio.gather(
                deliver_due(engine=engine, now=T0, policy=small), deliver_due(engine=engine, now=T0, policy=small)
            )
            rest = await deliver_due(engine=engine, now=T0)
            sent.extend(m["chat_id"] for m in tg.messages)
            assert first.claimed + second.claimed + rest.claimed == 40
            return first, second

    sent: list[str] = []
    first, second = asyncio.run(scenario())
    assert first.claimed == second.claimed == 15
    assert sorted(sent) == sorted(f"-2{i}" for i in range(40))  # each exactly once
    assert {r.status for r in deliveries(engine)} == {"sent"}


def test_a_disabled_channel_sends_nothing_of_what_it_had_queued(session: Session) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    channel = webhook_channel(session, "http://127.0.0.1:9/never")
    enqueue(event(), session=session, now=T0)
    channel.active = False
    session.add(channel)
    session.commit()
    assert run(engine).failed == 1
    (row,) = deliveries(engine)
    assert (row.status, row.attempts, row.last_error) == ("failed", 0, "the channel is disabled")


def test_a_cao_loc_storm_reaches_no_one_in_dinh_lap(session: Session) -> None:
    add_people(session)
    add_channel(session, "tg", "telegram", {"bot_token": BOT_TOKEN})
    created = enqueue_many([event(f"06184-CL{i:03d}", priority="P1") for i in range(30)], session=session, now=T0)
    session.commit()
    assert {d.recipient for d in created} == {CHAT["caoloc"], CHAT["kythuat"], CHAT["admin"]}
    assert {d.district_code for d in created} == {CAO_LOC}
