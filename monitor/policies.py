"""The policies of a deployment, built from its settings (one place, shared by every process)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from monitor.alerts.notify import DeliveryPolicy
from monitor.alerts.rules import AlertRules, load_rules
from monitor.config import Settings
from monitor.tickets.policy import TicketPolicy, policy_from_settings


def ticket_policy(settings: Settings) -> TicketPolicy:
    """Ticket behaviour: prefix, reopen window, close delay, automatic resolution, SLA calendar."""
    return policy_from_settings(settings)


def alert_rules(settings: Settings) -> AlertRules:
    """Alert rules: the built-in defaults, or the deployment's file."""
    return load_rules(settings.alert_rules_file)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How notifications are retried, digested and sent."""
    return DeliveryPolicy(
        max_attempts=settings.notify_max_attempts,
        backoff=timedelta(seconds=settings.notify_backoff_s),
        max_backoff=timedelta(seconds=settings.notify_max_backoff_s),
        digest_items=settings.notify_digest_items,
        concurrency=settings.notify_concurrency,
        timezone=ZoneInfo(settings.timezone),
        public_url=settings.public_url,
    )


@dataclass(frozen=True, slots=True)
class Policies:
    """Every policy of a deployment, built once at a process's start (the alert rules file is read then)."""

    tickets: TicketPolicy
    alerts: AlertRules
    delivery: DeliveryPolicy

    @classmethod
    def build(cls, settings: Settings) -> Policies:
        return cls(tickets=ticket_policy(settings), alerts=alert_rules(settings), delivery=delivery_policy(settings))
