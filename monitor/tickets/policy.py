"""A deployment's ticket policy: SLA targets, reopen window, close delay, automatic resolution, routing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from monitor.config import Settings
from monitor.tickets.sla import CalendarKind, SlaPolicy

MIB = 1024 * 1024
_PREFIX = re.compile(r"^[A-Z]{1,8}$")


@dataclass(frozen=True, slots=True)
class TicketPolicy:
    """How tickets behave in one deployment; every field has the default the issue asks for.

    - `sla`: targets per priority and the calendar the clocks count in (see `sla.py`).
    - `reopen_window`: a problem that returns within this time after its ticket was resolved reopens
      that ticket; later, it gets a new ticket linked to the old one.
    - `close_delay`: resolved tickets are closed after this time unless someone reopens them.
    - `auto_resolve`: whether a recovery resolves automatic tickets (`auto`, `alertmanager`) by itself.
    - `province_prefix`: the first part of ticket codes (`LS-2026-000123`).
    - `routing_overrides`: commune code -> district code, for maintenance areas that differ from
      the administrative districts (after the 2025 reform).
    - `attachment_max_bytes`: the largest photo accepted.
    """

    sla: SlaPolicy = field(default_factory=SlaPolicy)
    reopen_window: timedelta = timedelta(hours=24)
    close_delay: timedelta = timedelta(days=3)
    auto_resolve: bool = True
    province_prefix: str = "LS"
    routing_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    attachment_max_bytes: int = 5 * MIB

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.province_prefix):
            raise ValueError(f"a province prefix is 1 to 8 capital letters, got {self.province_prefix!r}")
        if self.reopen_window < timedelta(0) or self.close_delay < timedelta(0):
            raise ValueError("the reopen window and the close delay cannot be negative")
        if self.attachment_max_bytes <= 0:
            raise ValueError("the attachment size limit must be positive")
        object.__setattr__(self, "routing_overrides", MappingProxyType(dict(self.routing_overrides)))


def policy_from_settings(settings: Settings) -> TicketPolicy:
    """A deployment's ticket behaviour from its settings: prefix, reopen window, close delay, automatic
    resolution, SLA calendar (`monitor.policies` builds it here, and so does whoever opens tickets alone)."""
    calendar = CalendarKind.WORKING_HOURS if settings.tickets_working_hours else CalendarKind.TWENTY_FOUR_SEVEN
    return TicketPolicy(
        sla=SlaPolicy(calendar=calendar),
        reopen_window=timedelta(hours=settings.tickets_reopen_window_h),
        close_delay=timedelta(hours=settings.tickets_close_delay_h),
        auto_resolve=settings.tickets_auto_resolve,
        province_prefix=settings.province_prefix,
    )
