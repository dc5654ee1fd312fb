"""What the dispatcher tells notifications: one `ProblemEvent` per thing people should hear about. Pure (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.models import AlertProblem
from monitor.labels import LabelledEnum
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope


class ProblemEventKind(LabelledEnum):
    """What happened to a problem."""

    OPENED = "opened", "Sự cố mới", "New problem"
    RESOLVED = "resolved", "Đã khắc phục", "Resolved"
    ESCALATED = "escalated", "Sự cố leo thang", "Escalated"
    ACKNOWLEDGED = "acknowledged", "Đã tiếp nhận", "Acknowledged"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemEvent:
    """One thing that happened to a problem, as the dispatcher hands it over (keyword arguments only).

    `problem_key` is the problem's identity (`device:06613-CL01:offline`); `problem_kind` is `offline`
    or a fault code; `district_code` is None for a province-wide problem; `members` lists the device
    codes of a grouped (commune or district) problem. `at` is when it happened: together with the key
    and the kind it identifies the event, so the same event handed over twice is sent once. Strings are
    accepted for the enums, any sequence for `members` (kept as a tuple), any zone for `at` (kept in UTC).
    """

    kind: ProblemEventKind
    problem_key: str
    scope: ProblemScope
    scope_code: str
    problem_kind: str
    priority: Priority
    title: str
    district_code: str | None
    commune_code: str | None
    members: Sequence[str] = field(default=())
    ticket_code: str | None = None
    at: datetime
    note: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"ProblemEvent.at must be time-zone aware, got {self.at!r}")
        # Frozen: normalise through object.__setattr__, once, here.
        object.__setattr__(self, "kind", ProblemEventKind(self.kind))
        object.__setattr__(self, "scope", ProblemScope(self.scope))
        object.__setattr__(self, "priority", Priority(self.priority))
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "at", self.at.astimezone(UTC))

    @property
    def identity(self) -> str:
        """The event's identity: the problem, what happened, and when (UTC, microseconds)."""
        return f"{self.problem_key}|{self.kind.value}|{self.at.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data (the webhook's shape, and what a delivery row keeps)."""
        return {
            "kind": self.kind.value,
            "problem_key": self.problem_key,
            "scope": self.scope.value,
            "scope_code": self.scope_code,
            "problem_kind": self.problem_kind,
            "priority": self.priority.value,
            "title": self.title,
            "district_code": self.district_code,
            "commune_code": self.commune_code,
            "members": list(self.members),
            "ticket_code": self.ticket_code,
            "note": self.note,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProblemEvent:
        """The event back from `to_json`'s output."""
        return cls(
            kind=ProblemEventKind(data["kind"]),
            problem_key=data["problem_key"],
            scope=ProblemScope(data["scope"]),
            scope_code=data["scope_code"],
            problem_kind=data["problem_kind"],
            priority=Priority(data["priority"]),
            title=data["title"],
            district_code=data.get("district_code"),
            commune_code=data.get("commune_code"),
            members=tuple(data.get("members") or ()),
            ticket_code=data.get("ticket_code"),
            note=data.get("note"),
            at=datetime.fromisoformat(data["at"]),
        )


def event_from_problem(
    kind: ProblemEventKind | str, problem: AlertProblem, *, at: datetime | None = None
) -> ProblemEvent:
    """The event of `problem` (an `alert_problems` row) of `kind`.

    `at` defaults to the problem's own time of that kind (activated, resolved, acknowledged, else its
    last update): a stable time, so that the same event handed over twice is recognised as one.
    """
    kind = ProblemEventKind(kind)
    stamps = {
        ProblemEventKind.OPENED: problem.activated_at or problem.started_at,
        ProblemEventKind.RESOLVED: problem.resolved_at,
        ProblemEventKind.ACKNOWLEDGED: problem.acknowledged_at,
    }
    when = at or stamps.get(kind) or problem.updated_at
    return ProblemEvent(
        kind=kind,
        problem_key=problem.key,
        scope=ProblemScope(problem.scope),
        scope_code=problem.scope_code,
        problem_kind=problem.kind,
        priority=Priority(problem.priority),
        title=problem.title,
        district_code=problem.district_code,
        commune_code=problem.commune_code,
        members=tuple(problem.members or ()),
        ticket_code=problem.ticket_code,
        at=when,
        note=problem.acknowledgement_note if kind is ProblemEventKind.ACKNOWLEDGED else None,
    )
