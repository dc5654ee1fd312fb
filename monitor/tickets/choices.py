"""Choice sets of tickets, each with its Vietnamese label first and its English one."""

from __future__ import annotations

from monitor.labels import LabelledEnum


class TicketStatus(LabelledEnum):
    """Where a ticket stands in its workflow (see `workflow.py` for the moves between them).

    `resolved` and `closed` are the only statuses that are not open: at most one open ticket exists
    per problem identity, and the database enforces it on exactly this split.
    """

    NEW = "new", "Mới", "New"
    PLANNED = "planned", "Theo kế hoạch", "Planned"
    ACKNOWLEDGED = "acknowledged", "Đã tiếp nhận", "Acknowledged"
    IN_PROGRESS = "in_progress", "Đang xử lý", "In progress"
    WAITING = "waiting", "Tạm dừng chờ", "Waiting"
    RESOLVED = "resolved", "Đã khắc phục", "Resolved"
    CLOSED = "closed", "Đã đóng", "Closed"
    REOPENED = "reopened", "Mở lại", "Reopened"

    @property
    def is_open(self) -> bool:
        """Whether work is still owed on the ticket."""
        return self not in DONE_STATUSES


#: Statuses in which no work is owed; every other status is open.
DONE_STATUSES: frozenset[TicketStatus] = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
OPEN_STATUSES: frozenset[TicketStatus] = frozenset(s for s in TicketStatus if s not in DONE_STATUSES)
#: The SQL predicate of an open ticket, written once: the partial indexes and the queries must use
#: the very same text, or the planners (SQLite's above all) will not match them.
OPEN_STATUS_SQL = "status NOT IN ('resolved', 'closed')"


class TicketSource(LabelledEnum):
    """Who opened the ticket.

    `planned` tickets come from inspection schedules (preventive work); they are never resolved
    automatically, like `manual` ones, and reports can tell preventive from corrective work.
    """

    AUTO = "auto", "Tự động (giám sát)", "Automatic (monitoring)"
    ALERTMANAGER = "alertmanager", "Alertmanager", "Alertmanager"
    MANUAL = "manual", "Báo cáo thủ công", "Manual report"
    PLANNED = "planned", "Bảo trì định kỳ", "Planned maintenance"

    @property
    def is_automatic(self) -> bool:
        """Whether a recovery may resolve the ticket by itself."""
        return self in AUTOMATIC_SOURCES


AUTOMATIC_SOURCES: frozenset[TicketSource] = frozenset({TicketSource.AUTO, TicketSource.ALERTMANAGER})


class ProblemScope(LabelledEnum):
    """What a problem is about: one device, a whole commune or a whole district (a grouped flood), or the
    province's service itself (a collector, Prometheus) with no place of the inventory.

    A province problem's ticket belongs to no district: the province operator (administrators) owns it,
    leaders read it, and no district's people see it.
    """

    DEVICE = "device", "Thiết bị", "Device"
    COMMUNE = "commune", "Xã", "Commune"
    DISTRICT = "district", "Huyện / khu vực", "District / area"
    PROVINCE = "province", "Toàn tỉnh", "Province"


class TicketAction(LabelledEnum):
    """What a person (or the system) does to a ticket's status."""

    ACKNOWLEDGE = "acknowledge", "Tiếp nhận", "Acknowledge"
    START = "start", "Bắt đầu xử lý", "Start work"
    WAIT = "wait", "Tạm dừng chờ", "Wait"
    RESUME = "resume", "Tiếp tục xử lý", "Resume work"
    RESOLVE = "resolve", "Xác nhận đã khắc phục", "Resolve"
    CLOSE = "close", "Đóng", "Close"
    REOPEN = "reopen", "Mở lại", "Reopen"


class EventKind(LabelledEnum):
    """What one history event of a ticket records."""

    CREATED = "created", "Tạo phiếu", "Created"
    STATUS = "status", "Đổi trạng thái", "Status changed"
    ASSIGNEE = "assignee", "Phân công", "Assignee changed"
    PRIORITY = "priority", "Đổi mức ưu tiên", "Priority changed"
    DUE = "due", "Đổi thời hạn", "Due time changed"
    COMMENT = "comment", "Ghi chú", "Comment"
    COST = "cost", "Chi phí sửa chữa", "Repair cost"
    ATTACHMENT = "attachment", "Ảnh đính kèm", "Attachment"
    ESCALATED = "escalated", "Quá hạn, báo cấp tỉnh", "Breached, escalated to the province"
    REOPENED = "reopened", "Sự cố tái diễn, mở lại", "Problem returned, reopened"
    AUTO_RESOLVED = "auto_resolved", "Tự động khắc phục", "Resolved automatically"
    RECOVERED = "recovered", "Thiết bị đã phục hồi", "Recovered (left open by policy)"


class TicketOutcomeAction(LabelledEnum):
    """What `open_or_update_ticket` did with a problem report."""

    OPENED = "opened", "Mở phiếu mới", "Opened"
    UPDATED = "updated", "Cập nhật phiếu đang mở", "Updated the open ticket"
    REOPENED = "reopened", "Mở lại phiếu vừa khắc phục", "Reopened the recent ticket"
    REOPENED_AS_NEW = "reopened_as_new", "Mở phiếu mới nối với phiếu cũ", "Opened a new ticket linked to the old one"
    UNCHANGED = "unchanged", "Không thay đổi", "Unchanged (a duplicate report)"


def problem_key(scope: ProblemScope | str, scope_code: str, kind: str) -> str:
    """The identity of a problem: `device:06613-CL01:offline`, `commune:06613:offline`, `district:183:power_loss`,
    `province:collectors:collector`."""
    return f"{ProblemScope(scope).value}:{scope_code}:{kind}"
