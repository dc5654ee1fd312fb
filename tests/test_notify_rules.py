"""The pure parts of notifications: events, routing by district and priority, the texts, channel configs, backoff."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.choices import ChannelKind
from monitor.alerts.models import AlertProblem
from monitor.alerts.notify import DeliveryPolicy, ProblemEvent, event_from_problem
from monitor.alerts.notify.channels import ChannelTarget, EmailSender, OutgoingMessage, redact, sign
from monitor.alerts.notify.errors import DeliveryError
from monitor.alerts.notify.routing import ChannelRule, Person, at_least, route
from monitor.alerts.notify.schemas import (
    SECRET_MARKER,
    EmailConfig,
    merge_config,
    parse_config,
    public_config,
    stored_config,
)
from monitor.alerts.notify.templates import Notice, one_line, render_digest, render_event
from monitor.auth.models import Role
from monitor.errors import InvalidInput
from monitor.i18n import format_datetime as local_time
from monitor.priority import Priority
from tests.test_notify_support import BOT_TOKEN, CAO_LOC, DINH_LAP, DINH_LAP_TOWN, PEOPLE, T0, WEBHOOK_SECRET, event

PERSONS = [Person(i, m.role, m.district, m.email, m.chat, m.language) for i, m in enumerate(PEOPLE, start=1)]
EMAIL_ALL = ChannelRule(1, ChannelKind.EMAIL, None, Priority.P4)


def recipients_of(ev: ProblemEvent, channel: ChannelRule = EMAIL_ALL, people: list[Person] = PERSONS) -> list[str]:
    return [r.recipient for r in route(ev, [channel], people)]


# --- routing ------------------------------------------------------------------------------------


def test_an_officer_of_dinh_lap_never_hears_of_cao_locs_events() -> None:
    for priority in Priority:
        heard = recipients_of(event(priority=priority.value))
        assert "dinhlap@langson.gov.vn" not in heard
        assert {"caoloc@langson.gov.vn", "kythuat@langson.gov.vn"} <= set(heard)
    assert recipients_of(event(district=DINH_LAP, commune=DINH_LAP_TOWN)) == ["dinhlap@langson.gov.vn"]


def test_administrators_hear_p1_and_p2_and_province_wide_events_leaders_nothing() -> None:
    admin = "admin@sovhtt.langson.gov.vn"
    assert admin in recipients_of(event(priority="P1")) and admin in recipients_of(event(priority="P2"))
    assert admin not in recipients_of(event(priority="P3"))
    assert recipients_of(event(priority="P4", district=None, commune=None, scope="district")) == [admin]
    assert all("lanhdao" not in r for p in Priority for r in recipients_of(event(priority=p.value)))


@pytest.mark.parametrize(
    ("channel_district", "minimum", "district", "priority", "takes"),
    [
        (None, "P4", CAO_LOC, "P4", True),
        (None, "P2", CAO_LOC, "P3", False),
        (None, "P2", CAO_LOC, "P1", True),
        (CAO_LOC, "P4", CAO_LOC, "P3", True),
        (CAO_LOC, "P4", DINH_LAP, "P1", False),
        (CAO_LOC, "P4", None, "P1", False),  # a province-wide event goes to channels of every district
        (None, "P4", None, "P4", True),
    ],
)
def test_a_channel_takes_events_of_its_district_from_its_priority_up(
    channel_district: str | None, minimum: str, district: str | None, priority: str, takes: bool
) -> None:
    channel = ChannelRule(7, ChannelKind.WEBHOOK, channel_district, Priority(minimum))
    routes = route(event(district=district, priority=priority), [channel], PERSONS)
    assert bool(routes) is takes
    assert all(r.recipient == "webhook" for r in routes)


def test_priorities_compare_by_urgency() -> None:
    assert at_least(Priority.P1, Priority.P4) and at_least(Priority.P3, Priority.P3)
    assert not at_least(Priority.P4, Priority.P3)


def test_explicit_recipients_replace_the_districts_people_once_each_in_the_channels_language() -> None:
    rule = ChannelRule.of(
        id=3,
        kind="email",
        district_code=None,
        min_priority="P4",
        active=True,
        config={"to": ["ops@langson.gov.vn", "OPS@langson.gov.vn", "duty@langson.gov.vn"], "language": "en"},
    )
    routes = route(event(), [rule], PERSONS)
    assert [(r.recipient, r.language) for r in routes] == [("ops@langson.gov.vn", "en"), ("duty@langson.gov.vn", "en")]


def test_people_are_written_to_in_their_language_and_inactive_ones_not_at_all() -> None:
    routes = {r.recipient: r.language for r in route(event(), [EMAIL_ALL], PERSONS)}
    assert routes == {"caoloc@langson.gov.vn": "vi", "kythuat@langson.gov.vn": "en"}
    away = [
        Person(p.id, p.role, p.district_code, p.email, p.telegram_chat_id, p.language, active=False) for p in PERSONS
    ]
    assert route(event(), [EMAIL_ALL], away) == []
    telegram = ChannelRule(2, ChannelKind.TELEGRAM, None, Priority.P4)
    assert recipients_of(event(), telegram) == ["1831", "1832"]


def test_an_inactive_channel_takes_nothing() -> None:
    rule = ChannelRule(1, ChannelKind.EMAIL, None, Priority.P4, active=False)
    assert route(event(priority="P1"), [rule], PERSONS) == []


# --- events -------------------------------------------------------------------------------------


def test_an_event_round_trips_through_json_and_keeps_utc() -> None:
    ev = event(members=("a", "b"), at=datetime(2026, 11, 26, 14, 5, tzinfo=UTC) + timedelta(microseconds=7))
    assert ProblemEvent.from_json(ev.to_json()) == ev
    with pytest.raises(ValueError, match="aware"):
        event(at=datetime(2026, 11, 26, 14, 5))  # noqa: DTZ001 - refused on purpose


def test_the_event_of_a_problem_takes_the_problems_own_time_so_a_repeat_is_the_same_event() -> None:
    problem = AlertProblem(
        key="device:06184-CL01:offline",
        scope="device",
        scope_code="06184-CL01",
        kind="offline",
        source="health",
        status="active",
        priority="P2",
        title="Cụm loa chợ mất kết nối",
        district_code=CAO_LOC,
        commune_code="06184",
        started_at=T0 - timedelta(minutes=3),
        activated_at=T0,
    )
    first = event_from_problem("opened", problem)
    assert first == event_from_problem("opened", problem) and first.at == T0
    assert first.priority is Priority.P2 and first.identity == f"device:06184-CL01:offline|opened|{T0.isoformat()}"


# --- texts --------------------------------------------------------------------------------------


def test_a_vietnamese_message_names_the_fault_places_ticket_and_local_time() -> None:
    notice = Notice(event(priority="P2"), "Huyện Cao Lộc", "Thị trấn Đồng Đăng")
    message = render_event(notice, "vi")
    assert message.subject == "[P2] Sự cố mới: Mất kết nối – 06184-CL01 (Thị trấn Đồng Đăng, Huyện Cao Lộc)"
    lines = message.text.splitlines()
    assert lines[:2] == ["Sự cố mới – P2 – Cao", "06184-CL01 mất kết nối"]
    for line in (
        "Sự cố: Mất kết nối",
        "Xã: Thị trấn Đồng Đăng",
        "Huyện: Huyện Cao Lộc",
        "Phiếu sửa chữa: LS-2026-000123",
        "Thời điểm: 26/11/2026 14:05",
    ):
        assert line in lines


def test_an_english_reader_gets_english_words_and_the_same_local_time() -> None:
    notice = Notice(event(kind="resolved", problem="amplifier_fault"), "Huyện Cao Lộc", "Thị trấn Đồng Đăng")
    message = render_event(notice, "en")
    assert message.subject.startswith("[P3] Resolved: Amplifier fault – 06184-CL01")
    assert "Repair ticket: LS-2026-000123" in message.text and "Time: 26/11/2026 14:05" in message.text


@pytest.mark.parametrize("kind", ["opened", "resolved", "escalated", "acknowledged"])
@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_event_kind_has_its_words_in_both_languages(kind: str, language: str) -> None:
    vi = render_event(Notice(event(kind=kind)), "vi")
    message = render_event(Notice(event(kind=kind)), language)
    assert message.subject and message.text.count("\n") >= 4
    assert (message.subject == vi.subject) is (language == "vi")


def test_a_grouped_problem_lists_its_devices_and_how_many_more() -> None:
    members = tuple(f"06184-CL{i:02d}" for i in range(1, 15))
    notice = Notice(event("06184", scope="commune", members=members), "Huyện Cao Lộc", "Thị trấn Đồng Đăng")
    text = render_event(notice, "vi").text
    assert "Phạm vi: Toàn xã (14 thiết bị)" in text and "06184-CL10 … và 4 thiết bị khác" in text


def test_a_digest_counts_its_events_and_lists_the_most_urgent_first() -> None:
    notices = [Notice(event(f"06184-CL{i:02d}", at=T0 + timedelta(seconds=i)), "Huyện Cao Lộc") for i in range(23)]
    notices.append(Notice(event("06184-GW01", priority="P1"), "Huyện Cao Lộc"))
    digest = render_digest(notices, "vi", limit=5)
    assert digest.subject == "24 sự cố mới ở Huyện Cao Lộc"
    lines = digest.text.splitlines()
    assert lines[0] == "24 sự cố mới ở Huyện Cao Lộc:"
    assert lines[2].startswith("• [P1] Sự cố mới: Mất kết nối – 06184-GW01")
    assert "… và 19 thông báo khác." in lines
    mixed = render_digest([*notices[:2], Notice(event(kind="resolved", district=None))], "en")
    assert mixed.subject == "3 problem notifications in the whole province"


def test_text_from_outside_cannot_forge_lines_or_headers() -> None:
    ev = event()
    forged = ProblemEvent.from_json(
        {**ev.to_json(), "title": "Loa\r\nBcc: attacker@example.com\x00", "scope_code": "X\nY"}
    )
    message = render_event(Notice(forged, "Huyện\nCao Lộc"), "vi")
    assert "\n" not in message.subject and "\r" not in message.text
    assert "Loa Bcc: attacker@example.com" in message.text
    mail = EmailSender.compose(
        EmailConfig(smtp_host="localhost", from_addr="a@b.vn"),
        "x@y.vn",
        OutgoingMessage(key="k" * 64, subject=message.subject, text=message.text, at=T0),
    )
    raw = mail.as_bytes(policy=email.policy.SMTP)
    assert b"\r\nBcc:" not in raw and mail.get_content_type() == "text/plain"


def test_times_are_shown_in_vietnam_as_day_month_year() -> None:
    assert local_time(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)) == "01/01/2027 00:30"
    assert one_line(" a\tb\u2028c  ") == "a b c"


# --- channel configs ----------------------------------------------------------------------------


def test_secrets_are_stored_but_shown_only_as_a_marker_and_a_marker_sent_back_keeps_them() -> None:
    config = stored_config(
        parse_config("webhook", {"url": "https://hooks.example.vn/x?token=abc", "secret": WEBHOOK_SECRET})
    )
    assert config["secret"] == WEBHOOK_SECRET
    shown = public_config(config)
    assert shown["secret"] == SECRET_MARKER and "abc" not in str(shown) and WEBHOOK_SECRET not in str(shown)
    assert merge_config(config, {"secret": SECRET_MARKER, "language": "en"})["secret"] == WEBHOOK_SECRET
    telegram = public_config(stored_config(parse_config("telegram", {"bot_token": BOT_TOKEN})))
    assert telegram == {
        "language": "vi",
        "timeout_s": 10.0,
        "api_base_url": "https://api.telegram.org",
        "bot_token": SECRET_MARKER,
        "chat_ids": [],
    }


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("webhook", {"url": "ftp://x", "secret": WEBHOOK_SECRET}, "config.url"),
        ("webhook", {"url": "https://x.vn", "secret": "change-me"}, "config.secret"),
        ("webhook", {"url": "https://x.vn", "secret": WEBHOOK_SECRET, "extra": 1}, "config.extra"),
        ("email", {"smtp_host": "mail", "from_addr": "no-at-sign"}, "config.from_addr"),
        ("email", {"smtp_host": "mail", "from_addr": "a@b.vn", "to": ["x@y.vn, z@w.vn"]}, "config.to"),
        ("telegram", {"bot_token": "123:abc/../../evil"}, "config.bot_token"),
        ("telegram", {"bot_token": BOT_TOKEN, "chat_ids": ["not a chat"]}, "config.chat_ids"),
    ],
)
def test_a_bad_channel_config_is_refused_naming_the_field(kind: str, config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_config(kind, config)
    assert field in [p.field for p in refused.value.problems]


def test_the_webhook_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    # RFC 4231 test case 2.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign("Jefe", b"what do ya want for nothing?") == expected


def test_errors_are_cleaned_of_the_channels_secrets() -> None:
    target = ChannelTarget(1, "tg", ChannelKind.TELEGRAM, {"bot_token": BOT_TOKEN})
    assert redact(f"GET /bot{BOT_TOKEN}/sendMessage failed", target.secrets()) == "GET /bot***/sendMessage failed"
    broken = ChannelTarget(2, "bad", ChannelKind.WEBHOOK, {"url": "https://x.vn"})
    with pytest.raises(DeliveryError) as error:
        broken.checked()
    assert error.value.permanent and "config.secret" in str(error.value)


# --- backoff ------------------------------------------------------------------------------------


def test_retries_back_off_exponentially_up_to_a_cap_and_respect_what_the_peer_asked() -> None:
    policy = DeliveryPolicy(backoff=timedelta(seconds=30), max_backoff=timedelta(minutes=10))
    assert [policy.retry_delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    assert policy.retry_delay(1, asked_s=90) == timedelta(seconds=90)
    assert policy.retry_delay(1, asked_s=86400) == timedelta(minutes=10)


def test_people_of_the_cast_cover_each_role() -> None:
    assert {m.role for m in PEOPLE} == set(Role)
