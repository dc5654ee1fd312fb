"""The storm of `bench_alerts.py`: a district-wide power cut of N devices, from health to tickets and digests.

    fleet = build_district_fleet(engine, devices=10_000)             # one district, ~100 devices a commune
    figures = asyncio.run(run_storm(engine, fleet))                  # StormFigures

The fleet stands in Huyện Cao Lộc (district 183): its 22 real communes, and synthetic communes of the same
district (codes 07001, 07002, ... named "Xã Mô Phỏng NN") until every commune holds about `per_commune`
devices. Each commune has a station controller, radio clusters depending on it, and a bulletin board in
every twelve devices, with the demo fleet's protocol mix. Rows are inserted directly (executemany).

The storm, on a virtual clock (`now` handed to every call; wall time measured around each call):

1. every device up (`HealthStore.apply` of one success each), the dispatcher drained of those changes;
2. the power cut: three sweeps of failed polls, 15 s apart, with the default policy (three failures to
   declare a device down): the third sweep writes one state change per device;
3. the dispatcher with the default rules (group_wait 60 s), one cycle every 2 s as `monitor dispatch` runs
   it (`runtime.DISPATCH_EVERY_S`), the clock advancing by each cycle's wall time plus the pause, until the
   tickets are committed and a cycle finds nothing to do;
4. notifications: a signed webhook to a local aiohttp receiver, e-mail to a local aiosmtpd server, Telegram
   to a local stand-in of the Bot API (the peers of tests/test_notify_support.py); `deliver_due` until
   nothing is due; messages counted as the peers received them.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.dispatcher import CycleReport, Dispatcher
from monitor.alerts.models import AlertProblem, NotificationChannel, NotificationDelivery
from monitor.alerts.notify import deliver_due, open_senders
from monitor.auth.models import Role
from monitor.auth.service import create_user
from monitor.db import session_scope
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.models import Commune, Device
from monitor.inventory.units import init_province, load_units
from monitor.runtime import DISPATCH_EVERY_S
from monitor.text import fold
from monitor.tickets.models import Ticket
from tests.test_notify_support import BOT_TOKEN, WEBHOOK_SECRET, smtp_config, smtp_peer, telegram_peer, webhook_peer

DISTRICT = "183"  # Huyện Cao Lộc
OTHER_DISTRICT = "189"  # Huyện Đình Lập: its officer must hear nothing of Cao Lộc's storm
SYNTHETIC_FIRST = 7001  # commune codes 07001.. : outside Lạng Sơn's real range (05971-06646)
T_UP = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
T_CUT = T_UP + timedelta(minutes=2)
POLL_EVERY = timedelta(seconds=15)
MAX_CYCLES = 400
PASSWORD = "bench-password-0123"
# Protocols as the demo fleet mixes them (monitor/inventory/demo.py): most clusters are 4G and push.
CLUSTER_MIX = (("mqtt", 0.55), ("http", 0.8), ("snmp", 0.95), ("heartbeat", 1.0))
PROFILES = {
    "mqtt": "vietloa-ip200-mqtt",
    "http": "vietloa-ip200-http",
    "snmp": "daiviet-rx-snmp",
    "heartbeat": "tts-heartbeat",
}


@dataclass(frozen=True)
class Person:
    """Someone the storm may notify (or must not)."""

    username: str
    role: Role
    district: str | None
    chat: str

    @property
    def email(self) -> str:
        return f"{self.username}@langson.gov.vn"


#: Cao Lộc's officers and technicians and the province's administrator hear of a P1 district outage (one
#: digest each, per channel); the leader and Đình Lập's officer hear nothing.
PEOPLE = (
    Person("caoloc.canbo1", Role.OFFICER, DISTRICT, "1831001"),
    Person("caoloc.canbo2", Role.OFFICER, DISTRICT, "1831002"),
    Person("caoloc.kythuat1", Role.TECHNICIAN, DISTRICT, "1832001"),
    Person("caoloc.kythuat2", Role.TECHNICIAN, DISTRICT, "1832002"),
    Person("caoloc.kythuat3", Role.TECHNICIAN, DISTRICT, "1832003"),
    Person("caoloc.kythuat4", Role.TECHNICIAN, DISTRICT, "1832004"),
    Person("sovhtt.admin", Role.ADMIN, None, "1001"),
    Person("lanhdao", Role.LEADER, None, "1002"),
    Person("dinhlap.canbo", Role.OFFICER, OTHER_DISTRICT, "1891001"),
)
EXPECTED_PEOPLE = tuple(p for p in PEOPLE if p.district == DISTRICT or p.role is Role.ADMIN)


@dataclass(frozen=True)
class Fleet:
    """The fleet built for the storm."""

    device_ids: dict[int, str]  # id -> protocol
    communes: int
    synthetic_communes: int
    build_s: float


# --- the fleet ------------------------------------------------------------------------------------


def _synthetic_communes(session: Session, count: int) -> list[Commune]:
    real = list(session.exec(select(Commune).where(Commune.district_code == DISTRICT)))
    lat = sum(c.lat or 0 for c in real) / len(real)
    lon = sum(c.lon or 0 for c in real) / len(real)
    made = []
    for n in range(1, count + 1):
        name = f"Xã Mô Phỏng {n:02d}"
        commune = Commune(
            code=f"{SYNTHETIC_FIRST + n - 1:05d}",
            name=name,
            type="Xã",
            district_code=DISTRICT,
            lat=round(lat + 0.01 * math.cos(n), 5),
            lon=round(lon + 0.01 * math.sin(n), 5),
            search_text=fold(f"{SYNTHETIC_FIRST + n - 1:05d} {name} Huyện Cao Lộc"),
        )
        session.add(commune)
        made.append(commune)
    session.flush()
    return made


def _device_row(code: str, name: str, kind: str, commune: str, protocol: str, parent_id: int | None) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "commune_code": commune,
        "parent_id": parent_id,
        "vendor": "",
        "model": "",
        "profile": PROFILES.get(protocol, "generic-mib2"),
        "protocol": protocol,
        "address": f"lang-son/{commune}/{code}/heartbeat" if protocol == "mqtt" else "",
        "port": None,
        "credentials": None,
        "token_hash": None,
        "interval_s": 60,
        "installed_on": date(2024, 6, 1),
        "lat": None,
        "lon": None,
        "active": True,
        "search_text": fold(f"{code} {name}"),
        "created_at": T_UP,
        "updated_at": T_UP,
    }


def build_district_fleet(engine: Engine, devices: int, per_commune: int = 100, seed: int = 1) -> Fleet:
    """Lạng Sơn's units and `devices` devices in district 183, about `per_commune` in each commune."""
    started = time.perf_counter()
    rng = random.Random(seed)
    table = Device.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(Commune.district_code == DISTRICT).order_by(Commune.code)))
        wanted = max(1, math.ceil(devices / per_commune))
        communes = communes[:wanted]
        synthetic = max(0, wanted - len(communes))
        communes += _synthetic_communes(session, synthetic)
        sizes = [devices // wanted + (1 if i < devices % wanted else 0) for i in range(wanted)]
        stations = [
            _device_row(f"{c.code}-ST", f"Máy điều khiển đài {c.name}", "station_controller", c.code, "snmp", None)
            for c, size in zip(communes, sizes, strict=True)
            if size
        ]
        session.execute(sa.insert(table), stations)
        station_id = dict(session.execute(sa.select(table.c.commune_code, table.c.id)).all())
        others = []
        for commune, size in zip(communes, sizes, strict=True):
            for n in range(1, size):
                if n % 12 == 11:
                    code, name, kind = f"{commune.code}-BB{n:03d}", f"Bảng tin điện tử {n}", "bulletin_board"
                    protocol, parent = ("http" if rng.random() < 0.7 else "heartbeat"), None
                else:
                    code, name, kind = f"{commune.code}-CL{n:03d}", f"Cụm loa số {n}", "radio_cluster"
                    roll = rng.random()
                    protocol = next(p for p, upto in CLUSTER_MIX if roll < upto)
                    parent = station_id[commune.code]
                others.append(_device_row(code, f"{name} {commune.name}", kind, commune.code, protocol, parent))
        if others:
            session.execute(sa.insert(table), others)
    with engine.connect() as connection:
        ids: dict[int, str] = dict(connection.execute(sa.select(table.c.id, table.c.protocol)).all())
    return Fleet(ids, wanted, synthetic, time.perf_counter() - started)


# --- people and channels --------------------------------------------------------------------------


def add_people_and_channels(engine: Engine, webhook_url: str, telegram_base: str, smtp: dict[str, Any]) -> None:
    """The users of `PEOPLE` (through `create_user`, then their Telegram chat), and three channels."""
    with session_scope(engine) as session:
        for person in PEOPLE:
            user = create_user(
                session=session,
                username=person.username,
                full_name=person.username,
                role=person.role,
                password=PASSWORD,
                district_code=person.district,
                email=person.email,
            )
            user.telegram_chat_id = person.chat  # create_user takes no chat: set as the profile page does
            session.add(user)
        channels = [
            ("Webhook Cao Lộc", "webhook", DISTRICT, {"url": webhook_url, "secret": WEBHOOK_SECRET}),
            ("E-mail", "email", None, smtp),
            ("Telegram", "telegram", None, {"api_base_url": telegram_base, "bot_token": BOT_TOKEN}),
        ]
        for name, kind, district, config in channels:
            session.add(NotificationChannel(name=name, kind=kind, district_code=district, config=config))


# --- the storm ------------------------------------------------------------------------------------


def _observations(fleet: Fleet, at: datetime, reachable: bool) -> list[Observation]:
    if reachable:
        return [Observation(i, at, p, True, 0.05) for i, p in fleet.device_ids.items()]
    return [Observation(i, at, p, False, error="timeout: no answer") for i, p in fleet.device_ids.items()]


@dataclass
class Cycle:
    """One dispatcher cycle: when (virtual), how long (wall), what it did."""

    at: datetime
    wall_s: float
    report: CycleReport


@dataclass
class StormFigures:
    """What the storm measured (see `run_storm`)."""

    devices: int
    communes: int
    synthetic_communes: int
    build_s: float = 0.0
    up_apply_s: float = 0.0
    sweeps_s: list[float] = field(default_factory=list)
    state_changes: int = 0
    cycles: list[Cycle] = field(default_factory=list)
    changes_at: datetime | None = None
    tickets_at: datetime | None = None  # virtual time of the cycle that committed the last ticket
    problems: dict[tuple[str, str], int] = field(default_factory=dict)  # (scope, status) -> count
    tickets: list[tuple[str, str, str | None]] = field(default_factory=list)  # key, scope, commune
    deliveries: dict[str, int] = field(default_factory=dict)  # channel kind -> rows created
    messages: dict[str, Counter[str]] = field(default_factory=dict)  # channel kind -> recipient -> received
    deliver_s: float = 0.0
    deliver_runs: int = 0
    delivered_rows: int = 0
    failed_rows: int = 0

    @property
    def to_ticket_s(self) -> float:
        """Wall time of the dispatcher cycles up to the one that committed the last ticket (all when none did)."""
        return sum(c.wall_s for c in self.cycles if self.tickets_at is None or c.at <= self.tickets_at)

    @property
    def claiming(self) -> list[Cycle]:
        """The cycles that claimed state changes."""
        return [c for c in self.cycles if c.report.claimed]

    @property
    def folding(self) -> list[Cycle]:
        """The cycles that opened, suppressed or grouped problems."""
        return [c for c in self.cycles if c.report.opened or c.report.suppressed]

    def after_changes_s(self, at: datetime, wall_s: float = 0.0) -> float:
        """Virtual seconds from the state changes' commit to `at` + `wall_s` (the end of that cycle)."""
        assert self.changes_at is not None
        return (at - self.changes_at).total_seconds() + wall_s

    def after_cut_s(self, at: datetime, wall_s: float = 0.0) -> float:
        """Virtual seconds from the power cut (every device dark) to `at` + `wall_s`."""
        return (at - T_CUT).total_seconds() + wall_s

    def expected_messages(self) -> dict[str, set[str]]:
        """Who should get one digest through which channel kind."""
        return {
            "webhook": {"webhook"},
            "email": {p.email for p in EXPECTED_PEOPLE},
            "telegram": {p.chat for p in EXPECTED_PEOPLE},
        }


def _drain(dispatcher: Dispatcher, now: datetime) -> None:
    for _ in range(MAX_CYCLES):
        report = dispatcher.run_once(now)
        if not (report.claimed or report.opened or report.resolved):
            return


def _pending(engine: Engine) -> int:
    with Session(engine) as session:
        query = sa.select(sa.func.count()).select_from(AlertProblem).where(col(AlertProblem.status) == "pending")
        return int(session.execute(query).scalar_one())


def power_cut(engine: Engine, fleet: Fleet, figures: StormFigures) -> datetime:
    """Steps 1-3 of the module docstring; returns the virtual time after the last dispatcher cycle."""
    store = HealthStore(engine)
    started = time.perf_counter()
    store.apply(_observations(fleet, T_UP, reachable=True), T_UP)
    figures.up_apply_s = time.perf_counter() - started
    dispatcher = Dispatcher(engine, name="bench")
    _drain(dispatcher, T_UP)

    at = T_CUT
    for _ in range(3):
        at += POLL_EVERY
        started = time.perf_counter()
        figures.state_changes += len(store.apply(_observations(fleet, at, reachable=False), at))
        figures.sweeps_s.append(time.perf_counter() - started)
    # The third sweep's state changes are committed once its apply returns: the dispatcher starts then.
    now = figures.changes_at = at + timedelta(seconds=figures.sweeps_s[-1])
    for _ in range(MAX_CYCLES):
        started = time.perf_counter()
        report = dispatcher.run_once(now)
        wall = time.perf_counter() - started
        figures.cycles.append(Cycle(now, wall, report))
        if report.tickets:
            figures.tickets_at = now
        idle = not (report.claimed or report.opened or report.resolved or report.suppressed)
        if idle and figures.tickets_at is not None and _pending(engine) == 0:
            break
        now += timedelta(seconds=wall + DISPATCH_EVERY_S)
    with Session(engine) as session:
        rows = session.execute(
            sa.select(col(AlertProblem.scope), col(AlertProblem.status), sa.func.count()).group_by(
                col(AlertProblem.scope), col(AlertProblem.status)
            )
        )
        figures.problems = {(scope, status): int(n) for scope, status, n in rows}
        tickets = session.exec(select(Ticket).where(col(Ticket.created_at) > T_CUT).order_by(col(Ticket.id)))
        figures.tickets = [(t.problem_key, t.scope, t.commune_code) for t in tickets]
    return now


async def deliver_everything(engine: Engine, now: datetime, figures: StormFigures) -> None:
    """Run `deliver_due` until a run claims nothing (step 4)."""
    started = time.perf_counter()
    async with open_senders() as senders:
        for _ in range(100):
            report = await deliver_due(engine=engine, now=now, senders=senders)
            if not report.claimed:
                break
            figures.deliver_runs += 1
            figures.delivered_rows += report.sent
            figures.failed_rows += report.failed + report.retrying
    figures.deliver_s = time.perf_counter() - started


def _deliveries_by_kind(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            sa.select(col(NotificationChannel.kind), sa.func.count())
            .select_from(NotificationDelivery)
            .join(NotificationChannel, col(NotificationChannel.id) == NotificationDelivery.channel_id)
            .group_by(col(NotificationChannel.kind))
        )
        return {kind: int(n) for kind, n in rows}


async def run_storm(engine: Engine, fleet: Fleet) -> StormFigures:
    """The whole storm on one database, with its own local webhook, SMTP and Telegram peers."""
    figures = StormFigures(len(fleet.device_ids), fleet.communes, fleet.synthetic_communes, fleet.build_s)
    async with webhook_peer() as hook, telegram_peer() as bot:
        with smtp_peer() as smtp:
            await asyncio.to_thread(add_people_and_channels, engine, hook.url, bot.base_url, smtp_config(smtp))
            now = await asyncio.to_thread(power_cut, engine, fleet, figures)
            figures.deliveries = await asyncio.to_thread(_deliveries_by_kind, engine)
            await deliver_everything(engine, now, figures)
            await asyncio.sleep(0.2)  # the SMTP server's thread hands over its last message
            figures.messages = {
                "webhook": Counter("webhook" for r in hook.received if r.signature_ok),
                "email": Counter(rcpt for rcpts, _ in smtp.mailbox.messages for rcpt in rcpts),
                "telegram": Counter(str(m["chat_id"]) for m in bot.messages),
            }
    return figures
