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

Each step loads what `monitor.alerts.decide` needs (a few set-based queries, never one per row), lets its
pure functions decide, and writes what they decided: the rules live there, tested without a database.

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

from monitor.alerts import decide
from monitor.alerts.alertmanager import expire_stale
from monitor.alerts.choices import ProblemSource, ProblemStatus, SuppressionReason
from monitor.alerts.decide import Counts, Group, KindCounts, subject_of
from monitor.alerts.maintenance import muting, open_windows
from monitor.alerts.models import AlertProblem
from monitor.alerts.notify import ProblemEvent, ProblemEventKind, enqueue_many, event_from_problem
from monitor.alerts.rules import AlertRules
from monitor.db import begin_write, utcnow
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState
from monitor.i18n import translator
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource, problem_key
from monitor.tickets.lifecycle import (
    ProblemReport,
    close_resolved,
    mark_breaches,
    open_or_update_tickets,
    reconcile,
    resolve_problem,
)
from monitor.tickets.policy import TicketPolicy

log = logging.getLogger(__name__)
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
        plan = decide.sync_device(
            {kind: p.status for kind, p in existing.items()},
            facts.faults if facts is not None else None,
            facts.flapping if facts is not None else False,
        )
        for kind, flapping in plan.keep.items():
            existing[kind].flapping = flapping
            session.add(existing[kind])
        for kind in plan.resolve:
            self._resolve(session, existing[kind], now, report)
        if facts is None:
            return
        for kind in plan.open:
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
                    "title": decide.device_problem_title(kind, facts.device.name),
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

            def muted(row: Any = row) -> bool:
                return muting(windows, [subject_of(row, kinds)]) is not None

            if not decide.still_suppressed(
                row.suppression_reason, row.suppressed_by, muted=muted, open_groups=open_keys, down_parents=down
            ):
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
        """The keys, among `keys`, of `offline` problems whose device is down now."""
        codes = decide.device_codes_of(keys)
        if not codes:
            return set()
        rows = session.exec(
            select(Device.code)
            .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id)
            .where(col(Device.code).in_(codes), DeviceHealthRow.state == DeviceState.DOWN.value)
        )
        return {decide.parent_problem_key(code) for code in rows}

    # --- due problems: mute, group, explain by a parent, or activate ---------------------------

    def _activate_due(self, session: Session, now: datetime, report: CycleReport) -> None:
        """Load what the decisions need, step by step (each load only for what is left), and write them."""
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
        muted, remaining = decide.split_muted(
            due, lambda p: bool(windows) and muting(windows, [subject_of(p, kinds)]) is not None
        )
        for problem in muted:
            self._suppress(session, problem, SuppressionReason.MAINTENANCE, None, now, report)
        counts = {kind: self._kind_counts(session, kind) for kind in decide.kinds_to_count(remaining)}
        grouped, remaining = decide.group_due(remaining, counts, self.rules)
        groups: dict[str, AlertProblem] = {}  # found or made this cycle: not looked up again per member
        for problem, group in grouped:
            found = self._ensure_group(session, group, now, groups)
            self._suppress(session, problem, SuppressionReason.GROUPED, found.key, now, report)
        down_parents = self._parents_down(session, decide.needs_parent_check(remaining))
        explained, activate = decide.explain_by_parents(remaining, down_parents)
        for problem, parent_key in explained:
            self._suppress(session, problem, SuppressionReason.PARENT_DOWN, parent_key, now, report)
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
        return {device_id: decide.parent_problem_key(code) for device_id, code in rows if device_id is not None}

    def _counts(self, session: Session, kind: str, level: Any) -> Counts:
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
        return Counts(totals, dict(having))

    def _kind_counts(self, session: Session, kind: str) -> KindCounts:
        return KindCounts(self._counts(session, kind, Commune.code), self._counts(session, kind, Commune.district_code))

    def _ensure_group(
        self, session: Session, group: Group, now: datetime, groups: dict[str, AlertProblem]
    ) -> AlertProblem:
        """The unresolved problem of `group`: found (this cycle or in the database) or made, pending and due."""
        key = group.key
        found = groups.get(key)
        if found is None:
            found = session.exec(select(AlertProblem).where(AlertProblem.key == key, UNRESOLVED)).first()
        if found is not None:
            groups[key] = found
            return found
        commune_name = None
        if group.scope is ProblemScope.DISTRICT:
            # A district outage also covers the communes grouped earlier this cycle.
            for commune_group in session.exec(
                select(AlertProblem).where(
                    AlertProblem.scope == ProblemScope.COMMUNE.value,
                    AlertProblem.kind == group.kind,
                    AlertProblem.district_code == group.district_code,
                    AlertProblem.status == ProblemStatus.PENDING.value,
                )
            ):
                commune_group.status = ProblemStatus.SUPPRESSED.value
                commune_group.suppression_reason, commune_group.suppressed_by = SuppressionReason.GROUPED, key
                session.add(commune_group)
        else:
            commune = session.get(Commune, group.code)
            commune_name = commune.name if commune is not None else None
        made = AlertProblem(
            key=key,
            scope=group.scope.value,
            scope_code=group.code,
            kind=group.kind,
            source=ProblemSource.HEALTH.value,
            status=ProblemStatus.PENDING.value,
            priority=decide.group_priority(group.scope, self.rules.rule(group.kind).priority).value,
            commune_code=group.commune_code,
            district_code=group.district_code,
            title=decide.group_title(group, commune_name),
            members=sorted(group.members),
            started_at=now,
            due_at=now,
            updated_at=now,
        )
        session.add(made)
        session.flush()
        groups[key] = made
        return made

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
            source=TicketSource.ALERTMANAGER if problem.source == ProblemSource.ALERTMANAGER else TicketSource.AUTO,
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
        counted: dict[tuple[str, bool], Counts] = {}  # health does not change within the transaction
        for group in groups:
            of_commune = group.scope == ProblemScope.COMMUNE.value
            if (group.kind, of_commune) not in counted:
                level = Commune.code if of_commune else Commune.district_code
                counted[group.kind, of_commune] = self._counts(session, group.kind, level)
            members = decide.members_now(group, counted[group.kind, of_commune])
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
            # The service's own problems (an unheld shard: monitor.alerts.collector_watch) always have a ticket,
            # an `auto` one like health's: left out of here, reconciliation would resolve it as gone.
            active = {
                p.key: p
                for p in session.exec(
                    select(AlertProblem).where(
                        AlertProblem.status == ProblemStatus.ACTIVE.value,
                        col(AlertProblem.source).in_([ProblemSource.HEALTH.value, ProblemSource.SERVICE.value]),
                    )
                )
                if p.source == ProblemSource.SERVICE or self.rules.rule(p.kind).ticket
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
