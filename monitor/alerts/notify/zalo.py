"""Zalo: OA messages to followers, or ZNS template messages to phone numbers, and the access token's renewal.

    ZaloSender(client).send(channel, recipient, message)     # as every sender: one attempt, DeliveryError

Zalo's API (https://developers.zalo.me):

- OA message: `POST {oa}/v3.0/oa/message/cs`, header `access_token`, JSON
  `{"recipient": {"user_id": …}, "message": {"text": …}}` (2000 characters at most);
- ZNS message: `POST {zns}/message/template`, header `access_token`, JSON
  `{"phone": "84…", "template_id": …, "template_data": {…}, "tracking_id": …}`;
- both answer HTTP 200 with `{"error": 0, …}`; another `error` is a refusal, and -216 / -124 mean the
  access token is invalid or expired;
- renewal: `POST {oauth}/v4/oa/access_token`, header `secret_key`, form `refresh_token`, `app_id`,
  `grant_type=refresh_token`, answering `{"access_token", "refresh_token", "expires_in": "90000"}`.

**Each refresh token works once**: the renewal answers a new one, and the old one is dead. So a renewal
must be done by one sender at a time across every process, and its answer stored before anyone needs the
token again. `ChannelTokens` does it on the channel's row: in a short locked transaction (`FOR UPDATE` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite, the way the worker claims deliveries) a sender either finds that
someone has renewed since (and uses that token), or finds a claim in force (and waits for its outcome),
or writes its own claim with an expiry; it then calls Zalo with no transaction open, and stores the new
pair and clears its claim in another short locked transaction. A refresh token Zalo refused is remembered
(by its hash) so it is not sent again; the channel needs a new one from the Zalo OA admin page.

The tokens are sealed at rest by the column (monitor/sealing.py). A process that could not seal the new pair
would lose it, and with it the channel: it does not renew (nor does one whose keys cannot open the stored pair).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.alerts.models import NotificationChannel
from monitor.alerts.notify import http
from monitor.alerts.notify.errors import DeliveryError, redact
from monitor.alerts.notify.schemas import ZaloConfig
from monitor.alerts.notify.templates import one_line, shorten
from monitor.db import begin_write
from monitor.sealing import SealingRefused, SecretUnreadable, Unopened, process_keyring

if TYPE_CHECKING:
    from monitor.alerts.notify.channels import ChannelTarget, OutgoingMessage

log = logging.getLogger(__name__)

OA_MESSAGE_PATH = "/v3.0/oa/message/cs"
ZNS_MESSAGE_PATH = "/message/template"
REFRESH_PATH = "/v4/oa/access_token"
#: Zalo refuses longer OA texts.
ZALO_MAX_TEXT = 2000
#: ZNS template parameters are short; longer values are refused, so they are cut to this.
ZNS_MAX_PARAM = 200
#: Zalo's errors for an access token that is invalid (-216) or expired (-124).
TOKEN_ERRORS = frozenset({-216, -124})
#: A token this close to its expiry is renewed first, not tried.
RENEW_AHEAD = timedelta(minutes=5)
#: An access token's life when Zalo's answer does not say (it says 90000 s, 25 hours).
DEFAULT_LIFE = timedelta(seconds=90000)
NEW_REFRESH_TOKEN = "create a new refresh token in the Zalo OA admin page and enter it in this channel"

_TABLE = NotificationChannel.__table__  # type: ignore[attr-defined]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ZaloTokens:
    """An OA's tokens: the access token (None until the first renewal), its expiry if known, the refresh token."""

    access_token: str | None
    refresh_token: str
    expires_at: datetime | None = None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> ZaloTokens:
        """The tokens a stored config holds."""
        return cls(
            config.get("access_token") or None,
            str(config.get("refresh_token") or ""),
            _instant(config.get("access_token_expires_at")),
        )

    def usable(self, now: datetime) -> bool:
        """Whether the access token is worth trying at `now` (an unknown expiry is tried: Zalo will say)."""
        return bool(self.access_token) and (self.expires_at is None or now < self.expires_at - RENEW_AHEAD)

    def stored(self) -> dict[str, Any]:
        """The config keys that hold these tokens."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "access_token_expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


class RefreshRefused(DeliveryError):
    """Zalo refused a refresh token: it is dead, and a person must create a new one."""


Refresh = Callable[[str], Awaitable[ZaloTokens]]


class TokenStore(Protocol):
    """Where a Zalo channel's tokens live, renewed once however many senders need them at once."""

    async def renew(
        self, channel_id: int, *, tried: str | None, now: datetime, lease: timedelta, refresh: Refresh
    ) -> ZaloTokens:
        """Tokens better than `tried` (the access token the caller found wanting): someone else's newer ones,
        or those `refresh(refresh_token)` answers, stored before they are returned."""
        ...


Decision = Literal["renewed", "wait", "refused", "mine"]


class ChannelTokens:
    """The tokens in the channel's row (`config`), renewed under a claim written in that row (see the module)."""

    def __init__(self, engine: Engine, *, poll_s: float = 0.1) -> None:
        self.engine = engine
        self.poll_s = poll_s

    @staticmethod
    def _locked(connection: Connection, channel_id: int) -> dict[str, Any]:
        query = sa.select(_TABLE.c.config).where(_TABLE.c.id == channel_id)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        config = connection.execute(query).scalar()
        if config is None:
            raise DeliveryError("the channel was deleted", permanent=True)
        unopened = [key for key, value in sorted(config.items()) if isinstance(value, Unopened)]
        if unopened:
            where = f"notification channel {channel_id} ({', '.join(unopened)})"
            raise DeliveryError(str(SecretUnreadable([where], config[unopened[0]].reason)))
        return dict(config)

    @staticmethod
    def _write(connection: Connection, channel_id: int, config: dict[str, Any]) -> None:
        connection.execute(sa.update(_TABLE).where(_TABLE.c.id == channel_id).values(config=config))

    def _claim(
        self, channel_id: int, tried: str | None, claim: str, now: datetime, lease: timedelta
    ) -> tuple[Decision, ZaloTokens]:
        wall = datetime.now(UTC)  # claims are about processes, which live on the real clock
        with self.engine.begin() as connection:
            begin_write(connection)
            config = self._locked(connection, channel_id)
            tokens = ZaloTokens.of(config)
            if tokens.access_token != tried and tokens.usable(now):
                return "renewed", tokens
            until = _instant(config.get("token_claimed_until"))
            if config.get("token_claim") and until is not None and until > wall:
                return "wait", tokens
            if config.get("refused_refresh_sha256") == _sha256(tokens.refresh_token):
                return "refused", tokens
            config |= {"token_claim": claim, "token_claimed_until": (wall + lease).isoformat()}
            self._write(connection, channel_id, config)
            return "mine", tokens

    def _finish(
        self, channel_id: int, claim: str, renewed: ZaloTokens | None = None, refused: str | None = None
    ) -> None:
        with self.engine.begin() as connection:
            begin_write(connection)
            config = self._locked(connection, channel_id)
            if renewed is not None:
                # Stored whoever holds the claim now: Zalo has just made these the only valid pair.
                config |= renewed.stored()
                config.pop("refused_refresh_sha256", None)
            if refused is not None and config.get("refresh_token") == refused:
                config["refused_refresh_sha256"] = _sha256(refused)
            if config.get("token_claim") == claim:
                config.pop("token_claim", None)
                config.pop("token_claimed_until", None)
            self._write(connection, channel_id, config)

    async def renew(
        self, channel_id: int, *, tried: str | None, now: datetime, lease: timedelta, refresh: Refresh
    ) -> ZaloTokens:
        """See `TokenStore.renew`. Waits at most `lease` (and a little) for another sender's renewal."""
        if not process_keyring().can_seal:  # checked before the refresh token is spent
            raise DeliveryError(f"cannot keep Zalo's renewed tokens: {SealingRefused()}")
        claim = secrets.token_hex(8)
        deadline = asyncio.get_running_loop().time() + lease.total_seconds() + 5
        while True:
            decision, tokens = await asyncio.to_thread(self._claim, channel_id, tried, claim, now, lease)
            if decision == "renewed":
                return tokens
            if decision == "refused":
                raise RefreshRefused(f"Zalo refused this channel's refresh token before: {NEW_REFRESH_TOKEN}")
            if decision == "mine":
                break
            if asyncio.get_running_loop().time() > deadline:
                raise DeliveryError("another process is renewing the Zalo access token and has not finished")
            await asyncio.sleep(self.poll_s)
        try:
            renewed = await refresh(tokens.refresh_token)
        except RefreshRefused:
            await asyncio.to_thread(self._finish, channel_id, claim, refused=tokens.refresh_token)
            raise
        except BaseException:
            # No answer: the refresh token may or may not be spent; the next attempt tries it again.
            await asyncio.shield(asyncio.to_thread(self._finish, channel_id, claim))
            raise
        await asyncio.shield(asyncio.to_thread(self._finish, channel_id, claim, renewed))
        log.info("renewed the Zalo access token of notification channel %s", channel_id)
        return renewed


def _error_of(data: Any) -> tuple[int | None, str]:
    """Zalo's error code (0: none) and its message, from an answer's JSON."""
    if not isinstance(data, dict):
        return None, ""
    code = data.get("error")
    message = data.get("message") or data.get("error_description") or data.get("error_name") or ""
    try:
        return (int(code) if code is not None else None), str(message)[:200]
    except (TypeError, ValueError):
        return None, str(message)[:200]


class ZaloSender:
    """Sends OA or ZNS messages with the channel's access token, renewing it through `channel.tokens`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, channel: ChannelTarget, recipient: str, message: OutgoingMessage) -> None:
        config = channel.checked()
        assert isinstance(config, ZaloConfig)
        tokens = ZaloTokens.of(channel.config)
        try:
            if not tokens.usable(message.at):
                tokens = await self._renew(channel, config, tokens, message.at)
            answer = await self._post(config, tokens, recipient, message)
            code, _ = _error_of(answer.json())
            if code in TOKEN_ERRORS or answer.status == 401:
                tokens = await self._renew(channel, config, tokens, message.at)
                answer = await self._post(config, tokens, recipient, message)
            self._judge(answer)
        except DeliveryError as exc:
            # The tokens renewed here are not in the channel's config, which the caller redacts with.
            hidden = [t for t in (tokens.access_token, tokens.refresh_token) if t]
            raise type(exc)(redact(str(exc), hidden), permanent=exc.permanent, retry_after=exc.retry_after) from None

    async def _renew(self, channel: ChannelTarget, config: ZaloConfig, tokens: ZaloTokens, now: datetime) -> ZaloTokens:
        if channel.tokens is None:
            raise DeliveryError(
                "the Zalo access token needs renewing, and this sender has no database to keep the new one"
            )

        async def refresh(refresh_token: str) -> ZaloTokens:
            return await self._refresh(config, refresh_token, now)

        lease = timedelta(seconds=config.timeout_s + 30)  # longer than the call can take
        return await channel.tokens.renew(channel.id, tried=tokens.access_token, now=now, lease=lease, refresh=refresh)

    async def _refresh(self, config: ZaloConfig, refresh_token: str, now: datetime) -> ZaloTokens:
        form = {"refresh_token": refresh_token, "app_id": config.app_id, "grant_type": "refresh_token"}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "secret_key": config.app_secret.get_secret_value(),
        }
        url = f"{config.oauth_base_url}{REFRESH_PATH}"
        answer = await http.post(
            self.client, url, content=urlencode(form).encode(), headers=headers, timeout_s=config.timeout_s
        )
        data = answer.json()
        if answer.ok and isinstance(data, dict) and data.get("access_token") and data.get("refresh_token"):
            try:
                life = timedelta(seconds=int(str(data.get("expires_in"))))
            except ValueError:
                life = DEFAULT_LIFE
            return ZaloTokens(str(data["access_token"]), str(data["refresh_token"]), now + life)
        _, detail = _error_of(data)
        if answer.status >= 500 or answer.status in (408, 425, 429):
            raise http.refusal(answer, "Zalo's token renewal", detail)
        raise RefreshRefused(
            f"Zalo refused to renew the access token ({detail or f'HTTP {answer.status}'}): {NEW_REFRESH_TOKEN}"
        )

    async def _post(
        self, config: ZaloConfig, tokens: ZaloTokens, recipient: str, message: OutgoingMessage
    ) -> http.HttpAnswer:
        payload: dict[str, Any]
        if config.mode == "zns":
            url = f"{config.zns_api_base_url}{ZNS_MESSAGE_PATH}"
            payload = {
                "phone": recipient,
                "template_id": config.template_id,
                "template_data": zns_template_data(message),
                "tracking_id": message.key[:48],
            }
        else:
            url = f"{config.oa_api_base_url}{OA_MESSAGE_PATH}"
            payload = {
                "recipient": {"user_id": recipient},
                "message": {"text": message.chat_text_within(ZALO_MAX_TEXT)},
            }
        headers = {"Content-Type": "application/json; charset=utf-8", "access_token": tokens.access_token or ""}
        body = json.dumps(payload, ensure_ascii=False).encode()
        return await http.post(self.client, url, content=body, headers=headers, timeout_s=config.timeout_s)

    @staticmethod
    def _judge(answer: http.HttpAnswer) -> None:
        code, detail = _error_of(answer.json())
        if answer.ok and code == 0:
            return
        if not answer.ok:
            raise http.refusal(answer, "Zalo", detail)
        # A refusal in the body (a follower who has not written lately, a quota): may pass later, so retried.
        raise DeliveryError(
            f"Zalo answered error {code}: {detail}" if code is not None else "Zalo's answer is not JSON"
        )


def zns_template_data(message: OutgoingMessage) -> dict[str, str]:
    """The parameters a ZNS template of this service has: `subject`, `content`, `link` (each short)."""
    return {
        "subject": shorten(one_line(message.subject), ZNS_MAX_PARAM),
        "content": shorten(one_line(message.text), ZNS_MAX_PARAM),
        "link": message.link or "",
    }
