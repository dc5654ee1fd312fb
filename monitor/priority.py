"""Priority of a problem or a ticket, shared by health (faults' default priorities) and tickets (SLA)."""

from __future__ import annotations

from monitor.labels import LabelledEnum


class Priority(LabelledEnum):
    """How urgent a problem or a repair is; P1 is the most urgent."""

    P1 = "P1", "P1 – Khẩn cấp", "P1 – Urgent"
    P2 = "P2", "P2 – Cao", "P2 – High"
    P3 = "P3", "P3 – Trung bình", "P3 – Medium"
    P4 = "P4", "P4 – Thấp", "P4 – Low"
