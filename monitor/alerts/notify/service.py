"""Notifications as plain functions taking the session as a keyword: enqueue events, manage channels,
list deliveries, send a test. The delivery worker is in `worker.py`.

`enqueue` runs inside the caller's transaction (the dispatcher's, with the problem it reports), so an
event is queued exactly when its problem change is committed: the deliveries table is an outbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import object_session
from sqlmodel import Session, SQLModel, col, func, select

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.alerts.models import CHANNEL_SEALED_KEYS, NotificationChannel, NotificationDelivery
from monitor.alerts.notify.channels import ChannelTarget, OutgoingMessage, Senders, deliver
from monitor.alerts.notify.events import ProblemEvent
from monitor.alerts.notify.routing import ChannelRule, Person, route
from monitor.alerts.notify.schemas import (
    RECIPIENT_KEYS,
    ChannelCreate,
    ChannelPublic,
    ChannelUpdate,
    DeliveryPublic,
    merge_config,
    parse_config,
    public_config,
    refuse_service_keys,
    refuse_unopened,
    service_state,
    stored_config,
)
from monitor.alerts.notify.templates import Message, Notice, render_event, render_test
from monitor.alerts.notify.zalo import ChannelTokens
from monitor.auth.models import Role, User
from monitor.errors import Conflict, InvalidInput, NotFound, Problem
from monitor.inventory.models import Commune, District
from monitor.priority import Priority
from monitor.sealing import require_sealing

DELIVERIES = SQLModel.metadata.tables["notification_deliveries"]
# Rows per INSERT: 14 columns each, far below SQLite's and PostgreSQL's limits on bound parameters.
_INSERT_CHUNK = 500


def idempotency_key(event: ProblemEvent, channel_id: int, recipient: str) -> str:
    """sha256 of the event's identity (problem key, kind, time), the channel and the recipient."""
    return hashlib.sha256(f"{event.identity}|{channel_id}|{recipient}".encode()).hexdigest()


# --- enqueue ------------------------------------------------------------------------------------


def _channel_rules(session: Session) -> list[ChannelRule]:
    rows = session.exec(
        select(NotificationChannel).where(col(NotificationChannel.active)).order_by(col(NotificationChannel.id))
    )
    return [
        ChannelRule.of(
            id=c.id or 0,
            kind=c.kind,
            district_code=c.district_code,
            min_priority=c.min_priority,
            active=c.active,
            config=c.config,
        )
        for c in rows
    ]


def _people(session: Session) -> list[Person]:
    query = select(User).where(
        col(User.active),
        col(User.role).in_([Role.ADMIN.value, Role.OFFICER.value, Role.TECHNICIAN.value]),
        sa.or_(col(User.email).is_not(None), col(User.telegram_chat_id).is_not(None), col(User.phone).is_not(None)),
    )
    return [
        Person(u.id or 0, Role(u.role), u.district_code, u.email, u.telegram_chat_id, u.language, u.active, u.phone)
        for u in session.exec(query)
    ]


def _notices(events: Sequence[ProblemEvent], session: Session) -> list[Notice]:
    district_codes = {e.district_code for e in events if e.district_code}
    commune_codes = {e.commune_code for e in events if e.commune_code}
    districts = dict(
        session.exec(select(District.code, District.name).where(col(District.code).in_(district_codes))).all()
    )
    communes = dict(session.exec(select(Commune.code, Commune.name).where(col(Commune.code).in_(commune_codes))).all())
    return [
        Notice(
            e,
            districts.get(e.district_code) if e.district_code else None,
            communes.get(e.commune_code) if e.commune_code else None,
        )
        for e in events
    ]


def enqueue_many(
    events: Iterable[ProblemEvent], *, session: Session, now: datetime, hold: timedelta = timedelta(0)
) -> list[NotificationDelivery]:
    """Queue every delivery `events` need; returns the deliveries created, none for an event already queued.

    One pending delivery per (event, channel, recipient), due at `now + hold` (a hold lets a storm
    arriving over a few cycles fold into one digest). The unique idempotency key makes a repeated event
    harmless: the insert skips it (`ON CONFLICT DO NOTHING`, on SQLite and PostgreSQL alike), which
    raises nothing, so the caller's transaction is never disturbed. Channels, people and place names
    are read once per call, not once per event.
    """
    events = list(events)
    if not events:
        return []
    channels = _channel_rules(session)
    if not channels:
        return []
    needs_people = any(c.kind is not ChannelKind.WEBHOOK and not c.explicit for c in channels)
    people = _people(session) if needs_people else []
    due = now + hold
    rows: dict[str, dict[str, Any]] = {}
    for notice in _notices(events, session):
        event = notice.event
        rendered: dict[str, Message] = {}
        for found in route(event, channels, people):
            key = idempotency_key(event, found.channel_id, found.recipient)
            if found.language not in rendered:
                rendered[found.language] = render_event(notice, found.language)
            message = rendered[found.language]
            rows[key] = {
                "channel_id": found.channel_id,
                "recipient": found.recipient,
                "idempotency_key": key,
                "subject": message.subject,
                "body": message.text,
                "payload": {"notice": notice.to_json(), "language": found.language},
                "district_code": event.district_code,
                "message_key": None,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": due,
                "created_at": now,
                "sent_at": None,
            }
    if not rows:
        return []
    insert = postgresql.insert if session.connection().dialect.name == "postgresql" else sqlite.insert
    created: list[int] = []
    values = list(rows.values())
    for start in range(0, len(values), _INSERT_CHUNK):
        statement = (
            insert(DELIVERIES)
            .values(values[start : start + _INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(DELIVERIES.c.id)
        )
        created += session.execute(statement).scalars().all()
    if not created:
        return []
    query = (
        select(NotificationDelivery)
        .where(col(NotificationDelivery.id).in_(created))
        .order_by(col(NotificationDelivery.id))
    )
    return list(session.exec(query))


def enqueue(
    event: ProblemEvent, *, session: Session, now: datetime, hold: timedelta = timedelta(0)
) -> list[NotificationDelivery]:
    """Queue the deliveries of one event (see `enqueue_many`)."""
    return enqueue_many([event], session=session, now=now, hold=hold)


# --- channels -----------------------------------------------------------------------------------


def channel_public(channel: NotificationChannel) -> ChannelPublic:
    """A channel as the API shows it, its secrets replaced by a marker."""
    kind = ChannelKind(channel.kind)
    assert channel.id is not None
    return ChannelPublic(
        id=channel.id,
        name=channel.name,
        kind=kind,
        kind_label=kind.label_vi,
        district_code=channel.district_code,
        min_priority=Priority(channel.min_priority),
        config=public_config(channel.config),
        rate_limit_per_minute=channel.rate_limit_per_minute,
        active=channel.active,
        created_at=channel.created_at,
    )


def channel_target(channel: NotificationChannel, *, engine: Engine | None = None) -> ChannelTarget:
    """What the senders need of a channel; its renewed tokens (Zalo) are kept through `engine`, by
    default the one of the session `channel` belongs to (none when it is detached: nothing is renewed)."""
    if engine is None:
        session = object_session(channel)
        bind = session.get_bind() if session is not None else None
        engine = bind if isinstance(bind, Engine) else None
    tokens = ChannelTokens(engine) if engine is not None else None
    return ChannelTarget(channel.id or 0, channel.name, ChannelKind(channel.kind), channel.config, tokens)


def list_channels(*, session: Session) -> list[NotificationChannel]:
    """Every channel, by name."""
    return list(session.exec(select(NotificationChannel).order_by(col(NotificationChannel.name))))


def get_channel(channel_id: int, *, session: Session) -> NotificationChannel:
    """One channel; NotFound when there is none of this id."""
    channel = session.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound("notification channel", str(channel_id))
    return channel


def _check_district(district_code: str | None, session: Session) -> None:
    if district_code is not None and session.get(District, district_code) is None:
        raise InvalidInput("unknown district", [Problem("district_code", f"no district {district_code!r}")])


def _check_name_free(name: str, session: Session, channel_id: int | None = None) -> None:
    other = session.exec(select(NotificationChannel).where(NotificationChannel.name == name)).first()
    if other is not None and other.id != channel_id:
        raise Conflict(f"a notification channel named {name!r} exists already")


def _require_sealing_for(config: dict[str, Any]) -> None:
    # Checked before the write, so that a missing key is a clear answer, not an error inside the flush.
    if any(config.get(key) for key in CHANNEL_SEALED_KEYS):
        require_sealing()


def create_channel(data: ChannelCreate, *, session: Session, now: datetime) -> NotificationChannel:
    """A new channel, its config checked against its kind; the caller commits.

    `SealingRefused` when its secrets cannot be sealed (no MONITOR_SECRET_KEYS outside the demo)."""
    refuse_service_keys(data.kind, data.config)
    config = stored_config(parse_config(data.kind, data.config))
    _require_sealing_for(config)
    _check_district(data.district_code, session)
    _check_name_free(data.name, session)
    channel = NotificationChannel(
        name=data.name,
        kind=data.kind.value,
        district_code=data.district_code,
        min_priority=data.min_priority.value,
        config=config,
        rate_limit_per_minute=data.rate_limit_per_minute,
        active=data.active,
        created_at=now,
    )
    session.add(channel)
    session.flush()
    return channel


def update_channel(channel_id: int, changes: ChannelUpdate, *, session: Session) -> NotificationChannel:
    """Change the fields given; config keys merge into the stored ones (secrets kept unless replaced).

    The row is locked as it is read (PostgreSQL; SQLite has one writer at a time), so a Zalo token renewed
    meanwhile by a sender is not overwritten with the one read before it (see `zalo.py`). A config change
    re-seals the config's secrets: InvalidInput names those the keys cannot open (to be given again), and
    `SealingRefused` says when nothing can be sealed.
    """
    channel = session.get(NotificationChannel, channel_id, with_for_update=True)
    if channel is None:
        raise NotFound("notification channel", str(channel_id))
    given = changes.model_fields_set
    if changes.name is not None:
        _check_name_free(changes.name, session, channel_id)
        channel.name = changes.name
    if "district_code" in given:
        _check_district(changes.district_code, session)
        channel.district_code = changes.district_code
    if changes.min_priority is not None:
        channel.min_priority = changes.min_priority.value
    if changes.config is not None:
        refuse_service_keys(channel.kind, changes.config)
        merged = merge_config(channel.config, changes.config)
        refuse_unopened(merged)
        config = stored_config(parse_config(channel.kind, merged)) | service_state(merged)
        _require_sealing_for(config)
        channel.config = config
    if changes.rate_limit_per_minute is not None:
        channel.rate_limit_per_minute = changes.rate_limit_per_minute
    if changes.active is not None:
        channel.active = changes.active
    session.add(channel)
    session.flush()
    return channel


def delete_channel(channel_id: int, *, session: Session) -> None:
    """Remove a channel and its deliveries (to keep the history, deactivate it instead)."""
    session.delete(get_channel(channel_id, session=session))
    session.flush()


# --- deliveries ---------------------------------------------------------------------------------


def delivery_public(delivery: NotificationDelivery, channel: NotificationChannel) -> DeliveryPublic:
    """A delivery as the API shows it."""
    notice = delivery.payload.get("notice") if isinstance(delivery.payload, dict) else None
    notice = notice if isinstance(notice, dict) else {}
    status = DeliveryStatus(delivery.status)
    assert delivery.id is not None
    return DeliveryPublic(
        id=delivery.id,
        channel_id=delivery.channel_id,
        channel_name=channel.name,
        channel_kind=ChannelKind(channel.kind),
        recipient=delivery.recipient,
        district_code=delivery.district_code,
        problem_key=notice.get("problem_key"),
        event_kind=notice.get("kind"),
        subject=delivery.subject,
        status=status,
        status_label=status.label_vi,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
        message_key=delivery.message_key,
    )


def list_deliveries(
    *,
    session: Session,
    status: DeliveryStatus | None = None,
    channel_id: int | None = None,
    district_codes: frozenset[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[NotificationDelivery, NotificationChannel]], int]:
    """Deliveries newest first with their channel, and how many match; `district_codes` (None: all)
    keeps a district's people to their own district's deliveries."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(NotificationDelivery.status == status.value)
    if channel_id is not None:
        conditions.append(NotificationDelivery.channel_id == channel_id)
    if district_codes is not None:
        conditions.append(col(NotificationDelivery.district_code).in_(sorted(district_codes)))
    total = session.exec(select(func.count()).select_from(NotificationDelivery).where(*conditions)).one()
    query = (
        select(NotificationDelivery, NotificationChannel)
        .join(NotificationChannel, col(NotificationChannel.id) == NotificationDelivery.channel_id)
        .where(*conditions)
        .order_by(col(NotificationDelivery.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return [(d, c) for d, c in session.exec(query).all()], int(total)


def purge_deliveries(*, session: Session, before: datetime) -> int:
    """Delete sent and failed deliveries created before `before` (pending ones are kept); how many went."""
    result = session.execute(
        sa.delete(DELIVERIES).where(
            DELIVERIES.c.created_at < before,
            DELIVERIES.c.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value]),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- a test message -----------------------------------------------------------------------------


def recipient_for_test(channel: NotificationChannel, user: User, asked: str | None = None) -> str:
    """Where a test message goes: `asked`, else the channel's own first recipient, else the caller's
    address for the channel's kind; InvalidInput when there is none."""
    kind = ChannelKind(channel.kind)
    if kind is ChannelKind.WEBHOOK:
        return "webhook"
    list_key = RECIPIENT_KEYS[kind]
    if asked and asked.strip():
        # The same checks as the channel's own recipients get (and their normal form: a ZNS phone number).
        checked = parse_config(kind, {**channel.config, list_key: [asked.strip()]})
        return str(getattr(checked, list_key)[0])
    explicit = channel.config.get(list_key) or []
    person = Person(
        user.id or 0, Role(user.role), user.district_code, user.email, user.telegram_chat_id, phone=user.phone
    )
    zalo_oa = kind is ChannelKind.ZALO and channel.config.get("mode", "oa") == "oa"
    own = None if zalo_oa else person.address(kind)  # an OA knows its followers by ids we do not keep
    found = explicit[0] if explicit else own
    if not found:
        raise InvalidInput("no recipient for the test", [Problem("recipient", "give one: the channel names none")])
    return str(found)


async def send_test(
    channel: NotificationChannel,
    *,
    recipient: str,
    senders: Senders,
    now: datetime,
    language: str = "vi",
    engine: Engine | None = None,
) -> Message:
    """Send a test message through `channel` now, outside the queue; raises DeliveryError when it fails.

    `engine` keeps a Zalo token renewed on the way (default: the session's of `channel`, if attached)."""
    message = render_test(channel.name, now, language)
    key = hashlib.sha256(f"test|{channel.id}|{recipient}|{now.isoformat()}".encode()).hexdigest()
    outgoing = OutgoingMessage(key=key, subject=message.subject, text=message.text, at=now)
    await deliver(senders, channel_target(channel, engine=engine), recipient, outgoing)
    return message
