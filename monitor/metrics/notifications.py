"""Notifications for Prometheus: what the web process's notification worker did, and the deliveries table.

The counters are this process's (`DeliveryStats`, since it started): messages and deliveries by channel
kind and outcome. The deliveries table is read at scrape time, so it is true across every process that
delivers (pending ones piling up, failed ones kept). A process that runs `monitor dispatch` apart has no
metrics server: its own counters are not exported, its deliveries are (through the table). Every channel
kind and outcome is exported from the start, with zeros, so that rates and alerts see the first failure.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.alerts.notify.worker import DeliveryStats, backlog
from monitor.metrics.exporter import Renderer
from monitor.metrics.exposition import Block, family_block, labels
from monitor.metrics.names import (
    NOTIFICATION_BACKLOG,
    NOTIFICATION_DELIVERIES,
    NOTIFICATION_MESSAGES,
)

MESSAGE_OUTCOMES = ("sent", "failed", "rate_limited")
DELIVERY_OUTCOMES = ("sent", "retrying", "failed", "rate_limited")


class NotificationSource:
    """The notification worker's counters (copied at capture) and the deliveries by status (read in the thread)."""

    name = "notifications"

    def __init__(self, stats: DeliveryStats, engine: Engine) -> None:
        self.stats = stats
        self.engine = engine

    def capture(self) -> Renderer:
        messages, deliveries = self.stats.messages(), self.stats.deliveries()

        def render() -> Sequence[Block]:
            return notification_blocks(messages, deliveries, backlog(self.engine))

        return render


def notification_blocks(
    messages: dict[tuple[str, str], int],
    deliveries: dict[tuple[str, str], int],
    in_table: dict[tuple[str, str], int],
) -> list[Block]:
    """The three notification families, every channel kind with every outcome or status."""
    kinds = sorted({k.value for k in ChannelKind} | {k for k, _ in messages} | {k for k, _ in in_table})
    statuses = sorted({s.value for s in DeliveryStatus} | {s for _, s in in_table})
    return [
        family_block(
            NOTIFICATION_MESSAGES,
            [
                (labels([("channel", k), ("outcome", o)]), messages.get((k, o), 0))
                for k in kinds
                for o in sorted(set(MESSAGE_OUTCOMES) | {o for _, o in messages})
            ],
        ),
        family_block(
            NOTIFICATION_DELIVERIES,
            [
                (labels([("channel", k), ("outcome", o)]), deliveries.get((k, o), 0))
                for k in kinds
                for o in sorted(set(DELIVERY_OUTCOMES) | {o for _, o in deliveries})
            ],
        ),
        family_block(
            NOTIFICATION_BACKLOG,
            [(labels([("channel", k), ("status", s)]), in_table.get((k, s), 0)) for k in kinds for s in statuses],
        ),
    ]


__all__ = ["NotificationSource", "notification_blocks"]
