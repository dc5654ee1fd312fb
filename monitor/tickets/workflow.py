"""The ticket workflow: which action moves a ticket from which status to which. Pure, no I/O.

```
 new ─┐                         ┌────── wait ─────┐
      ├─ acknowledge ─► acknowledged ─ start ─► in_progress ◄─ resume ─ waiting
 planned                                                   │
 reopened ─┘  (start also from new, planned, reopened: starting work acknowledges it)
 any open status ─ resolve ─► resolved ─ close ─► closed
 resolved, closed ─ reopen ─► reopened
```

`waiting` stops the SLA clock (parts, access, weather); `wait` is allowed once the ticket is acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from monitor.errors import Conflict
from monitor.tickets.choices import OPEN_STATUSES, TicketAction, TicketStatus

S, A = TicketStatus, TicketAction

_MOVES: dict[tuple[TicketStatus, TicketAction], TicketStatus] = {
    (S.NEW, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.PLANNED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.REOPENED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.NEW, A.START): S.IN_PROGRESS,
    (S.PLANNED, A.START): S.IN_PROGRESS,
    (S.REOPENED, A.START): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, A.START): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, A.WAIT): S.WAITING,
    (S.IN_PROGRESS, A.WAIT): S.WAITING,
    (S.WAITING, A.RESUME): S.IN_PROGRESS,
    (S.RESOLVED, A.CLOSE): S.CLOSED,
    (S.RESOLVED, A.REOPEN): S.REOPENED,
    (S.CLOSED, A.REOPEN): S.REOPENED,
    **{(status, A.RESOLVE): S.RESOLVED for status in OPEN_STATUSES},
}

#: Every allowed move: (status, action) -> new status.
TRANSITIONS: Mapping[tuple[TicketStatus, TicketAction], TicketStatus] = MappingProxyType(_MOVES)


class InvalidTransition(Conflict):
    """An action that the ticket's current status does not allow (API: 409 with the allowed actions)."""

    def __init__(self, status: TicketStatus, action: TicketAction, allowed: list[TicketAction]) -> None:
        self.status = status
        self.action = action
        self.allowed = allowed
        names = ", ".join(a.value for a in allowed) or "none"
        super().__init__(f"cannot {action.value} a ticket that is {status.value}; allowed: {names}")


def allowed_actions(status: TicketStatus | str) -> list[TicketAction]:
    """The actions allowed from `status`, in the order of `TicketAction`."""
    status = TicketStatus(status)
    return [action for action in TicketAction if (status, action) in TRANSITIONS]


def apply_action(status: TicketStatus | str, action: TicketAction | str) -> TicketStatus:
    """The status after `action`; raises InvalidTransition listing the allowed actions otherwise."""
    status, action = TicketStatus(status), TicketAction(action)
    try:
        return TRANSITIONS[status, action]
    except KeyError:
        raise InvalidTransition(status, action, allowed_actions(status)) from None
