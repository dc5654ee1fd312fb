"""The delivery worker: claims due deliveries, folds each recipient's into one message, sends, records.

    report = await deliver_due(engine=engine, now=utcnow(), stats=stats)

1. **Claim**, in one short transaction: pending rows due by now (`next_attempt_at <= now`), oldest
   first, locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer at a time:
   `BEGIN IMMEDIATE`). Their `next_attempt_at` moves to the end of a lease, so no other worker takes
   them meanwhile; a worker that dies leaves them to be retried once the lease ends. Delivery is thus
   at least once, and receivers can drop a repeat by its Idempotency-Key.
2. **Group** by (channel, recipient): a single row is sent as its own message; several become one
   digest ("23 sự cố mới ở Huyện Cao Lộc: …"), so a storm sends one message per recipient, not hundreds.
3. **Rate limit**: a channel sends at most `rate_limit_per_minute` messages in any minute (counted from
   the table, so across workers). Groups over the limit are not attempted: they wait until the window
   has room, and fold into a larger digest then. Nothing is dropped, a resolution included.
4. **Send**, with no transaction open, a few groups at a time.
5. **Record**, in one short transaction: on every row, attempts, last_error, sent_at, and the key of
   the message that carried it; a failure is retried with exponential backoff (or when the peer asked),
   and fails for good after `max_attempts` or at once when retrying cannot help. A row is written only
   if it is still ours (its lease untouched), so a worker that overran its lease changes nothing.

Network I/O is async; the database calls are short and synchronous, so they run in a thread and never
hold the event loop (in the demo, collectors and the web share it).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.alerts.notify.channels import ChannelTarget, OutgoingMessage, Senders, deliver, open_senders
from monitor.alerts.notify.errors import DeliveryError
from monitor.alerts.notify.templates import Notice, render_digest, ticket_url
from monitor.alerts.notify.zalo import ChannelTokens
from monitor.db import begin_write
from monitor.i18n import LOCAL_ZONE
from monitor.priority import Priority

DELIVERIES = SQLModel.metadata.tables["notification_deliveries"]
CHANNELS = SQLModel.metadata.tables["notification_channels"]
RATE_WINDOW = timedelta(minutes=1)
_IN_CHUNK = 1000  # ids per IN (...) list
_RANK = {priority.value: rank for rank, priority in enumerate(Priority)}


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How the worker retries, batches and folds. The defaults suit a province's few channels."""

    max_attempts: int = 5
    #: Wait before the first retry; it doubles with each failed attempt, up to `max_backoff`.
    backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    #: How long claimed rows are left alone by other workers: longer than a run can take, which is at
    #: most (messages / concurrency) x the channels' timeout (10 s by default).
    lease: timedelta = timedelta(minutes=5)
    #: Rows claimed per run; a recipient's rows beyond it go in the next run's digest.
    batch: int = 5000
    #: Events listed in a digest before "and N more".
    digest_items: int = 20
    #: Messages in flight at once.
    concurrency: int = 10
    timezone: ZoneInfo = LOCAL_ZONE
    #: The service's address (`Settings.public_url`): when set, a message ends with its ticket's page.
    public_url: str | None = None

    def retry_delay(self, attempts: int, asked_s: float | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt: exponential, at least what the peer asked."""
        delay = min(self.backoff * (1 << max(0, attempts - 1)), self.max_backoff)
        if asked_s is not None:
            delay = max(delay, min(timedelta(seconds=asked_s), self.max_backoff))
        return delay


@dataclass
class DeliveryReport:
    """What one `deliver_due` run did: messages (a digest is one) and deliveries (rows) by outcome."""

    claimed: int = 0
    messages_sent: int = 0
    messages_failed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    #: Rows held back by a channel's rate limit (not attempted, due again when the window has room).
    rate_limited: int = 0


class DeliveryStats:
    """Counters since the process started, by channel kind and outcome, for metrics to export.

    Outcomes of messages: `sent`, `failed` (the attempt failed), `rate_limited`; of deliveries (rows):
    `sent`, `retrying`, `failed`, `rate_limited`. Thread-safe: a scrape may read while the worker writes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: Counter[tuple[str, str]] = Counter()
        self._deliveries: Counter[tuple[str, str]] = Counter()

    def record(self, kind: ChannelKind | str, outcome: str, *, messages: int = 0, deliveries: int = 0) -> None:
        """Count `messages` and `deliveries` of one channel kind with one outcome."""
        key = (ChannelKind(kind).value, outcome)
        with self._lock:
            if messages:
                self._messages[key] += messages
            if deliveries:
                self._deliveries[key] += deliveries

    def messages(self) -> dict[tuple[str, str], int]:
        """Messages by (channel kind, outcome), a copy."""
        with self._lock:
            return dict(self._messages)

    def deliveries(self) -> dict[tuple[str, str], int]:
        """Deliveries (rows) by (channel kind, outcome), a copy."""
        with self._lock:
            return dict(self._deliveries)


def backlog(engine: Engine) -> dict[tuple[str, str], int]:
    """Deliveries by (channel kind, status) as the table holds them now: for metrics read at scrape time,
    true across every worker process (pending piling up, failures kept)."""
    query = (
        sa.select(CHANNELS.c.kind, DELIVERIES.c.status, sa.func.count())
        .select_from(DELIVERIES.join(CHANNELS, CHANNELS.c.id == DELIVERIES.c.channel_id))
        .group_by(CHANNELS.c.kind, DELIVERIES.c.status)
    )
    with engine.connect() as connection:
        return {(kind, status): int(count) for kind, status, count in connection.execute(query)}


# --- claim --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    channel_id: int
    recipient: str
    key: str
    subject: str
    body: str
    payload: Mapping[str, Any]
    attempts: int
    last_error: str | None

    @property
    def notice(self) -> dict[str, Any] | None:
        notice = self.payload.get("notice")
        return notice if isinstance(notice, dict) else None

    @property
    def rank(self) -> int:
        return _RANK.get(str((self.notice or {}).get("priority")), len(_RANK))


@dataclass(frozen=True, slots=True)
class _Channel:
    target: ChannelTarget
    active: bool
    rate_limit: int
    sent_in_window: int
    oldest_in_window: datetime | None


@dataclass(frozen=True, slots=True)
class _Claim:
    lease_until: datetime
    rows: list[_Due]
    channels: dict[int, _Channel]


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def _claim(engine: Engine, now: datetime, policy: DeliveryPolicy) -> _Claim | None:
    lease_until = now + policy.lease
    d = DELIVERIES.c
    with engine.begin() as connection:
        begin_write(connection)
        query = (
            sa.select(
                d.id,
                d.channel_id,
                d.recipient,
                d.idempotency_key,
                d.subject,
                d.body,
                d.payload,
                d.attempts,
                d.last_error,
            )
            .where(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(policy.batch)
        )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [_Due(*row) for row in connection.execute(query)]
        if not rows:
            return None
        for chunk in _chunks([r.id for r in rows]):
            connection.execute(sa.update(DELIVERIES).where(d.id.in_(chunk)).values(next_attempt_at=lease_until))
        channels = _channels(connection, sorted({r.channel_id for r in rows}), now, ChannelTokens(engine))
    return _Claim(lease_until, rows, channels)


def _channels(connection: Connection, ids: list[int], now: datetime, tokens: ChannelTokens) -> dict[int, _Channel]:
    d, c = DELIVERIES.c, CHANNELS.c
    window = {
        channel_id: (int(count), oldest)
        for channel_id, count, oldest in connection.execute(
            sa.select(d.channel_id, sa.func.count(sa.distinct(d.message_key)), sa.func.min(d.sent_at))
            .where(d.channel_id.in_(ids), d.sent_at > now - RATE_WINDOW)
            .group_by(d.channel_id)
        )
    }
    found = {}
    for row in connection.execute(sa.select(CHANNELS).where(c.id.in_(ids))):
        count, oldest = window.get(row.id, (0, None))
        target = ChannelTarget(row.id, row.name, ChannelKind(row.kind), row.config or {}, tokens)
        found[row.id] = _Channel(target, row.active, row.rate_limit_per_minute, count, oldest)
    return found


# --- group and compose --------------------------------------------------------------------------


@dataclass
class _Group:
    channel: _Channel
    recipient: str
    rows: list[_Due]
    message: OutgoingMessage | None = None
    error: DeliveryError | None = None
    deferred_until: datetime | None = None
    sent: bool = False


def _compose(rows: list[_Due], now: datetime, policy: DeliveryPolicy) -> OutgoingMessage:
    items = tuple(r.notice for r in rows if r.notice is not None)
    if len(rows) == 1:
        row = rows[0]
        link = ticket_url(policy.public_url, (row.notice or {}).get("ticket_code"))
        return OutgoingMessage(key=row.key, subject=row.subject, text=row.body, at=now, items=items, link=link)
    # The same rows give the same key, so a retried digest carries the Idempotency-Key it had.
    key = hashlib.sha256("\n".join(sorted(r.key for r in rows)).encode()).hexdigest()
    language = str(rows[0].payload.get("language", "vi"))
    notices = [Notice.from_json(item) for item in items]
    if not notices:  # rows without events (not written by `enqueue`): list their subjects
        text = "\n".join(f"• {r.subject}" for r in rows)
        return OutgoingMessage(key=key, subject=rows[0].subject, text=text, at=now)
    digest = render_digest(
        notices, language, limit=policy.digest_items, tz=policy.timezone, public_url=policy.public_url
    )
    text = digest.text
    if len(notices) < len(rows):  # rows that are not problem events (report reminders) are listed too
        text += "\n\n" + "\n".join(f"• {r.subject}" for r in rows if r.notice is None)
    return OutgoingMessage(key=key, subject=digest.subject, text=text, at=now, items=items)


def _groups(claim: _Claim, now: datetime, policy: DeliveryPolicy) -> list[_Group]:
    by_recipient: dict[tuple[int, str], list[_Due]] = defaultdict(list)
    for row in claim.rows:
        by_recipient[(row.channel_id, row.recipient)].append(row)
    groups = []
    for (channel_id, recipient), rows in by_recipient.items():
        channel = claim.channels.get(channel_id)
        if channel is None:  # deleted meanwhile: its rows went with it
            continue
        groups.append(_Group(channel, recipient, rows))
    # Most urgent first, then oldest: what the rate limit lets through now is what matters most.
    groups.sort(key=lambda g: (min(r.rank for r in g.rows), min(r.id for r in g.rows)))
    budget = {cid: max(0, ch.rate_limit - ch.sent_in_window) for cid, ch in claim.channels.items()}
    for group in groups:
        channel = group.channel
        if not channel.active:
            group.error = DeliveryError("the channel is disabled", permanent=True)
        elif budget[channel.target.id] <= 0:
            room_at = (channel.oldest_in_window or now) + RATE_WINDOW
            group.deferred_until = max(room_at, now + timedelta(seconds=1))
        else:
            budget[channel.target.id] -= 1
            group.message = _compose(group.rows, now, policy)
    return groups


# --- record -------------------------------------------------------------------------------------


def _row_changes(group: _Group, now: datetime, policy: DeliveryPolicy) -> list[dict[str, Any]]:
    key = group.message.key if group.message else None
    changes = []
    for row in group.rows:
        change: dict[str, Any] = {
            "b_id": row.id,
            "b_status": DeliveryStatus.PENDING.value,
            "b_attempts": row.attempts,
            "b_next": None,
            "b_sent": None,
            "b_message": key,
            # A success keeps the error of the attempts before it: it tells why attempts > 1.
            "b_error": row.last_error,
        }
        if group.deferred_until is not None:
            change["b_next"] = group.deferred_until
        elif group.sent:
            change.update(b_status=DeliveryStatus.SENT.value, b_attempts=row.attempts + 1, b_sent=now)
        else:
            assert group.error is not None
            attempted = group.message is not None
            attempts = row.attempts + 1 if attempted else row.attempts
            change.update(b_attempts=attempts, b_error=str(group.error)[:500])
            if group.error.permanent or attempts >= policy.max_attempts:
                change["b_status"] = DeliveryStatus.FAILED.value
            else:
                change["b_next"] = now + policy.retry_delay(attempts, group.error.retry_after)
        changes.append(change)
    return changes


def _record(engine: Engine, lease_until: datetime, changes: list[dict[str, Any]]) -> None:
    d = DELIVERIES.c
    statement = (
        sa.update(DELIVERIES)
        .where(
            d.id == sa.bindparam("b_id"),
            d.status == DeliveryStatus.PENDING.value,
            d.next_attempt_at == sa.bindparam("b_lease", type_=d.next_attempt_at.type),
        )
        .values(
            status=sa.bindparam("b_status"),
            attempts=sa.bindparam("b_attempts"),
            next_attempt_at=sa.bindparam("b_next", type_=d.next_attempt_at.type),
            sent_at=sa.bindparam("b_sent", type_=d.sent_at.type),
            message_key=sa.bindparam("b_message"),
            last_error=sa.bindparam("b_error"),
        )
    )
    with engine.begin() as connection:
        begin_write(connection)
        connection.execute(statement, [{**c, "b_lease": lease_until} for c in changes])


# --- the run ------------------------------------------------------------------------------------


async def _send_all(groups: list[_Group], senders: Senders, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def send(group: _Group) -> None:
        assert group.message is not None
        async with gate:
            try:
                await deliver(senders, group.channel.target, group.recipient, group.message)
            except DeliveryError as exc:
                group.error = exc
            else:
                group.sent = True

    await asyncio.gather(*(send(g) for g in groups if g.message is not None))


def _count(
    groups: list[_Group], report: DeliveryReport, stats: DeliveryStats | None, changes: list[dict[str, Any]]
) -> None:
    status_of = {c["b_id"]: c["b_status"] for c in changes}
    for group in groups:
        kind = group.channel.target.kind
        rows = len(group.rows)
        if group.deferred_until is not None:
            message_outcome, row_outcomes = "rate_limited", Counter({"rate_limited": rows})
        else:
            message_outcome = "sent" if group.sent else "failed"
            row_outcomes = Counter(
                "sent" if group.sent else ("failed" if status_of[r.id] == DeliveryStatus.FAILED.value else "retrying")
                for r in group.rows
            )
        if group.message is not None:
            report.messages_sent += int(group.sent)
            report.messages_failed += int(not group.sent)
        report.sent += row_outcomes["sent"]
        report.retrying += row_outcomes["retrying"]
        report.failed += row_outcomes["failed"]
        report.rate_limited += row_outcomes["rate_limited"]
        if stats is not None:
            if group.message is not None or group.deferred_until is not None:
                stats.record(kind, message_outcome, messages=1)
            for outcome, count in row_outcomes.items():
                stats.record(kind, outcome, deliveries=count)


async def deliver_due(
    *,
    engine: Engine,
    now: datetime,
    policy: DeliveryPolicy | None = None,
    senders: Senders | None = None,
    stats: DeliveryStats | None = None,
) -> DeliveryReport:
    """Send every delivery due by `now`, one message per (channel, recipient); see the module docstring.

    `senders` defaults to the real ones (`open_senders()`), opened for this run; pass your own to share
    an HTTP client between runs or to trust another CA for STARTTLS.
    """
    policy = policy or DeliveryPolicy()
    claim = await asyncio.to_thread(_claim, engine, now, policy)
    report = DeliveryReport()
    if claim is None:
        return report
    report.claimed = len(claim.rows)
    groups = _groups(claim, now, policy)
    if any(g.message is not None for g in groups):
        if senders is None:
            async with open_senders() as own:
                await _send_all(groups, own, policy.concurrency)
        else:
            await _send_all(groups, senders, policy.concurrency)
    changes = [change for group in groups for change in _row_changes(group, now, policy)]
    if changes:
        await asyncio.to_thread(_record, engine, claim.lease_until, changes)
    _count(groups, report, stats, changes)
    return report
