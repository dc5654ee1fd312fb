"""The tickets service layer: every function the rest of the service calls, in one import.

    from monitor.tickets import service
    outcome = service.open_or_update_ticket(problem, session=session, now=now, policy=policy)

Plain functions taking the session as a keyword; none commits (the caller owns the transaction).
They are written in the modules named below and gathered here:

    lifecycle.py    open_or_update_ticket(s), resolve_problem, close_resolved, reconcile, mark_breaches
    actions.py      create_manual_ticket, transition, assign, change_priority, add_comment, record_costs
    queries.py      get_ticket, list_tickets, history, attachments (events_of, attachments_of), district_costs
    planned.py      create_schedule, open_planned_tickets
    attachments.py  save_attachment
    routing.py      route_district
"""

from __future__ import annotations

from monitor.tickets.actions import add_comment, assign, change_priority, create_manual_ticket, record_costs, transition
from monitor.tickets.attachments import save_attachment
from monitor.tickets.choices import problem_key
from monitor.tickets.lifecycle import (
    ProblemReport,
    ReconcileResult,
    TicketOutcome,
    close_resolved,
    mark_breaches,
    open_or_update_ticket,
    open_or_update_tickets,
    reconcile,
    resolve_problem,
)
from monitor.tickets.planned import create_schedule, open_planned_tickets
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.queries import (
    DistrictCost,
    TicketFilters,
    TicketList,
    attachments,
    attachments_of,
    district_costs,
    events_of,
    get_ticket,
    history,
    list_tickets,
)
from monitor.tickets.routing import route_district
from monitor.tickets.workflow import InvalidTransition, allowed_actions

__all__ = [
    "DistrictCost",
    "InvalidTransition",
    "ProblemReport",
    "ReconcileResult",
    "TicketFilters",
    "TicketList",
    "TicketOutcome",
    "TicketPolicy",
    "add_comment",
    "allowed_actions",
    "assign",
    "attachments",
    "attachments_of",
    "change_priority",
    "close_resolved",
    "create_manual_ticket",
    "create_schedule",
    "district_costs",
    "events_of",
    "get_ticket",
    "history",
    "list_tickets",
    "mark_breaches",
    "open_or_update_ticket",
    "open_or_update_tickets",
    "open_planned_tickets",
    "problem_key",
    "reconcile",
    "record_costs",
    "resolve_problem",
    "route_district",
    "save_attachment",
    "transition",
]
