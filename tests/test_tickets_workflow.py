"""The ticket workflow, exhaustively: which action moves which status where, and what a refusal says."""

from __future__ import annotations

import pytest

from monitor.errors import Conflict
from monitor.tickets.choices import DONE_STATUSES, OPEN_STATUSES, TicketAction, TicketStatus
from monitor.tickets.workflow import TRANSITIONS, InvalidTransition, allowed_actions, apply_action

S, A = TicketStatus, TicketAction

EXPECTED_ALLOWED = {
    S.NEW: [A.ACKNOWLEDGE, A.START, A.RESOLVE],
    S.PLANNED: [A.ACKNOWLEDGE, A.START, A.RESOLVE],
    S.ACKNOWLEDGED: [A.START, A.WAIT, A.RESOLVE],
    S.IN_PROGRESS: [A.WAIT, A.RESOLVE],
    S.WAITING: [A.RESUME, A.RESOLVE],
    S.RESOLVED: [A.CLOSE, A.REOPEN],
    S.CLOSED: [A.REOPEN],
    S.REOPENED: [A.ACKNOWLEDGE, A.START, A.RESOLVE],
}


@pytest.mark.parametrize("status", list(TicketStatus))
def test_each_status_allows_exactly_the_documented_actions(status: TicketStatus) -> None:
    assert allowed_actions(status) == EXPECTED_ALLOWED[status]


def test_the_happy_path_goes_from_new_to_closed() -> None:
    status = S.NEW
    path = [A.ACKNOWLEDGE, A.START, A.WAIT, A.RESUME, A.RESOLVE, A.CLOSE]
    seen = []
    for action in path:
        status = apply_action(status, action)
        seen.append(status)
    assert seen == [S.ACKNOWLEDGED, S.IN_PROGRESS, S.WAITING, S.IN_PROGRESS, S.RESOLVED, S.CLOSED]


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES))
def test_resolve_is_allowed_from_every_open_status(status: TicketStatus) -> None:
    assert apply_action(status, A.RESOLVE) is S.RESOLVED


@pytest.mark.parametrize("status", sorted(DONE_STATUSES))
def test_a_resolved_or_closed_ticket_can_be_reopened_then_worked_again(status: TicketStatus) -> None:
    reopened = apply_action(status, A.REOPEN)
    assert reopened is S.REOPENED
    assert apply_action(reopened, A.ACKNOWLEDGE) is S.ACKNOWLEDGED
    assert apply_action(reopened, A.START) is S.IN_PROGRESS


def test_an_invalid_transition_is_a_conflict_that_lists_the_allowed_actions() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(S.CLOSED, A.START)
    error = caught.value
    assert isinstance(error, Conflict)
    assert (error.status, error.action, error.allowed) == (S.CLOSED, A.START, [A.REOPEN])
    assert str(error) == "cannot start a ticket that is closed; allowed: reopen"


def test_every_pair_not_in_the_table_is_refused() -> None:
    for status in TicketStatus:
        for action in TicketAction:
            if (status, action) in TRANSITIONS:
                continue
            with pytest.raises(InvalidTransition):
                apply_action(status, action)


def test_plain_strings_from_the_api_are_accepted() -> None:
    assert apply_action("waiting", "resume") is S.IN_PROGRESS
    with pytest.raises(ValueError):
        apply_action("waiting", "teleport")


def test_every_status_and_action_has_a_vietnamese_label_first() -> None:
    assert S.IN_PROGRESS.label() == "Đang xử lý"
    assert A.ACKNOWLEDGE.label("en") == "Acknowledge"
