"""The dispatcher: claims state changes, keeps problems in step with health, and acts on them quietly.

Level-based, so it is idempotent: a claimed state change only says *which* devices to look at again;
what a device's problems are comes from its current health (`device_health.faults`, which holds
`offline` when it is down). A lost or repeated state change therefore cannot leave a wrong problem.

A new problem is first `pending` for `group_wait`, so that a storm is seen whole. When it is due:

1. muted by an open maintenance window -> `suppressed` (maintenance); it opens when the window ends;
2. a large share of its commune has the same problem -> one commune problem, the devices `suppressed`
   (grouped) under it; many devices of a district -> one district problem above the communes;
3. an `offline` device whose parent (gateway, station) is down -> `suppressed` (parent_down);
4. otherwise `active`: a ticket through `open_or_update_ticket` (if its rule says so) and notifications
   queued in the same transaction (a storm then goes out as one digest per recipient).

Suppressed problems are looked at again each cycle: when what explained them is gone and the problem
is still there, they become pending again. Grouping suppresses creation, never resolution: a problem
resolves as soon as its cause is gone, and its ticket with it.

Several dispatchers may run: state changes are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL
(SQLite has one writer at a time), and the evaluation of problems runs under an advisory lock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.alertmanager import expire_stale
from monitor.alerts.choices import ProblemSource, ProblemStatus, SuppressionReason
from monitor.alerts.maintenance import Subject, muting, open_windows
from monitor.alerts.models import AlertProblem
from monitor.alerts.notify import ProblemEvent, ProblemEventKind, enqueue_many, event_from_problem
from monitor.alerts.rules import AlertRules
from monitor.db import begin_write, utcnow
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState, fault_label
from monitor.i18n import translator
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource
from monitor.tickets.lifecycle import (
    ProblemReport,
    close_resolved,
    mark_breaches,
    open_or_update_tickets,
    problem_key,
    reconcile,
    resolve_problem,
)
from monitor.tickets.policy import TicketPolicy

log = logging.getLogger(__name__)
OFFLINE = "offline"
UNRESOLVED = col(AlertProblem.status) != ProblemStatus.RESOLVED.value
EVALUATION_LOCK = 7_311_001  # PostgreSQL advisory lock id of the evaluation step
_stored = translator("vi").gettext  # problem and ticket titles are stored, so always in Vietnamese


@dataclass
class CycleReport:
    """What one dispatcher cycle did."""

    claimed: int = 0
    opened: int = 0
    resolved: int = 0
    suppressed: int = 0
    grouped: int = 0
    tickets: list[str] = field(default_factory=list)
    events: list[ProblemEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _DeviceFacts:
    device: Device
    commune: Commune
    state: str
    faults: frozenset[str]
    flapping: bool


def _subject(problem: Any, kinds: dict[int | None, str]) -> Subject:
    """What a maintenance window may cover, of a problem (an AlertProblem or a row with its columns)."""
    device_code = problem.scope_code if problem.scope == ProblemScope.DEVICE.value else None
    return Subject(device_code, problem.commune_code, problem.district_code, kinds.get(problem.device_id))


class Dispatcher:
    """Turns state changes into problems, tickets and notifications (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        rules: AlertRules | None = None,
        ticket_policy: TicketPolicy | None = None,
        name: str = "dispatcher",
        notify: bool = True,
        batch: int = 5000,
    ) -> None:
        self.engine = engine
        self.rules = rules or AlertRules()
        self.ticket_policy = ticket_policy or TicketPolicy()
        self.name = name
        self.notify = notify
        self.batch = batch
        self._last_reconcile: datetime | None = None

    # --- one cycle ------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> CycleReport:
        """Claim pending state changes, bring problems in step, act on due ones; one transaction."""
        now = now or utcnow()
        report = CycleReport()
        with Session(self.engine, expire_on_commit=False) as session:
            begin_write(session.connection())
            if not self._evaluation_lock(session):
                return report  # another dispatcher is evaluating; the state changes wait for the next cycle
            touched = self._claim(session, now, report)
            self._sync_devices(session, touched, now, report)
            self._recheck_suppressed(session, now)
            self._activate_due(session, now, report)
            self._update_groups(session, now, report)
            if self.notify and report.events:
                # In the same transaction: a delivery exists exactly when its problem change does.
                enqueue_many(report.events, session=session, now=now)
            session.commit()
        if self._last_reconcile is None or now - self._last_reconcile >= self.rules.reconcile_every:
            self.reconcile_tickets(now)
            self._last_reconcile = now
        return report

    def _evaluation_lock(self, session: Session) -> bool:
        if session.connection().dialect.name != "postgresql":
            return True  # BEGIN IMMEDIATE already made this the only writer
        locked = session.connection().execute(sa.select(sa.func.pg_try_advisory_xact_lock(EVALUATION_LOCK)))
        return bool(locked.scalar())

    def _claim(self, session: Session, now: datetime, report: CycleReport) -> list[int]:
        query = (
            select(StateChange)
            .where(col(StateChange.processed_at).is_(None))
            .order_by(col(StateChange.id))
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        changes = list(session.exec(query))
        for change in changes:
            change.claimed_by, change.claimed_at, change.processed_at = self.name, now, now
            session.add(change)
        report.claimed = len(changes)
        return sorted({c.device_id for c in changes})

    def _facts(self, session: Session, device_ids: Iterable[int]) -> dict[int, _DeviceFacts]:
        ids = list(device_ids)
        facts: dict[int, _DeviceFacts] = {}
        for start in range(0, len(ids), 500):
            rows = session.exec(
                select(Device, Commune, DeviceHealthRow)
                .join(Commune, col(Commune.code) == Device.commune_code)
                .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id, isouter=True)
                .where(col(Device.id).in_(ids[start : start + 500]))
            )
            for device, commune, health in rows:
                assert device.id is not None
                facts[device.id] = _DeviceFacts(
                    device,
                    commune,
                    health.state if health is not None else DeviceState.UNKNOWN.value,
                    frozenset(health.faults) if health is not None and device.active else frozenset(),
                    bool(health.flapping) if health is not None else False,
                )
        return facts

    # --- device problems follow device health -------------------------------------------------

    def _sync_devices(self, session: Session, device_ids: Sequence[int], now: datetime, report: CycleReport) -> None:
        """Bring the problems of the claimed devices in step with their health.

        Their unresolved problems are read with one query per 500 devices and the new ones written with one
        INSERT: a storm claims thousands of devices a cycle, and a query, an object and a flush per device
        cost more than a second per thousand.
        """
        if not device_ids:
            return
        facts = self._facts(session, device_ids)
        existing: dict[int, list[AlertProblem]] = defaultdict(list)
        for start in range(0, len(device_ids), 500):
            for problem in session.exec(
                select(AlertProblem).where(
                    col(AlertProblem.device_id).in_(device_ids[start : start + 500]),
                    AlertProblem.scope == ProblemScope.DEVICE.value,
                    UNRESOLVED,
                )
            ):
                existing[problem.device_id or 0].append(problem)
        new_rows: list[dict[str, Any]] = []
        for device_id in device_ids:
            self._sync_device(session, facts.get(device_id), existing.get(device_id, []), now, report, new_rows)
        session.flush()
        if new_rows:
            session.execute(sa.insert(AlertProblem), new_rows)

    def _sync_device(
        self,
        session: Session,
        facts: _DeviceFacts | None,
        problems: list[AlertProblem],
        now: datetime,
        report: CycleReport,
        new_rows: list[dict[str, Any]],
    ) -> None:
        existing = {p.kind: p for p in problems}
        wanted = facts.faults if facts is not None else frozenset()
        for kind, problem in existing.items():
            if kind in wanted:
                problem.flapping = facts.flapping if facts is not None else False
                session.add(problem)
            elif facts is not None and facts.flapping and kind == OFFLINE and problem.status == "active":
                problem.flapping = True  # a flapping device keeps one problem, not one per flap
                session.add(problem)
            else:
                self._resolve(session, problem, now, report)
        if facts is None:
            return
        for kind in sorted(wanted - set(existing)):
            rule = self.rules.rule(kind)
            new_rows.append(
                {
                    "key": problem_key(ProblemScope.DEVICE, facts.device.code, kind),
                    "scope": ProblemScope.DEVICE.value,
                    "scope_code": facts.device.code,
                    "kind": kind,
                    "source": ProblemSource.HEALTH.value,
                    "status": ProblemStatus.PENDING.value,
                    "priority": rule.priority.value,
                    "device_id": facts.device.id,
                    "commune_code": facts.commune.code,
                    "district_code": facts.commune.district_code,
                    "title": f"{fault_label(kind)}: {facts.device.name}"[:300],
                    "members": [],
                    "details": {},
                    "flapping": facts.flapping,
                    "started_at": now,
                    "due_at": now + self.rules.group_wait,
                    "updated_at": now,
                }
            )

    # --- suppressed problems are looked at again ------------------------------------------------

    def _recheck_suppressed(self, session: Session, now: datetime) -> None:
        """Suppressed problems whose explanation is gone become pending again (NO_TICKET ones stay).

        Read as plain rows and released by one UPDATE: during a district outage ten thousand device
        problems sit here, and loading them as objects every cycle cost half a second.
        """
        rows = session.execute(
            sa.select(
                col(AlertProblem.id),
                col(AlertProblem.suppression_reason),
                col(AlertProblem.suppressed_by),
                col(AlertProblem.scope),
                col(AlertProblem.scope_code),
                col(AlertProblem.device_id),
                col(AlertProblem.commune_code),
                col(AlertProblem.district_code),
            ).where(
                col(AlertProblem.status) == ProblemStatus.SUPPRESSED.value,
                sa.or_(
                    col(AlertProblem.suppression_reason).is_(None),
                    col(AlertProblem.suppression_reason) != SuppressionReason.NO_TICKET.value,
                ),
            )
        ).all()
        if not rows:
            return
        reasons = {row.suppression_reason for row in rows}
        windows = open_windows(now, session=session) if SuppressionReason.MAINTENANCE in reasons else []
        causes = {row.suppressed_by for row in rows if row.suppressed_by}
        open_keys: set[str] = set()
        if SuppressionReason.GROUPED in reasons:
            grouped = sorted(
                {r.suppressed_by for r in rows if r.suppression_reason == SuppressionReason.GROUPED and r.suppressed_by}
            )
            open_keys = set(
                session.exec(
                    select(AlertProblem.key).where(
                        AlertProblem.status == ProblemStatus.ACTIVE.value, col(AlertProblem.key).in_(grouped)
                    )
                )
            )
        down = self._down_device_codes(session, causes) if SuppressionReason.PARENT_DOWN in reasons else set()
        kinds = self._device_kinds(session, [r.device_id for r in rows if r.device_id is not None]) if windows else {}
        released = []
        for row in rows:
            reason = row.suppression_reason
            if reason == SuppressionReason.MAINTENANCE:
                still = muting(windows, [_subject(row, kinds)]) is not None
            elif reason == SuppressionReason.GROUPED:
                still = row.suppressed_by in open_keys
            elif reason == SuppressionReason.PARENT_DOWN:
                still = row.suppressed_by in down
            else:  # no reason recorded: nothing keeps it suppressed
                still = False
            if not still:
                released.append(row.id)
        for start in range(0, len(released), 1000):
            session.execute(
                sa.update(AlertProblem)
                .where(col(AlertProblem.id).in_(released[start : start + 1000]))
                .values(
                    status=ProblemStatus.PENDING.value,
                    due_at=now,
                    suppressed_by=None,
                    suppression_reason=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session="fetch")
            )
        session.flush()

    def _device_kinds(self, session: Session, device_ids: Sequence[int]) -> dict[int | None, str]:
        kinds: dict[int | None, str] = {}
        unique = sorted(set(device_ids))
        for start in range(0, len(unique), 1000):
            chunk = unique[start : start + 1000]
            rows = session.execute(sa.select(col(Device.id), col(Device.kind)).where(col(Device.id).in_(chunk)))
            kinds.update((device_id, kind) for device_id, kind in rows)
        return kinds

    def _down_device_codes(self, session: Session, keys: Iterable[str]) -> set[str]:
        codes = [k.split(":")[1] for k in keys if k.startswith("device:")]
        if not codes:
            return set()
        rows = session.exec(
            select(Device.code)
            .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id)
            .where(col(Device.code).in_(codes), DeviceHealthRow.state == DeviceState.DOWN.value)
        )
        return {problem_key(ProblemScope.DEVICE, code, OFFLINE) for code in rows}

    # --- due problems: mute, group, explain by a parent, or activate ---------------------------

    def _activate_due(self, session: Session, now: datetime, report: CycleReport) -> None:
        due = list(
            session.exec(
                select(AlertProblem)
                .where(AlertProblem.status == ProblemStatus.PENDING.value, col(AlertProblem.due_at) <= now)
                .order_by(col(AlertProblem.id))
            )
        )
        if not due:
            return
        windows = open_windows(now, session=session)
        kinds = self._device_kinds(session, [p.device_id for p in due if p.device_id is not None]) if windows else {}
        activate: list[AlertProblem] = []
        remaining: list[AlertProblem] = []
        for problem in due:
            if windows and muting(windows, [_subject(problem, kinds)]):
                self._suppress(session, problem, SuppressionReason.MAINTENANCE, None, now, report)
            else:
                remaining.append(problem)
        remaining = self._group(session, remaining, now, report)
        parents_down = self._parents_down(session, [p for p in remaining if p.kind == OFFLINE])
        for problem in remaining:
            parent_key = parents_down.get(problem.device_id or -1)
            if parent_key is not None:
                self._suppress(session, problem, SuppressionReason.PARENT_DOWN, parent_key, now, report)
            else:
                activate.append(problem)
        self._activate(session, activate, now, report)

    def _suppress(
        self,
        session: Session,
        problem: AlertProblem,
        reason: SuppressionReason,
        by: str | None,
        now: datetime,
        report: CycleReport,
    ) -> None:
        problem.status, problem.suppression_reason, problem.suppressed_by = ProblemStatus.SUPPRESSED.value, reason, by
        problem.updated_at = now
        session.add(problem)
        report.suppressed += 1

    def _parents_down(self, session: Session, problems: Sequence[AlertProblem]) -> dict[int, str]:
        device_ids = [p.device_id for p in problems if p.device_id is not None]
        if not device_ids:
            return {}
        parent = sa.orm.aliased(Device)
        rows = session.exec(
            select(Device.id, parent.code)
            .join(parent, col(Device.parent_id) == parent.id)
            .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == parent.id)
            .where(col(Device.id).in_(device_ids), DeviceHealthRow.state == DeviceState.DOWN.value)
        )
        return {
            device_id: problem_key(ProblemScope.DEVICE, code, OFFLINE)
            for device_id, code in rows
            if device_id is not None
        }

    def _counts(self, session: Session, kind: str, level: Any) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Active devices per commune or district, and the codes of those that have `kind` now."""
        totals = dict(
            session.exec(
                select(level, sa.func.count())
                .select_from(Device)
                .join(Commune, col(Commune.code) == Device.commune_code)
                .where(col(Device.active).is_(True))
                .group_by(level)
            ).all()
        )
        having: dict[str, list[str]] = defaultdict(list)
        rows = session.exec(
            select(level, Device.code, DeviceHealthRow.faults)
            .select_from(Device)
            .join(Commune, col(Commune.code) == Device.commune_code)
            .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id)
            .where(col(Device.active).is_(True), DeviceHealthRow.state != DeviceState.UP.value)
        )
        for place, code, faults in rows:
            if kind in (faults or []):
                having[place].append(code)
        return totals, having

    def _group(
        self, session: Session, problems: list[AlertProblem], now: datetime, report: CycleReport
    ) -> list[AlertProblem]:
        """Fold device problems of one kind that fill a commune (or a district) into one problem."""
        kept: list[AlertProblem] = []
        groups: dict[str, AlertProblem] = {}  # found or made this cycle: not looked up again per member
        by_kind: dict[str, list[AlertProblem]] = defaultdict(list)
        for problem in problems:
            (by_kind[problem.kind] if problem.scope == ProblemScope.DEVICE.value else kept).append(problem)
        for kind, members in by_kind.items():
            commune_totals, commune_having = self._counts(session, kind, Commune.code)
            district_totals, district_having = self._counts(session, kind, Commune.district_code)
            for problem in members:
                district = problem.district_code or ""
                district_count = len(district_having.get(district, []))
                if district_count >= self.rules.district_min_devices and district_count >= (
                    self.rules.district_share * district_totals.get(district, 0)
                ):
                    group = self._ensure_group(
                        session,
                        ProblemScope.DISTRICT,
                        district,
                        kind,
                        district_having[district],
                        None,
                        district,
                        now,
                        groups,
                    )
                    self._suppress(session, problem, SuppressionReason.GROUPED, group.key, now, report)
                    continue
                commune = problem.commune_code or ""
                commune_count = len(commune_having.get(commune, []))
                if commune_count >= self.rules.commune_min_devices and commune_count >= (
                    self.rules.commune_share * commune_totals.get(commune, 0)
                ):
                    group = self._ensure_group(
                        session,
                        ProblemScope.COMMUNE,
                        commune,
                        kind,
                        commune_having[commune],
                        commune,
                        district,
                        now,
                        groups,
                    )
                    self._suppress(session, problem, SuppressionReason.GROUPED, group.key, now, report)
                    continue
                kept.append(problem)
        return kept

    def _ensure_group(
        self,
        session: Session,
        scope: ProblemScope,
        code: str,
        kind: str,
        members: list[str],
        commune_code: str | None,
        district_code: str,
        now: datetime,
        groups: dict[str, AlertProblem],
    ) -> AlertProblem:
        key = problem_key(scope, code, kind)
        group = groups.get(key)
        if group is None:
            group = session.exec(select(AlertProblem).where(AlertProblem.key == key, UNRESOLVED)).first()
        if group is not None:
            groups[key] = group
            return group
        rule = self.rules.rule(kind)
        if scope is ProblemScope.DISTRICT:
            place = _stored("huyện/khu vực {code}").format(code=code)
            priority = AlertRules.more_urgent(AlertRules.more_urgent(rule.priority))
            # A district outage also covers the communes grouped earlier this cycle.
            for commune_group in session.exec(
                select(AlertProblem).where(
                    AlertProblem.scope == ProblemScope.COMMUNE.value,
                    AlertProblem.kind == kind,
                    AlertProblem.district_code == district_code,
                    AlertProblem.status == ProblemStatus.PENDING.value,
                )
            ):
                commune_group.status = ProblemStatus.SUPPRESSED.value
                commune_group.suppression_reason, commune_group.suppressed_by = SuppressionReason.GROUPED, key
                session.add(commune_group)
        else:
            commune = session.get(Commune, code)
            place = commune.name if commune is not None else _stored("xã {code}").format(code=code)
            priority = AlertRules.more_urgent(rule.priority)
        group = AlertProblem(
            key=key,
            scope=scope.value,
            scope_code=code,
            kind=kind,
            source=ProblemSource.HEALTH.value,
            status=ProblemStatus.PENDING.value,
            priority=priority.value,
            commune_code=commune_code,
            district_code=district_code,
            title=_stored("{problem} diện rộng: {place} ({count} thiết bị)").format(
                problem=fault_label(kind), place=place, count=len(members)
            ),
            members=sorted(members),
            started_at=now,
            due_at=now,
            updated_at=now,
        )
        session.add(group)
        session.flush()
        groups[key] = group
        return group

    def _activate(self, session: Session, problems: list[AlertProblem], now: datetime, report: CycleReport) -> None:
        # Groups made this cycle are pending and due now: activate them in the same pass.
        problems = problems + [
            g
            for g in session.exec(
                select(AlertProblem).where(
                    AlertProblem.status == ProblemStatus.PENDING.value,
                    AlertProblem.scope != ProblemScope.DEVICE.value,
                    col(AlertProblem.due_at) <= now,
                )
            )
            if g not in problems
        ]
        reports: list[tuple[AlertProblem, ProblemReport]] = []
        for problem in problems:
            problem.status, problem.activated_at, problem.updated_at = ProblemStatus.ACTIVE.value, now, now
            session.add(problem)
            report.opened += 1
            if problem.scope != ProblemScope.DEVICE.value:
                report.grouped += 1
            report.events.append(event_from_problem(ProblemEventKind.OPENED, problem, at=now))
            if self.rules.rule(problem.kind).ticket:
                reports.append((problem, self._report(problem)))
        if reports:
            outcomes = open_or_update_tickets(
                [r for _, r in reports], session=session, now=now, policy=self.ticket_policy
            )
            for (problem, _), outcome in zip(reports, outcomes, strict=True):
                problem.ticket_code = outcome.ticket.code
                report.tickets.append(outcome.ticket.code)
        session.flush()

    @staticmethod
    def _report(problem: AlertProblem) -> ProblemReport:
        members = ", ".join(problem.members[:50]) + (" …" if len(problem.members) > 50 else "")
        return ProblemReport(
            scope=ProblemScope(problem.scope),
            scope_code=problem.scope_code,
            kind=problem.kind,
            title=problem.title[:300],
            device_id=problem.device_id,
            commune_code=problem.commune_code,
            description=_stored("Thiết bị: {members}").format(members=members) if members else "",
            priority=Priority(problem.priority),
            source=TicketSource.AUTO if problem.source == ProblemSource.HEALTH else TicketSource.ALERTMANAGER,
            occurred_at=problem.started_at,
        )

    # --- groups follow their members; problems resolve with their cause ------------------------

    def _update_groups(self, session: Session, now: datetime, report: CycleReport) -> None:
        groups = list(
            session.exec(
                select(AlertProblem).where(
                    AlertProblem.scope != ProblemScope.DEVICE.value,
                    AlertProblem.source == ProblemSource.HEALTH.value,
                    UNRESOLVED,
                )
            )
        )
        for group in groups:
            level = Commune.code if group.scope == ProblemScope.COMMUNE.value else Commune.district_code
            _totals, having = self._counts(session, group.kind, level)
            members = sorted(having.get(group.scope_code, []))
            if not members:
                self._resolve(session, group, now, report)
            elif members != group.members:
                group.members, group.updated_at = members, now
                session.add(group)

    def _resolve(self, session: Session, problem: AlertProblem, now: datetime, report: CycleReport) -> None:
        was_active = problem.status == ProblemStatus.ACTIVE.value
        problem.status, problem.resolved_at, problem.updated_at = ProblemStatus.RESOLVED.value, now, now
        session.add(problem)
        session.flush()
        report.resolved += 1
        if was_active:
            report.events.append(event_from_problem(ProblemEventKind.RESOLVED, problem, at=now))
            if problem.ticket_code is not None:
                resolve_problem(problem.key, session=session, recovered_at=now, policy=self.ticket_policy)

    # --- tickets agree with problems, whatever was lost ------------------------------------------

    def reconcile_tickets(self, now: datetime) -> None:
        """Resolve tickets whose problem is gone, open missing ones, close old resolved ones, mark breaches."""
        with Session(self.engine, expire_on_commit=False) as session:
            begin_write(session.connection())
            # Alertmanager's first: it takes the receiver's lock before any ticket row, as deliveries do.
            expired = self._reconcile_alertmanager(session, now)
            active = {
                p.key: p
                for p in session.exec(
                    select(AlertProblem).where(
                        AlertProblem.status == ProblemStatus.ACTIVE.value,
                        AlertProblem.source == ProblemSource.HEALTH.value,
                    )
                )
                if self.rules.rule(p.kind).ticket
            }
            result = reconcile(
                set(active),
                {key: self._report(p) for key, p in active.items()},
                session=session,
                now=now,
                policy=self.ticket_policy,
            )
            for outcome in result.opened:
                problem = active.get(outcome.ticket.problem_key)
                if problem is not None:
                    problem.ticket_code = outcome.ticket.code
                    session.add(problem)
            close_resolved(now, session=session, policy=self.ticket_policy)
            mark_breaches(now, session=session, policy=self.ticket_policy)
            session.commit()
        if result.resolved or result.opened:
            log.warning(
                "reconciliation resolved %d tickets whose problem was gone and opened %d missing ones",
                len(result.resolved),
                len(result.opened),
            )
        if expired:
            log.warning("Alertmanager stopped repeating %d problems: resolved as stale", len(expired))

    def _reconcile_alertmanager(self, session: Session, now: datetime) -> list[str]:
        """Expire Alertmanager's alerts it stopped repeating; resolve its tickets whose problem is resolved."""
        expired: list[str] = []
        if self.rules.alertmanager_stale_after is not None:
            expired = expire_stale(
                session=session,
                now=now,
                stale_after=self.rules.alertmanager_stale_after,
                ticket_policy=self.ticket_policy,
            ).resolved
        active = set(
            session.exec(
                select(AlertProblem.key).where(
                    AlertProblem.source == ProblemSource.ALERTMANAGER.value,
                    col(AlertProblem.status) != ProblemStatus.RESOLVED.value,
                )
            )
        )
        # Only resolves: opening is Alertmanager's to say, with its labels.
        reconcile(active, {}, session=session, now=now, policy=self.ticket_policy, sources=[TicketSource.ALERTMANAGER])
        return expired
