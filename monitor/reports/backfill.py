"""A plausible year behind the demo: outages, tickets with repairs and costs, training sessions.

`backfill_year` writes, for every device of a fresh demo database, a year of state history (as state
changes already handled and as spans), opens and works a repair ticket through the ticket service for each
outage that lasted an hour or more (acknowledged, started, resolved by the district's technician or on
recovery, some with parts and costs), records each district's training sessions, and gives each district
its inspection schedules (radio clusters once a year per commune, bulletin boards each quarter) whose
planned tickets are opened by the planned-work job and mostly done on time, some late, a few left overdue.
The same seed gives the same year. Nothing here runs outside the demo: production history comes from the collectors.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.auth.models import User
from monitor.health.models import StateChange
from monitor.i18n import LOCAL_ZONE, local_date
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.reports.models import StateSpan
from monitor.reports.training import AttendeeRole, TrainingAttendee, TrainingSession
from monitor.tickets import service
from monitor.tickets.choices import ProblemScope
from monitor.tickets.lifecycle import ProblemReport
from monitor.tickets.models import Ticket
from monitor.tickets.planned import occurrence_due
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import InspectionScheduleCreate

log = logging.getLogger(__name__)

SPANS = StateSpan.__table__  # type: ignore[attr-defined]
CHANGES = StateChange.__table__  # type: ignore[attr-defined]
REASON = "lịch sử mô phỏng của bản demo"
#: Outages a year per device, by kind: a cluster on a pole in the mountains fails more than a controller indoors.
OUTAGES_PER_YEAR = {"radio_cluster": 2.5, "bulletin_board": 2.0, "station_controller": 1.0, "gateway": 1.5}
PARTS = (
    ("Bộ nguồn 12V", 650_000),
    ("Bộ khuếch đại 60W", 1_850_000),
    ("Loa nén 30W", 420_000),
    ("Mô-đun 4G", 980_000),
    ("Dây tín hiệu", 150_000),
    ("Màn hình LED P4", 4_200_000),
)
TOPICS = (
    "Vận hành cụm loa truyền thanh ứng dụng CNTT-VT",
    "Biên tập tin bài cho đài truyền thanh cơ sở",
    "Quản lý nội dung bảng tin điện tử công cộng",
    "Xử lý sự cố thường gặp của cụm thu phát thanh IP",
)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    devices: int
    outages: int
    tickets: int
    training_sessions: int
    inspections: int = 0


def _periods(
    rng: random.Random, kind: str, start: datetime, end: datetime, factor: float
) -> list[tuple[datetime, datetime, str]]:
    """A device's year: its outages, degraded spells and unknown gaps, not overlapping, in order."""
    seconds = (end - start).total_seconds()
    events = []
    for state, per_year in (("down", OUTAGES_PER_YEAR.get(kind, 1.0) * factor), ("degraded", 1.5), ("unknown", 0.7)):
        for _ in range(_poisson(rng, per_year * seconds / (365 * 86_400))):
            begin = start + timedelta(seconds=rng.uniform(0, seconds - 3 * 86_400))
            if state == "down":
                roll = rng.random()
                hours = (
                    rng.lognormvariate(0.2, 0.8)
                    if roll < 0.65
                    else rng.uniform(6, 30)
                    if roll < 0.95
                    else rng.uniform(48, 144)
                )
            else:
                hours = rng.uniform(0.3, 4) if state == "degraded" else rng.uniform(0.1, 0.6)
            events.append((begin, begin + timedelta(hours=hours), state))
    kept, last_end = [], start
    for begin, finish, state in sorted(events):
        if begin > last_end + timedelta(minutes=5):
            kept.append((begin.replace(microsecond=0), finish.replace(microsecond=0), state))
            last_end = finish
    return kept


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def backfill_year(session: Session, *, seed: int, now: datetime, days: int = 365) -> BackfillResult:
    """Write a year of history for a fresh demo database (nothing when its spans already exist)."""
    if session.exec(select(sa.func.count()).select_from(StateSpan)).one():
        return BackfillResult(0, 0, 0, 0)
    rng = random.Random(seed * 7919 + 13)
    start = (now - timedelta(days=days)).replace(microsecond=0)
    end = now - timedelta(hours=2)
    connection = session.connection()
    connection.execute(sa.update(Device).values(created_at=start - timedelta(days=1)))
    devices = session.exec(select(Device).where(col(Device.active).is_(True)).order_by(col(Device.id))).all()
    district_of = {c.code: c.district_code for c in session.exec(select(Commune))}
    factor = {code: rng.uniform(0.5, 1.8) for code in sorted(set(district_of.values()))}
    technicians = _technicians(session)
    spans: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    outages: list[tuple[Device, datetime, datetime]] = []
    for device in devices:
        assert device.id is not None
        previous, at = "up", start
        for begin, finish, state in _periods(rng, device.kind, start, end, factor[district_of[device.commune_code]]):
            spans.append({"device_id": device.id, "state": "up", "started_at": at, "ended_at": begin})
            spans.append({"device_id": device.id, "state": state, "started_at": begin, "ended_at": finish})
            for old, new, when in (("up", state, begin), (state, "up", finish)):
                changes.append(_change(device.id, old, new, when))
            if state == "down":
                outages.append((device, begin, finish))
            previous, at = "up", finish
        spans.append({"device_id": device.id, "state": previous, "started_at": at, "ended_at": None})
    for chunk in range(0, len(spans), 5000):
        connection.execute(SPANS.insert(), spans[chunk : chunk + 5000])
    for chunk in range(0, len(changes), 5000):
        connection.execute(CHANGES.insert(), changes[chunk : chunk + 5000])
    tickets = _tickets(session, rng, outages, technicians, district_of, now)
    sessions = _training(session, rng, district_of, start, now)
    inspections = _inspections(session, rng, technicians, district_of, start, now)
    log.info(
        "demo history: %d devices, %d outages, %d tickets, %d training sessions, %d planned inspections",
        len(devices),
        len(outages),
        tickets,
        sessions,
        inspections,
    )
    return BackfillResult(len(devices), len(outages), tickets, sessions, inspections)


def _change(device_id: int, old: str, new: str, at: datetime) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "old_state": old,
        "new_state": new,
        "at": at,
        "reason": REASON,
        "faults": ["offline"] if new == "down" else [],
        "faults_added": ["offline"] if new == "down" else [],
        "faults_removed": ["offline"] if old == "down" else [],
        "flapping": False,
        "created_at": at,
        "claimed_by": "demo-history",
        "claimed_at": at,
        "processed_at": at,
        "spanned_at": at,
    }


def _technicians(session: Session) -> dict[str, int]:
    """A technician (or else an officer) of each district, who works its tickets."""
    out: dict[str, int] = {}
    for user in session.exec(select(User).where(col(User.district_code).is_not(None)).order_by(col(User.role).desc())):
        if user.district_code is not None and user.id is not None:
            out.setdefault(user.district_code, user.id)
    return out


def _tickets(
    session: Session,
    rng: random.Random,
    outages: list[tuple[Device, datetime, datetime]],
    technicians: dict[str, int],
    district_of: dict[str, str],
    now: datetime,
) -> int:
    """Open and work a ticket for each outage of an hour or more, through the ticket service."""
    policy = TicketPolicy()
    count = 0
    for device, begin, finish in sorted(outages, key=lambda item: item[1]):
        if finish - begin < timedelta(hours=1) or device.kind == "station_controller":
            continue
        opened_at = begin + timedelta(minutes=rng.uniform(3, 10))
        report = ProblemReport(
            scope=ProblemScope.DEVICE,
            scope_code=device.code,
            kind="offline",
            title=f"Mất kết nối: {device.name}"[:200],
            device_id=device.id,
            commune_code=device.commune_code,
            priority=Priority.P2,
            occurred_at=begin,
        )
        ticket = service.open_or_update_ticket(report, session=session, now=opened_at, policy=policy).ticket
        actor = technicians.get(district_of[device.commune_code])
        acknowledged = opened_at + timedelta(minutes=rng.uniform(5, 240))
        if acknowledged < finish and rng.random() < 0.9:
            service.transition(
                ticket.code, "acknowledge", actor=actor, session=session, now=acknowledged, policy=policy
            )
            started = acknowledged + timedelta(minutes=rng.uniform(10, 180))
            if started < finish:
                service.transition(ticket.code, "start", actor=actor, session=session, now=started, policy=policy)
        if rng.random() < 0.8 and actor is not None:
            repaired = finish + timedelta(minutes=rng.uniform(0, 20))
            service.transition(
                ticket.code,
                "resolve",
                actor=actor,
                note="Đã khắc phục tại chỗ",
                session=session,
                now=repaired,
                policy=policy,
            )
        else:
            service.resolve_problem(ticket.problem_key, session=session, recovered_at=finish, policy=policy)
        if finish - begin > timedelta(hours=6) and rng.random() < 0.6:
            parts = rng.sample(PARTS[:5] if device.kind == "radio_cluster" else PARTS[3:], k=rng.randint(1, 2))
            labour = rng.choice((200_000, 300_000, 500_000))
            service.record_costs(
                ticket.code,
                sum(p for _, p in parts),
                labour,
                [n for n, _ in parts],
                actor=actor,
                session=session,
                now=finish + timedelta(days=rng.uniform(0.5, 5)),
            )
        refreshed = session.get(Ticket, ticket.id)
        if (
            refreshed is not None
            and refreshed.resolved_at is not None
            and refreshed.resolved_at > refreshed.resolve_due_at
        ):
            refreshed.sla_breached, refreshed.breached_at = True, refreshed.resolve_due_at  # as the breach job marks it
            session.add(refreshed)
        count += 1
        if count % 200 == 0:
            service.close_resolved(opened_at, session=session, policy=policy)
            session.flush()
    service.close_resolved(now, session=session, policy=policy)
    return count


def _training(session: Session, rng: random.Random, district_of: dict[str, str], start: datetime, now: datetime) -> int:
    """Each district's training sessions of the year, attended by most of its communes' officers."""
    communes: dict[str, list[str]] = defaultdict(list)
    for commune, district in sorted(district_of.items()):
        communes[district].append(commune)
    first, last = local_date(start), local_date(now) - timedelta(days=7)
    count = 0
    for district, codes in sorted(communes.items()):
        remaining = list(codes)
        rng.shuffle(remaining)
        for index in range(rng.randint(1, 3)):
            held_on = first + timedelta(days=rng.randint(0, max(0, (last - first).days)))
            record = TrainingSession(
                held_on=held_on,
                district_code=district,
                topic=TOPICS[(index + count) % len(TOPICS)],
                organiser="Phòng Văn hóa - Thông tin" if index else "Sở Thông tin và Truyền thông",
                hours=rng.choice((4.0, 8.0, 16.0)),
                created_at=now,
            )
            session.add(record)
            session.flush()
            take = remaining[: max(1, int(len(remaining) * rng.uniform(0.3, 0.6)))]
            remaining = remaining[len(take) :]
            for commune in take:
                assert record.id is not None
                session.add(
                    TrainingAttendee(
                        session_id=record.id,
                        name=_name(rng),
                        commune_code=commune,
                        role=AttendeeRole.COMMUNE_OFFICER.value,
                    )
                )
            count += 1
    session.flush()
    return count


#: Each district's inspection schedules: (name, kind of device, one ticket per, every how many months).
SCHEDULES = (
    ("Kiểm tra định kỳ cụm loa", "radio_cluster", ProblemScope.COMMUNE, 12),
    ("Vệ sinh, kiểm tra bảng tin điện tử", "bulletin_board", ProblemScope.DEVICE, 3),
)
INSPECTION_NOTES = (
    "Đã kiểm tra, vệ sinh loa và siết lại đầu nối",
    "Đã kiểm tra nguồn, tiếp địa và kết nối",
    "Đã vệ sinh màn hình, cập nhật phần mềm bộ phát",
)


def _inspections(
    session: Session,
    rng: random.Random,
    technicians: dict[str, int],
    district_of: dict[str, str],
    start: datetime,
    now: datetime,
) -> int:
    """Each district's inspection schedules and the planned tickets they opened over the year, worked by its
    technician: most done before their due day, some late, a few still open past it."""
    policy = TicketPolicy()
    first, today = local_date(start), local_date(now)
    length = (today - first).days
    lead = max(1, min(30, length // 4))  # a short demo history still gets a few occurrences
    schedules = []
    for district in sorted(set(district_of.values())):
        for name, kind, per, months in SCHEDULES:
            # the first occurrence opens inside the history, so its whole lead time is seen
            due = first + timedelta(days=lead + rng.randint(0, max(0, min(length - lead, months * 30) - 1)))
            data = InspectionScheduleCreate(
                name=name,
                description="Kế hoạch kiểm tra, bảo dưỡng định kỳ hệ thống truyền thanh cơ sở",
                district_code=district,
                device_kind=kind,
                per=per,
                every_months=months,
                first_due_on=due,
                lead_days=lead,
            )
            schedules.append(service.create_schedule(data, session=session, now=start))
    opening_days: set[date] = set()
    for schedule in schedules:
        occurrence = 0
        while (due := occurrence_due(schedule, occurrence)) - timedelta(days=lead) <= today:
            opening_days.add(due - timedelta(days=lead))
            occurrence += 1
    opened: list[Ticket] = []
    for day in sorted(opening_days):  # as the daily job would have, each morning an occurrence opens
        at = datetime.combine(day, time(7, 30), tzinfo=LOCAL_ZONE).astimezone(start.tzinfo)
        opened += service.open_planned_tickets(day, session=session, policy=policy, now=min(at, now))
    late_by_now = now - timedelta(hours=1)
    for ticket in opened:
        actor = technicians.get(ticket.district_code or "")  # planned tickets always have their district
        due_at, roll = ticket.resolve_due_at, rng.random()
        if roll < 0.78:  # done in the last weeks before its due day
            done = due_at - timedelta(hours=rng.uniform(8, 24 * max(1, min(lead, 20))))
        elif roll < 0.93:  # done late
            done = due_at + timedelta(hours=rng.uniform(6, 24 * 25))
        else:
            continue  # not done yet: overdue once its day has passed
        done = max(done, ticket.created_at + timedelta(hours=2))
        if done > late_by_now:
            continue
        started = done - timedelta(hours=rng.uniform(1, 4))
        service.transition(
            ticket.code, "start", actor=actor, session=session, now=max(started, ticket.created_at), policy=policy
        )
        note = rng.choice(INSPECTION_NOTES)
        service.transition(ticket.code, "resolve", actor=actor, note=note, session=session, now=done, policy=policy)
        if done > due_at:
            ticket.sla_breached, ticket.breached_at = True, due_at  # as the breach job marks it
    for ticket in opened:  # still open past the due day: as the breach job marks it
        if ticket.resolved_at is None and ticket.resolve_due_at < now:
            ticket.sla_breached, ticket.breached_at = True, ticket.resolve_due_at
    service.close_resolved(now, session=session, policy=policy)
    session.flush()
    return len(opened)


_FAMILY = ("Hoàng", "Nông", "Lường", "Vi", "Lý", "Hà", "Đinh", "Lộc", "Triệu", "Nguyễn")
_GIVEN = (
    "Văn An",
    "Thị Bình",
    "Văn Cường",
    "Thị Dung",
    "Văn Hải",
    "Thị Hoa",
    "Văn Khánh",
    "Thị Lan",
    "Văn Minh",
    "Thị Nga",
)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}"
