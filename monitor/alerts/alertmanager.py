"""Prometheus Alertmanager's webhook (payload version 4) into problems and tickets.

Alerts map to problems through their labels (`device`, `commune`, `district`, and `problem_kind`
or else `alertname`), keyed on a stable identity, never on the raw group key. An HA pair of
Alertmanagers delivers the same notification twice and in any order, and Alertmanager retries until it
gets a 2xx: the last state seen of each alert
(by fingerprint, with its `startsAt`) makes duplicates and stale deliveries change nothing, and the
caller answers only after the transaction committed.

Alertmanager repeats a firing alert every `repeat_interval` but says nothing more of a silenced alert, and
nothing at all once it is replaced or loses its state. A firing alert that is not repeated within the rules'
`alertmanager_stale_after` is therefore expired by the dispatcher's reconciliation (`expire_stale`): its
problem and ticket resolve with a note saying why, and reopen if Alertmanager sends the alert again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from monitor.alerts.choices import ProblemSource, ProblemStatus
from monitor.alerts.models import AlertmanagerAlert, AlertProblem
from monitor.alerts.rules import AlertRules
from monitor.db import begin_exclusive
from monitor.inventory.models import Commune, Device, District
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource, problem_key
from monitor.tickets.lifecycle import ProblemReport, open_or_update_tickets, resolve_problem
from monitor.tickets.policy import TicketPolicy

RECEIVER_LOCK = 0x464C_414D  # PostgreSQL advisory lock key of the receiver ("FLAM")
FIRING, RESOLVED, EXPIRED = "firing", "resolved", "expired"  # an alert's last state seen (EXPIRED: by us)
SEVERITY_PRIORITY = {"critical": Priority.P1, "page": Priority.P1, "error": Priority.P2, "warning": Priority.P3}
_KIND = re.compile(r"[^a-z0-9_]+")


class AmAlert(BaseModel):
    """One alert of the payload."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(max_length=100)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=100)
    startsAt: datetime  # Alertmanager's field names
    endsAt: datetime | None = None
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")


class AmPayload(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = Field(max_length=10_000)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AmAlert] = Field(max_length=10_000)


@dataclass
class ReceiveResult:
    """What a delivery changed."""

    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    ignored: int = 0
    tickets: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Identity:
    scope: ProblemScope
    code: str
    kind: str
    device_id: int | None
    commune_code: str | None
    district_code: str | None

    @property
    def key(self) -> str:
        return problem_key(self.scope, self.code, self.kind)


def _identity(labels: dict[str, str], session: Session) -> _Identity:
    # `kind` on fleet metrics is the device's kind (radio_cluster...): the problem's kind is its own label.
    raw_kind = labels.get("problem_kind") or labels.get("alertname", "alert")
    kind = _KIND.sub("_", raw_kind.lower()).strip("_")[:64] or "alert"
    if code := labels.get("device"):
        device = session.exec(select(Device).where(Device.code == code)).first()
        if device is not None:
            commune = session.get(Commune, device.commune_code)
            district = commune.district_code if commune is not None else None
            return _Identity(ProblemScope.DEVICE, code, kind, device.id, device.commune_code, district)
    if code := labels.get("commune"):
        commune = session.get(Commune, code)
        if commune is not None:
            return _Identity(ProblemScope.COMMUNE, code, kind, None, code, commune.district_code)
    if (code := labels.get("district")) and session.get(District, code) is not None:
        return _Identity(ProblemScope.DISTRICT, code, kind, None, None, code)
    # Not about a place of the inventory (a collector, Prometheus itself): a province-level problem, whose
    # ticket (if its rule says so) is the province operator's.
    scope_code = labels.get("instance") or labels.get("job") or "province"
    return _Identity(ProblemScope.PROVINCE, _KIND.sub("_", scope_code.lower())[:64], kind, None, None, None)


def _stale(alert: AmAlert, seen: AlertmanagerAlert | None) -> bool:
    """Whether this delivery says nothing new about the alert (a duplicate, or an older episode)."""
    if seen is None:
        return False
    if alert.startsAt < seen.starts_at:
        return True  # an older episode of the alert
    if alert.startsAt > seen.starts_at:
        return False  # a new episode
    # The same episode: firing -> resolved is news, and so is an alert we expired that Alertmanager still sends.
    return not (
        (seen.status == FIRING and alert.status == RESOLVED) or (seen.status == EXPIRED and alert.status == FIRING)
    )


def _repeated(alert: AmAlert, seen: AlertmanagerAlert | None) -> bool:
    """Whether this delivery repeats a firing alert as it stands (Alertmanager's repeat_interval): still alive."""
    return seen is not None and seen.status == FIRING == alert.status and alert.startsAt == seen.starts_at


def receive(
    payload: AmPayload, *, session: Session, now: datetime, rules: AlertRules, ticket_policy: TicketPolicy
) -> ReceiveResult:
    """Apply one webhook delivery; the caller commits, then answers 2xx.

    Deliveries are applied one at a time: an HA pair posts the same notification at the same moment, and
    two transactions that both found the alert new would both insert it (the second failing on the key).
    SQLite's BEGIN IMMEDIATE already makes this the only writer; PostgreSQL takes an advisory lock.
    """
    _one_at_a_time(session)
    result = ReceiveResult()
    to_open: dict[str, tuple[_Identity, AmAlert]] = {}
    to_resolve: dict[str, _Identity] = {}
    for alert in payload.alerts:
        seen = session.get(AlertmanagerAlert, alert.fingerprint)
        if _stale(alert, seen):
            if _repeated(alert, seen):
                assert seen is not None
                seen.updated_at = now  # keeps it from expiring
                session.add(seen)
            result.ignored += 1
            continue
        identity = _identity(alert.labels, session)
        if seen is None:
            seen = AlertmanagerAlert(
                fingerprint=alert.fingerprint, problem_key=identity.key, status=alert.status, starts_at=alert.startsAt
            )
        seen.problem_key, seen.status, seen.starts_at = identity.key, alert.status, alert.startsAt
        seen.ends_at, seen.labels, seen.updated_at = alert.endsAt, dict(alert.labels), now
        session.add(seen)
        if alert.status == FIRING:
            to_open[identity.key] = (identity, alert)
            to_resolve.pop(identity.key, None)
        else:
            to_resolve[identity.key] = identity
    session.flush()
    _open(list(to_open.values()), session=session, now=now, rules=rules, ticket_policy=ticket_policy, result=result)
    _resolve_quiet(to_resolve, session=session, now=now, ticket_policy=ticket_policy, result=result)
    return result


def _one_at_a_time(session: Session) -> None:
    """Make this transaction the only one changing Alertmanager's alerts until it ends."""
    begin_exclusive(session.connection(), RECEIVER_LOCK)


def expire_stale(
    *, session: Session, now: datetime, stale_after: timedelta, ticket_policy: TicketPolicy
) -> ReceiveResult:
    """Expire the firing alerts Alertmanager has not repeated for `stale_after`; resolve what they leave quiet.

    Their problems and tickets resolve with a note; an expired alert that Alertmanager sends again opens its
    problem again (and reopens or relinks its ticket, as any recurrence does). The caller commits.
    """
    _one_at_a_time(session)  # a delivery renewing an alert must not cross its expiry
    result = ReceiveResult()
    query = (
        select(AlertmanagerAlert)
        .where(AlertmanagerAlert.status == FIRING, col(AlertmanagerAlert.updated_at) < now - stale_after)
        .order_by(col(AlertmanagerAlert.fingerprint))
        .with_for_update()
    )
    keys: list[str] = []
    for alert in session.exec(query):
        alert.status, alert.updated_at = EXPIRED, now
        session.add(alert)
        keys.append(alert.problem_key)
    session.flush()
    hours = stale_after.total_seconds() / 3600
    note = (
        f"Alertmanager has not repeated this alert for {hours:g} h (silenced, resolved without a notification "
        "reaching us, or Alertmanager replaced): resolved as stale; it opens again if Alertmanager sends it"
    )
    _resolve_quiet(keys, session=session, now=now, ticket_policy=ticket_policy, result=result, note=note)
    return result


def _resolve_quiet(
    keys: Iterable[str],
    *,
    session: Session,
    now: datetime,
    ticket_policy: TicketPolicy,
    result: ReceiveResult,
    note: str = "recovered",
) -> None:
    """Resolve each problem of `keys` that none of its alerts keeps firing."""
    for key in dict.fromkeys(keys):
        still_firing = session.exec(
            select(AlertmanagerAlert).where(AlertmanagerAlert.problem_key == key, AlertmanagerAlert.status == FIRING)
        ).first()
        if still_firing is None:
            _resolve(key, session=session, now=now, ticket_policy=ticket_policy, result=result, note=note)


def _open(
    firing: Sequence[tuple[_Identity, AmAlert]],
    *,
    session: Session,
    now: datetime,
    rules: AlertRules,
    ticket_policy: TicketPolicy,
    result: ReceiveResult,
) -> None:
    reports: list[tuple[AlertProblem, ProblemReport]] = []
    for identity, alert in firing:
        problem = session.exec(
            select(AlertProblem).where(AlertProblem.key == identity.key, AlertProblem.status != "resolved")
        ).first()
        severity = alert.labels.get("severity", "").lower()
        priority = SEVERITY_PRIORITY.get(severity, rules.rule(identity.kind).priority)
        title = (alert.annotations.get("summary") or alert.labels.get("alertname") or identity.kind)[:300]
        if problem is None:
            problem = AlertProblem(
                key=identity.key,
                scope=identity.scope.value,
                scope_code=identity.code,
                kind=identity.kind,
                source=ProblemSource.ALERTMANAGER.value,
                status=ProblemStatus.ACTIVE.value,
                priority=priority.value,
                device_id=identity.device_id,
                commune_code=identity.commune_code,
                district_code=identity.district_code,
                title=title,
                started_at=alert.startsAt,
                activated_at=now,
                details={"labels": alert.labels, "annotations": alert.annotations},
                updated_at=now,
            )
            session.add(problem)
            result.opened.append(identity.key)
        if rules.rule(identity.kind).ticket:
            reports.append(
                (
                    problem,
                    ProblemReport(
                        scope=identity.scope,
                        scope_code=identity.code,
                        kind=identity.kind,
                        title=title,
                        device_id=identity.device_id,
                        commune_code=identity.commune_code,
                        description=alert.annotations.get("description", "")[:2000],
                        priority=priority,
                        source=TicketSource.ALERTMANAGER,
                        occurred_at=alert.startsAt,
                        details={"labels": alert.labels},
                    ),
                )
            )
    session.flush()
    if reports:
        outcomes = open_or_update_tickets([r for _, r in reports], session=session, now=now, policy=ticket_policy)
        for (problem, _), outcome in zip(reports, outcomes, strict=True):
            problem.ticket_code = outcome.ticket.code
            session.add(problem)
            result.tickets.append(outcome.ticket.code)


def _resolve(
    key: str, *, session: Session, now: datetime, ticket_policy: TicketPolicy, result: ReceiveResult, note: str
) -> None:
    problem = session.exec(
        select(AlertProblem).where(
            AlertProblem.key == key,
            AlertProblem.source == ProblemSource.ALERTMANAGER.value,
            col(AlertProblem.status) != ProblemStatus.RESOLVED.value,
        )
    ).first()
    if problem is None:
        return
    problem.status, problem.resolved_at, problem.updated_at = ProblemStatus.RESOLVED.value, now, now
    session.add(problem)
    session.flush()
    result.resolved.append(key)
    if problem.ticket_code is not None:
        resolve_problem(key, session=session, recovered_at=now, policy=ticket_policy, note=note)


def parse_payload(body: Any) -> AmPayload:
    """Validate a decoded JSON body (pydantic raises a ValidationError naming every bad field)."""
    return AmPayload.model_validate(body)
