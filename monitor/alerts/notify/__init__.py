"""Notifications: problem events to people and systems, through webhooks, e-mail, Telegram and Zalo.

    deliveries = enqueue(event, session=session, now=now)          # in the dispatcher's transaction
    report = await deliver_due(engine=engine, now=utcnow(), stats=stats)   # the delivery worker

The public API is exactly what this module exports. Inside:

    events.py      ProblemEvent, what the dispatcher hands over (pure)
    routing.py     which channels and people hear of an event: district and priority (pure)
    templates.py   subjects and plain-text bodies in Vietnamese and English, digests (pure)
    schemas.py     each channel kind's config (secrets write-only), API shapes
    http.py        every outgoing HTTP request (one place to time out, cap and test)
    channels.py    the senders: signed webhook, SMTP with STARTTLS, Telegram Bot API
    zalo.py        the Zalo sender (OA or ZNS messages) and its access token's renewal, once across processes
    service.py     enqueue (idempotent), channels, deliveries, test messages
    worker.py      deliver_due: claim, fold into digests, rate limit, send, record with backoff
    errors.py      DeliveryError
"""

from monitor.alerts.notify.channels import OutgoingMessage, Sender, Senders, open_senders
from monitor.alerts.notify.errors import DeliveryError
from monitor.alerts.notify.events import ProblemEvent, ProblemEventKind, event_from_problem
from monitor.alerts.notify.service import enqueue, enqueue_many, idempotency_key, purge_deliveries
from monitor.alerts.notify.worker import DeliveryPolicy, DeliveryReport, DeliveryStats, backlog, deliver_due

__all__ = [
    "DeliveryError",
    "DeliveryPolicy",
    "DeliveryReport",
    "DeliveryStats",
    "OutgoingMessage",
    "ProblemEvent",
    "ProblemEventKind",
    "Sender",
    "Senders",
    "backlog",
    "deliver_due",
    "enqueue",
    "enqueue_many",
    "event_from_problem",
    "idempotency_key",
    "open_senders",
    "purge_deliveries",
]
