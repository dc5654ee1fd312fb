"""Reminders of the annual results report's deadlines, through the notification channels.

    send_report_reminders(engine, utcnow(), settings)     # the background job, about once an hour

From `report_reminder_days` before a district's due day (15 December by default) until that day, each
district that has not sent its signed report hears once at stage `ahead`, and once more on the due day
(stage `due`); its officers hear it through the channels that would reach them, plus the webhooks and the
explicit recipients of its district's and the province-wide channels. The same runs before the province's
own due day (20 December) for the province's administrators, listing the districts still missing, while
the province's own report is not in.

A reminder is not a problem event: it is written to the same outbox (`notification_deliveries`) with its
own subject and body and no `notice` in its payload, so the delivery worker sends it like any message
(and lists its subject when it folds into a digest of problem events). Once per (year, district, stage)
is by construction: a `report_reminders` row with a unique (year, target, stage) is inserted in the same
transaction as the deliveries, `ON CONFLICT DO NOTHING`; a second run or a second process inserts nothing
and queues nothing. The deliveries' own idempotency keys guard the outbox the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.alerts.models import NotificationChannel
from monitor.alerts.notify.routing import WEBHOOK_RECIPIENT, ChannelRule, Person, at_least
from monitor.alerts.notify.templates import FOOTER, SUBJECT_MAX, one_line, shorten
from monitor.auth.models import Role, User
from monitor.config import Settings
from monitor.i18n import N_, format_date, local_date, translator
from monitor.priority import Priority
from monitor.reports.submission import PROVINCE, Deadlines, ReminderStage, submission_status

DELIVERIES = SQLModel.metadata.tables["notification_deliveries"]
REMINDERS = SQLModel.metadata.tables["report_reminders"]
#: How urgent a reminder is, for channels that carry only the more urgent messages (`min_priority`).
REMINDER_PRIORITY = Priority.P3

DISTRICT_SUBJECT = N_("Nhắc nộp báo cáo kết quả năm {year}: hạn {due}, {district} chưa nộp.")
PROVINCE_SUBJECT = N_("Nhắc gửi báo cáo kết quả năm {year} của tỉnh: hạn {due}, còn {missing} huyện chưa nộp.")
DAYS_LEFT = N_("Còn {days} ngày đến hạn.")
DUE_TODAY = N_("Hôm nay là ngày cuối cùng của hạn nộp.")
DISTRICT_HOW = N_(
    "Xin gửi bản báo cáo đã ký (PDF hoặc DOCX) lên hệ thống giám sát: "
    "POST /api/v1/reports/annual/{year}/submissions, hoặc lệnh `monitor report submit`."
)
PROVINCE_MISSING = N_("Các huyện chưa nộp báo cáo ({count}):")
PROVINCE_ALL_IN = N_("Tất cả các huyện đã nộp báo cáo.")
PROVINCE_HOW = N_("Báo cáo của tỉnh (đã ký) gửi lên hệ thống với huyện = {province}.")


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder to queue: the report of `year` of `district_code` (None: the province's), at `stage`."""

    year: int
    district_code: str | None
    district_name: str
    stage: ReminderStage
    due: date
    today: date
    #: For the province's reminder: the names of the districts that have not sent theirs.
    missing: tuple[str, ...] = field(default=())

    @property
    def target(self) -> str:
        return self.district_code or PROVINCE

    def render(self, language: str) -> tuple[str, str]:
        """Subject (one line) and plain-text body, in Vietnamese unless the catalogue has `language`."""
        _ = translator(language).gettext
        due = format_date(self.due)
        if self.district_code is None:
            subject = _(PROVINCE_SUBJECT).format(year=self.year, due=due, missing=len(self.missing))
        else:
            subject = _(DISTRICT_SUBJECT).format(year=self.year, due=due, district=one_line(self.district_name))
        days = (self.due - self.today).days
        lines = [subject, "", _(DUE_TODAY) if days <= 0 else _(DAYS_LEFT).format(days=days)]
        if self.district_code is None:
            if self.missing:
                lines += [_(PROVINCE_MISSING).format(count=len(self.missing))]
                lines += [f"• {one_line(name)}" for name in self.missing]
            else:
                lines.append(_(PROVINCE_ALL_IN))
            lines.append(_(PROVINCE_HOW).format(province=PROVINCE))
        else:
            lines.append(_(DISTRICT_HOW).format(year=self.year))
        lines += ["", _(FOOTER)]
        return shorten(one_line(subject), SUBJECT_MAX), "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """What the delivery row keeps of it (the worker never reads it: it sends the subject and body)."""
        return {
            "kind": "report_reminder",
            "year": self.year,
            "district_code": self.district_code,
            "district_name": self.district_name,
            "stage": self.stage.value,
            "due": self.due.isoformat(),
            "missing": list(self.missing),
        }


def reminder_key(reminder: Reminder, channel_id: int, recipient: str) -> str:
    """The delivery's idempotency key: the report, the stage, the channel and the recipient."""
    text = f"report-reminder|{reminder.year}|{reminder.target}|{reminder.stage.value}|{channel_id}|{recipient}"
    return hashlib.sha256(text.encode()).hexdigest()


def _stage(today: date, due: date, lead_days: int) -> ReminderStage | None:
    if today == due:
        return ReminderStage.DUE
    if due - timedelta(days=lead_days) <= today < due:
        return ReminderStage.AHEAD
    return None


def due_reminders(session: Session, today: date, deadlines: Deadlines) -> list[Reminder]:
    """The reminders `today` (Vietnam time) calls for, whether or not they were queued already."""
    found: list[Reminder] = []
    # A due day early in January has its lead time in the December before: look at the next year too.
    for year in (today.year, today.year + 1):
        district_stage = _stage(today, deadlines.district_due(year), deadlines.reminder_days)
        province_stage = _stage(today, deadlines.province_due(year), deadlines.reminder_days)
        if district_stage is None and province_stage is None:
            continue
        rows = submission_status(session, year, district_codes=None, today=today, deadlines=deadlines)
        waiting = [row for row in rows if row.district_code is not None and row.current is None]
        if district_stage is not None:
            found += [Reminder(year, row.district_code, row.name, district_stage, row.due, today) for row in waiting]
        province = next(row for row in rows if row.district_code is None)
        if province_stage is not None and province.current is None:
            missing = tuple(row.name for row in waiting)
            found.append(Reminder(year, None, province.name, province_stage, province.due, today, missing))
    return found


# --- who hears it -------------------------------------------------------------------------------


def _channels(session: Session) -> list[ChannelRule]:
    query = select(NotificationChannel).where(col(NotificationChannel.active)).order_by(col(NotificationChannel.id))
    return [
        ChannelRule.of(
            id=c.id or 0,
            kind=c.kind,
            district_code=c.district_code,
            min_priority=c.min_priority,
            active=c.active,
            config=c.config,
        )
        for c in session.exec(query)
    ]


def _people(session: Session) -> list[Person]:
    query = select(User).where(col(User.active), col(User.role).in_([Role.ADMIN.value, Role.OFFICER.value]))
    return [
        Person(u.id or 0, Role(u.role), u.district_code, u.email, u.telegram_chat_id, u.language, u.active)
        for u in session.exec(query)
    ]


def _concerned(person: Person, reminder: Reminder) -> bool:
    # A district's report concerns its officers; the province's own, its administrators.
    if reminder.district_code is None:
        return person.role is Role.ADMIN
    return person.role is Role.OFFICER and person.district_code == reminder.district_code


def recipients(
    reminder: Reminder, channels: Sequence[ChannelRule], people: Sequence[Person]
) -> list[tuple[int, str, str]]:
    """(channel id, recipient, language) of every delivery of `reminder`, each recipient once per channel:
    the channels of its district and of the whole province (a province reminder: the latter only) that
    carry P3 messages; webhooks and explicit recipients as named, otherwise the people it concerns."""
    found = []
    for channel in channels:
        if not channel.active or not at_least(REMINDER_PRIORITY, channel.min_priority):
            continue
        if channel.district_code is not None and channel.district_code != reminder.district_code:
            continue
        if channel.kind is ChannelKind.WEBHOOK:
            found.append((channel.id, WEBHOOK_RECIPIENT, channel.language))
            continue
        if channel.explicit:
            pairs = [(r.strip(), channel.language) for r in channel.explicit if r.strip()]
        else:
            pairs = [
                (address, "en" if person.language == "en" else "vi")
                for person in sorted(people, key=lambda p: p.id)
                if person.active and _concerned(person, reminder) and (address := person.address(channel.kind))
            ]
        seen: set[str] = set()
        for recipient, language in pairs:
            if recipient.casefold() not in seen:  # addresses differing only in case are one mailbox
                seen.add(recipient.casefold())
                found.append((channel.id, recipient, language))
    return found


# --- queue --------------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return postgresql.insert if session.connection().dialect.name == "postgresql" else sqlite.insert


def queue_reminder(
    reminder: Reminder, *, session: Session, channels: Sequence[ChannelRule], people: Sequence[Person], now: datetime
) -> int:
    """Queue `reminder`'s deliveries unless it was queued before; how many were queued. The caller commits.

    Nothing is recorded when no channel would carry it, so it goes out once a channel is set up (while
    the reminder is still due).
    """
    routes = recipients(reminder, channels, people)
    if not routes:
        return 0
    insert = _insert(session)
    claimed = session.execute(
        insert(REMINDERS)
        .values(year=reminder.year, target=reminder.target, stage=reminder.stage.value, deliveries=0, created_at=now)
        .on_conflict_do_nothing(index_elements=["year", "target", "stage"])
        .returning(REMINDERS.c.id)
    ).scalar_one_or_none()
    if claimed is None:  # queued already, by an earlier run or another process
        return 0
    rendered: dict[str, tuple[str, str]] = {}
    rows = []
    for channel_id, recipient, language in routes:
        if language not in rendered:
            rendered[language] = reminder.render(language)
        subject, body = rendered[language]
        key = reminder_key(reminder, channel_id, recipient)
        rows.append(
            {
                "channel_id": channel_id,
                "recipient": recipient,
                "idempotency_key": key,
                "subject": subject,
                "body": body,
                "payload": {"reminder": reminder.to_json(), "language": language},
                "district_code": reminder.district_code,
                "message_key": None,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": now,
                "created_at": now,
                "sent_at": None,
            }
        )
    created = (
        session.execute(
            insert(DELIVERIES)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(DELIVERIES.c.id)
        )
        .scalars()
        .all()
    )
    session.execute(sa.update(REMINDERS).where(REMINDERS.c.id == claimed).values(deliveries=len(created)))
    return len(created)


def send_report_reminders(engine: Engine, now: datetime, settings: Settings) -> dict[str, int]:
    """Queue the reminders due `now` that were not queued yet; the deliveries queued, by target.

    Each reminder is its own transaction, so one that fails (the database away) leaves the others done
    and is tried again at the next run.
    """
    today = local_date(now)
    deadlines = Deadlines.of(settings)
    queued: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as session:
        reminders = due_reminders(session, today, deadlines)
        if not reminders:
            return queued
        channels, people = _channels(session), _people(session)
        session.rollback()  # end the reading transaction: each reminder below writes in its own
        for reminder in reminders:
            count = queue_reminder(reminder, session=session, channels=channels, people=people, now=now)
            session.commit()
            if count:
                queued[reminder.target] = count
    return queued
