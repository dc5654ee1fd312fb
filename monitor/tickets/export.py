"""Tickets as rows for a spreadsheet: the queue's filters, the caller's districts, labels for people.

Read in keyset batches, each in its own short session, so that a province's million tickets never sit in
memory and no connection is held while a slow client reads: a batch is read only when the previous one
has been handed on. The batches follow the ticket's id (the order codes were given), not the queue's due
time: the id is the primary key, so each batch is one index range whatever the filters, where an order by
due time of every status would sort the whole table again for every batch.

Device fault codes are labelled by the caller (`kind_label`): tickets know no health, and the web layer,
which reads both, passes `monitor.health.states.fault_label`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from monitor.auth.models import User
from monitor.inventory.models import Commune, District
from monitor.priority import Priority
from monitor.tabular import Cell
from monitor.tickets.choices import ProblemScope, TicketSource, TicketStatus
from monitor.tickets.models import Ticket
from monitor.tickets.queries import TicketFilters, filter_conditions

BATCH = 1000

#: (Vietnamese header, English header), in the order of the cells of `ticket_rows`.
COLUMNS: Sequence[tuple[str, str]] = (
    ("Mã phiếu", "Ticket"),
    ("Tiêu đề", "Title"),
    ("Trạng thái", "Status"),
    ("Mức ưu tiên", "Priority"),
    ("Nguồn", "Source"),
    ("Loại sự cố", "Problem"),
    ("Phạm vi", "Scope"),
    ("Mã thiết bị", "Device"),
    ("Mã xã", "Commune code"),
    ("Xã", "Commune"),
    ("Mã huyện/khu vực", "District code"),
    ("Huyện/khu vực", "District"),
    ("Người phụ trách", "Assignee"),
    ("Tạo lúc", "Created"),
    ("Hạn tiếp nhận", "Acknowledge by"),
    ("Tiếp nhận lúc", "Acknowledged"),
    ("Hạn khắc phục", "Resolve by"),
    ("Khắc phục lúc", "Resolved"),
    ("Đóng lúc", "Closed"),
    ("Quá hạn SLA", "SLA breached"),
    ("Số lần mở lại", "Reopenings"),
    ("Chi phí vật tư (đồng)", "Parts (VND)"),
    ("Chi phí nhân công (đồng)", "Labour (VND)"),
)
#: Column widths for a workbook, in characters.
WIDTHS: Sequence[int] = (16, 40, 14, 16, 18, 22, 12, 16, 8, 22, 10, 18, 22, *([16] * 6), 10, 10, 14, 14)

#: Kinds of tickets that are not a device's fault code.
TICKET_KINDS = {
    "report": ("Cơ sở báo hỏng", "Reported by the commune"),
    "inspection": ("Kiểm tra định kỳ", "Planned inspection"),
}


def header(language: str = "vi") -> list[str]:
    """The column headers, Vietnamese unless `language` is "en"."""
    return [en if language == "en" else vi for vi, en in COLUMNS]


def ticket_kind_label(kind: str, language: str = "vi") -> str:
    """The label of a ticket kind this package gives (report, inspection); any other is shown as it is."""
    labels = TICKET_KINDS.get(kind)
    return kind if labels is None else labels[1 if language == "en" else 0]


_SELECTED = [
    col(column)
    for column in (
        Ticket.id,
        Ticket.code,
        Ticket.title,
        Ticket.status,
        Ticket.priority,
        Ticket.source,
        Ticket.kind,
        Ticket.scope,
        Ticket.scope_code,
        Ticket.commune_code,
        Commune.name,
        Ticket.district_code,
        District.name,
        User.full_name,
        Ticket.created_at,
        Ticket.ack_due_at,
        Ticket.acknowledged_at,
        Ticket.resolve_due_at,
        Ticket.resolved_at,
        Ticket.closed_at,
        Ticket.sla_breached,
        Ticket.reopen_count,
        Ticket.parts_cost_vnd,
        Ticket.labour_cost_vnd,
    )
]


def _label(choices: Any, value: str, language: str) -> str:
    try:
        return str(choices(value).label(language))
    except ValueError:
        return value


def _cells(row: Any, language: str, kind_label: Callable[[str, str], str]) -> list[Cell]:
    scope = row.scope
    return [
        row.code,
        row.title,
        _label(TicketStatus, row.status, language),
        _label(Priority, row.priority, language),
        _label(TicketSource, row.source, language),
        kind_label(row.kind, language),
        _label(ProblemScope, scope, language),
        row.scope_code if scope == ProblemScope.DEVICE.value else None,
        row.commune_code,
        row[10],  # the commune's name
        row.district_code,
        # the district's name; a province ticket is no district's: "Toàn tỉnh" (the scope's label) says whose
        row[12] if row.district_code is not None else ProblemScope.PROVINCE.label(language),
        row.full_name,
        row.created_at,
        row.ack_due_at,
        row.acknowledged_at,
        row.resolve_due_at,
        row.resolved_at,
        row.closed_at,
        ("Yes" if language == "en" else "Có") if row.sla_breached else ("No" if language == "en" else "Không"),
        row.reopen_count,
        row.parts_cost_vnd,
        row.labour_cost_vnd,
    ]


def ticket_rows(
    filters: TicketFilters,
    *,
    engine: Engine,
    district_codes: Collection[str] | None = None,
    language: str = "vi",
    kind_label: Callable[[str, str], str] = ticket_kind_label,
    batch: int = BATCH,
) -> Iterator[list[Cell]]:
    """Every ticket matching `filters` within `district_codes` (the rows of the queue with the same filters),
    one list of cells per ticket in the order of `COLUMNS`, by id; lazy: `batch` tickets are read at a time,
    each batch in a session of its own, when the rows before it have been taken."""
    query = (
        sa.select(*_SELECTED)
        .select_from(Ticket)
        .outerjoin(District, col(District.code) == col(Ticket.district_code))  # a province ticket has none
        .outerjoin(Commune, col(Commune.code) == col(Ticket.commune_code))
        .outerjoin(User, col(User.id) == col(Ticket.assignee_id))
        .where(*filter_conditions(filters, district_codes))
        .order_by(col(Ticket.id))
        .limit(batch)
    )
    after = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(query.where(col(Ticket.id) > after)).all()
        for row in rows:
            yield _cells(row, language, kind_label)
        if len(rows) < batch:
            return
        after = rows[-1].id
