"""Shapes of notifications: each channel kind's config, and the API's requests and answers.

A channel's config is checked against its kind's model on every write. Its secrets (`secret`,
`password`, `bot_token`) are write-only: answers show `SECRET_MARKER` where one is set, and sending the
marker back in an update keeps the stored value, so a client can round-trip what it read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.config import JsonDict

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.config import PLACEHOLDER_SECRETS
from monitor.errors import InvalidInput, Problem
from monitor.priority import Priority

Language = Literal["vi", "en"]
SECRET_KEYS = frozenset({"secret", "password", "bot_token"})
SECRET_MARKER = "***set***"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
# No spaces, commas or angle brackets: an address that cannot smuggle a second one or a header.
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_CHAT_ID = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{5,32})$")
# The validators' rules as JSON Schema (the document only: the validators below decide).
_URL_SCHEMA: JsonDict = {"pattern": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?(/[!-~]*)?$"}
# Python's \s also holds \x1c-\x1f and \x85, which a JSON Schema (ECMA) \s does not.
_EMAIL_SCHEMA: JsonDict = {"pattern": r'^[^@\s<>,;"\x1c-\x1f\x85]+@[^@\s<>,;"\x1c-\x1f\x85]+$'}
_SECRET_SCHEMA: JsonDict = {"pattern": r"[^\s]"}  # not only spaces (a placeholder once stripped)


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL with a host")
    return urlunsplit(parts)


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value) or len(value) > 200:
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    language: Language = Field(default="vi", description="language of messages to explicit recipients")
    timeout_s: float = Field(default=10.0, gt=0, le=60, strict=True, description="how long one attempt may take")


class WebhookConfig(_Config):
    """A webhook: JSON POSTed to `url`, signed with HMAC-SHA256 of the raw body keyed by `secret`."""

    url: str = Field(max_length=1000, json_schema_extra=_URL_SCHEMA)
    secret: SecretStr = Field(
        min_length=16, max_length=200, description="HMAC key; write-only", json_schema_extra=_SECRET_SCHEMA
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("secret")
    @classmethod
    def _real_secret(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("a placeholder is not a secret")
        return value


class EmailConfig(_Config):
    """E-mail over SMTP, with STARTTLS and login when configured; `to` overrides the district's people."""

    smtp_host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = Field(default=None, max_length=200)
    password: SecretStr | None = Field(default=None, max_length=200, description="write-only")
    from_addr: str = Field(max_length=200, json_schema_extra=_EMAIL_SCHEMA)
    to: list[str] = Field(
        default_factory=list, max_length=100, json_schema_extra={"items": {"type": "string", **_EMAIL_SCHEMA}}
    )

    @field_validator("from_addr")
    @classmethod
    def _from(cls, value: str) -> str:
        return _email(value)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_email(v) for v in value]


class TelegramConfig(_Config):
    """A Telegram bot: `sendMessage` at `api_base_url`; `chat_ids` overrides the district's people."""

    api_base_url: str = Field(default=DEFAULT_TELEGRAM_API, max_length=500, json_schema_extra=_URL_SCHEMA)
    bot_token: SecretStr = Field(
        min_length=5, max_length=200, description="write-only", json_schema_extra={"pattern": r"^[A-Za-z0-9:_-]+$"}
    )
    chat_ids: list[str] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"items": {"type": "string", "pattern": _CHAT_ID.pattern}},
    )

    @field_validator("api_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        # The token goes into the URL's path: nothing that could change the path or the host.
        if not re.fullmatch(r"[A-Za-z0-9:_-]+", value.get_secret_value()):
            raise ValueError("letters, digits, ':', '_' and '-' only")
        return value

    @field_validator("chat_ids")
    @classmethod
    def _chats(cls, value: list[str]) -> list[str]:
        for chat in value:
            if not _CHAT_ID.match(chat.strip()):
                raise ValueError(f"not a chat id or @channel: {chat!r}")
        return [chat.strip() for chat in value]


ChannelConfig = WebhookConfig | EmailConfig | TelegramConfig
CONFIG_MODELS: Mapping[ChannelKind, type[ChannelConfig]] = {
    ChannelKind.WEBHOOK: WebhookConfig,
    ChannelKind.EMAIL: EmailConfig,
    ChannelKind.TELEGRAM: TelegramConfig,
}


def parse_config(kind: ChannelKind | str, data: Mapping[str, Any]) -> ChannelConfig:
    """The config of a channel of `kind`, checked; InvalidInput names every bad field (`config.url`)."""
    model = CONFIG_MODELS[ChannelKind(kind)]
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = [
            Problem(".".join(["config", *(str(p) for p in error["loc"])]), error["msg"]) for error in exc.errors()
        ]
        raise InvalidInput(f"invalid {ChannelKind(kind).value} channel config", problems) from exc


def stored_config(config: ChannelConfig) -> dict[str, Any]:
    """What the database keeps of a checked config: every field, secrets in clear (the DB is trusted)."""
    return {
        key: value.get_secret_value() if isinstance(value, SecretStr) else value
        for key, value in config.model_dump(mode="python").items()
    }


def merge_config(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`stored` updated with `changes`: a key set to None is removed, a secret given as the marker is kept."""
    merged = dict(stored)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif key in SECRET_KEYS and value == SECRET_MARKER:
            continue
        else:
            merged[key] = value
    return merged


def _masked_url(url: str) -> str:
    # Webhook URLs of chat services carry tokens in their query or user part: show neither.
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = f"{SECRET_MARKER}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, SECRET_MARKER if parts.query else "", ""))


def public_config(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A config as answers show it: secrets replaced by the marker (when set), URLs without credentials."""
    shown: dict[str, Any] = {}
    for key, value in stored.items():
        if key in SECRET_KEYS:
            if value:
                shown[key] = SECRET_MARKER
        elif key == "url" and isinstance(value, str):
            shown[key] = _masked_url(value)
        else:
            shown[key] = value
    return shown


# --- API shapes ---------------------------------------------------------------------------------


def _config_by_kind(schema: JsonDict) -> None:
    # `config` follows `kind`: one alternative per kind, with that kind's config schema (inline).
    schema["oneOf"] = [
        {
            "properties": {
                "kind": {"const": kind.value},
                "config": CONFIG_MODELS[kind].model_json_schema(),
            }
        }
        for kind in ChannelKind
    ]


class ChannelCreate(BaseModel):
    """A new channel; `config` is checked against the kind's model."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_config_by_kind)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    kind: ChannelKind
    district_code: str | None = Field(default=None, max_length=16)
    min_priority: Priority = Priority.P4
    config: dict[str, Any]
    rate_limit_per_minute: int = Field(default=30, ge=1, le=6000)
    active: bool = True


class ChannelUpdate(BaseModel):
    """A change to a channel: only the fields given change; `config` keys merge into the stored ones."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    district_code: str | None = Field(default=None, max_length=16)
    min_priority: Priority | None = None
    config: dict[str, Any] | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=6000)
    active: bool | None = None


class ChannelPublic(BaseModel):
    """A channel as the API shows it: never a secret."""

    id: int
    name: str
    kind: ChannelKind
    kind_label: str
    district_code: str | None
    min_priority: Priority
    config: dict[str, Any]
    rate_limit_per_minute: int
    active: bool
    created_at: datetime


class ChannelTest(BaseModel):
    """Where to send a test message; default: the channel's own recipients, else the caller's address."""

    model_config = ConfigDict(extra="forbid")

    recipient: str | None = Field(default=None, max_length=200)


class ChannelTestResult(BaseModel):
    """A test message that went out."""

    sent: bool
    recipient: str
    subject: str


class DeliveryPublic(BaseModel):
    """One delivery with its attempts, as the API shows it."""

    id: int
    channel_id: int
    channel_name: str
    channel_kind: ChannelKind
    recipient: str
    district_code: str | None
    problem_key: str | None
    event_kind: str | None
    subject: str
    status: DeliveryStatus
    status_label: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    message_key: str | None


class DeliveryPage(BaseModel):
    """A page of deliveries, newest first."""

    items: list[DeliveryPublic]
    total: int
