"""The senders: a webhook (signed JSON), e-mail over SMTP, a Telegram bot, Zalo (`zalo.py`). One attempt
each; the worker retries.

    async with open_senders() as senders:
        await deliver(senders, channel, recipient, message)   # raises DeliveryError, secrets redacted

Webhook, Telegram and Zalo go through `http.py`; SMTP is the standard library's smtplib, run in a thread.
Every error message is cleaned of the channel's secrets before it leaves this module, because it ends
up in the deliveries table and the API. The config reaches the senders opened (monitor/sealing.py); a secret
the configured keys cannot open fails the attempt with the reason, naming the channel (it is retried: a
dispatcher given the key can still send it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from monitor.alerts.choices import ChannelKind
from monitor.alerts.notify import http
from monitor.alerts.notify.errors import DeliveryError, redact
from monitor.alerts.notify.schemas import (
    SECRET_KEYS,
    ChannelConfig,
    EmailConfig,
    TelegramConfig,
    WebhookConfig,
    parse_config,
)
from monitor.alerts.notify.templates import shorten
from monitor.alerts.notify.zalo import ZaloSender
from monitor.errors import InvalidInput
from monitor.sealing import SecretUnreadable, Unopened

if TYPE_CHECKING:
    from monitor.alerts.notify.zalo import TokenStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-SHA256"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Telegram refuses longer messages.
TELEGRAM_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """A channel as the senders see it: its name, kind and stored config (secrets included), and where its
    renewable tokens are kept (Zalo's; None where nothing can be stored)."""

    id: int
    name: str
    kind: ChannelKind
    config: Mapping[str, Any]
    tokens: TokenStore | None = None

    def checked(self) -> ChannelConfig:
        """The config checked against the kind's model; a config that no longer passes cannot send, nor one
        whose secrets the configured keys cannot open."""
        unopened = {key: value for key, value in sorted(self.config.items()) if isinstance(value, Unopened)}
        if unopened:
            where = f"notification channel {self.name!r} ({', '.join(unopened)})"
            raise DeliveryError(str(SecretUnreadable([where], next(iter(unopened.values())).reason)))
        try:
            return parse_config(self.kind, self.config)
        except InvalidInput as exc:
            fields = ", ".join(p.field for p in exc.problems)
            raise DeliveryError(f"channel {self.name!r} has an invalid config ({fields})", permanent=True) from exc

    def secrets(self) -> list[str]:
        """The channel's secret values, to keep out of error messages."""
        return [str(v) for k, v in self.config.items() if k in SECRET_KEYS and v]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one recipient: a single event's, or a digest of several.

    `key` is the Idempotency-Key (a digest's is the hash of its deliveries' keys, so a retry of the same
    digest carries the same key); `items` are the events as the webhook's JSON carries them; `link` the
    page of the event's ticket (`{public_url}/tickets/{code}`), which ends every text that has one.
    """

    key: str
    subject: str
    text: str
    at: datetime
    items: tuple[Mapping[str, Any], ...] = field(default=())
    link: str | None = None

    @property
    def full_text(self) -> str:
        """The body, and the link to the ticket's page last."""
        return f"{self.text}\n{self.link}" if self.link else self.text

    @property
    def chat_text(self) -> str:
        """Subject and body in one text, for chats that have no subject (a digest already opens with it)."""
        text = self.text if self.text.startswith(self.subject) else f"{self.subject}\n\n{self.text}"
        return f"{text}\n{self.link}" if self.link else text

    def chat_text_within(self, limit: int) -> str:
        """`chat_text` in at most `limit` characters: the body is cut, the link to the ticket kept whole."""
        if not self.link or len(self.link) >= limit // 2:
            return shorten(self.chat_text, limit)
        body = OutgoingMessage(self.key, self.subject, self.text, self.at).chat_text
        return f"{shorten(body, limit - len(self.link) - 1)}\n{self.link}"


class Sender(Protocol):
    """Sends one message to one recipient of a channel, once; raises DeliveryError when it could not."""

    async def send(self, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None: ...


Senders = Mapping[ChannelKind, Sender]


def sign(secret: str, body: bytes) -> str:
    """The webhook signature: hex HMAC-SHA256 of the raw body keyed by the channel's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs `{"idempotency_key", "subject", "text", "count", "events": [...]}` as JSON, signed.

    The receiver checks `X-Signature-SHA256` against its copy of the secret, and may drop a body whose
    `Idempotency-Key` it has already processed (a retry after a lost answer).
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None:
        config = channel.checked()
        assert isinstance(config, WebhookConfig)
        payload = {
            "idempotency_key": message.key,
            "subject": message.subject,
            "text": message.full_text,
            "link": message.link,
            "count": len(message.items),
            "events": list(message.items),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(config.secret.get_secret_value(), body),
            IDEMPOTENCY_HEADER: message.key,
        }
        answer = await http.post(self.client, config.url, content=body, headers=headers, timeout_s=config.timeout_s)
        if not answer.ok:
            raise http.refusal(answer, "the webhook")


class TelegramSender:
    """Calls the Bot API's `sendMessage` with plain text (no `parse_mode`: nothing is interpreted)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None:
        config = channel.checked()
        assert isinstance(config, TelegramConfig)
        url = f"{config.api_base_url}/bot{config.bot_token.get_secret_value()}/sendMessage"
        body = json.dumps(
            {"chat_id": recipient, "text": message.chat_text_within(TELEGRAM_MAX_TEXT)}, ensure_ascii=False
        ).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        answer = await http.post(self.client, url, content=body, headers=headers, timeout_s=config.timeout_s)
        data = answer.json()
        if answer.ok and isinstance(data, dict) and data.get("ok") is True:
            return
        detail = str(data.get("description", ""))[:200] if isinstance(data, dict) else ""
        error = http.refusal(answer, "Telegram", detail) if not answer.ok else DeliveryError(f"Telegram: {detail}")
        parameters = data.get("parameters") if isinstance(data, dict) else None
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            error.retry_after = float(parameters["retry_after"])
        raise error


class EmailSender:
    """Sends text/plain UTF-8 e-mail through the channel's SMTP server (STARTTLS and login when configured).

    smtplib blocks, so each message is sent in a worker thread. `ssl_context` decides which certificates
    STARTTLS trusts (the system's by default).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context or ssl.create_default_context()

    async def send(self, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None:
        config = channel.checked()
        assert isinstance(config, EmailConfig)
        await asyncio.to_thread(self._send, config, recipient, message)

    @staticmethod
    def compose(config: EmailConfig, recipient: str, message: OutgoingMessage) -> EmailMessage:
        """The e-mail: plain text, Vietnamese subject encoded as RFC 2047 by the e-mail package."""
        mail = EmailMessage()
        mail["From"] = config.from_addr
        mail["To"] = recipient
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(message.at)
        domain = config.from_addr.rpartition("@")[2] or "localhost"
        # Derived from the idempotency key: a mail system may drop a retried copy it already has.
        mail["Message-ID"] = f"<{message.key[:40]}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        mail.set_content(message.full_text)
        return mail

    def _send(self, config: EmailConfig, recipient: str, message: OutgoingMessage) -> None:
        where = f"SMTP {config.smtp_host}:{config.smtp_port}"
        try:
            mail = self.compose(config, recipient, message)
        except ValueError as exc:  # an address the e-mail package refuses in a header
            raise DeliveryError(f"cannot write an e-mail to {recipient!r}: {exc}", permanent=True) from exc
        try:
            with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s) as smtp:
                if config.starttls:
                    smtp.starttls(context=self.ssl_context)
                if config.username:
                    password = config.password.get_secret_value() if config.password else ""
                    smtp.login(config.username, password)
                smtp.send_message(mail, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"{where} refused the recipient ({codes})", permanent=min(codes) >= 500) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where}: login refused ({exc.smtp_code})") from exc
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"{where}: {exc.smtp_code} {text[:200]}", permanent=exc.smtp_code >= 500) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {exc}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:  # OSError: refused, timed out, TLS (ssl.SSLError)
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc


async def deliver(senders: Senders, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None:
    """Send `message` through `channel`'s sender; every failure becomes a DeliveryError without secrets.

    An unexpected error of a sender is a bug, but it must not leave its deliveries unrecorded: it is
    logged with its traceback and recorded as a failed attempt like any other.
    """
    sender = senders.get(channel.kind)
    if sender is None:
        raise DeliveryError(f"no sender for {channel.kind.value} channels", permanent=True)
    try:
        await sender.send(channel, recipient, message)
    except DeliveryError as exc:
        raise DeliveryError(
            redact(str(exc), channel.secrets()), permanent=exc.permanent, retry_after=exc.retry_after
        ) from None
    except Exception as exc:
        log.exception("the %s sender failed unexpectedly on channel %s", channel.kind.value, channel.id)
        raise DeliveryError(redact(f"unexpected {type(exc).__name__}: {exc}", channel.secrets())) from None


@asynccontextmanager
async def open_senders(
    *, ssl_context: ssl.SSLContext | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Senders]:
    """The senders of every kind, sharing one HTTP client that is closed on exit."""
    async with http.open_client(transport=transport) as client:
        yield {
            ChannelKind.WEBHOOK: WebhookSender(client),
            ChannelKind.EMAIL: EmailSender(ssl_context),
            ChannelKind.TELEGRAM: TelegramSender(client),
            ChannelKind.ZALO: ZaloSender(client),
        }
