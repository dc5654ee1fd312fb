"""Shapes of notifications: each channel kind's config, and the API's requests and answers.

A channel's config is checked against its kind's model on every write. Its secrets (`secret`,
`password`, `bot_token`, Zalo's `app_secret`, `refresh_token` and `access_token`) are write-only: answers
show `SECRET_MARKER` where one is set, and sending the marker back in an update keeps the stored value,
so a client can round-trip what it read. They are sealed at rest by the column (monitor/sealing.py); one
that the configured keys cannot open (`Unopened`) is shown as set, and must be given again to change the
config. `SERVICE_KEYS` are what the service keeps in a config for
itself (a Zalo access token's expiry, who is renewing it): never shown, never accepted from a client,
kept across updates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from monitor.alerts.choices import ChannelKind, DeliveryStatus
from monitor.alerts.models import CHANNEL_SEALED_KEYS, CHANNEL_SECRET_KEYS
from monitor.config import PLACEHOLDER_SECRETS
from monitor.errors import InvalidInput, Problem
from monitor.priority import Priority
from monitor.sealing import Unopened

Language = Literal["vi", "en"]
SECRET_KEYS = CHANNEL_SECRET_KEYS
#: Kept by the service in a Zalo channel's config: the access token's expiry (ISO 8601, UTC), the renewal
#: under way (a claim and until when it holds: see `zalo.py`), and the refresh token Zalo refused last.
SERVICE_KEYS = frozenset({"access_token_expires_at", "token_claim", "token_claimed_until", "refused_refresh_sha256"})
SECRET_MARKER = "***set***"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
DEFAULT_ZALO_OA_API = "https://openapi.zalo.me"
DEFAULT_ZALO_ZNS_API = "https://business.openapi.zalo.me"
DEFAULT_ZALO_OAUTH = "https://oauth.zaloapp.com"
# No spaces, commas or angle brackets: an address that cannot smuggle a second one or a header.
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_CHAT_ID = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{5,32})$")
# A Zalo user id as an OA sees its followers (digits), and a Vietnamese mobile number as ZNS takes it
# (84 and the subscriber number; 0912…, +84912… and spaces or dots are accepted and normalised).
_ZALO_USER_ID = re.compile(r"^[0-9]{5,25}$")
_PHONE = re.compile(r"^(?:\+?84|0)([35789][0-9]{8})$")
_PHONE_SCHEMA: JsonDict = {"pattern": r"^[0-9+ .]{9,20}$"}
_TOKEN_SCHEMA: JsonDict = {"pattern": r"^[!-~]+$"}  # tokens go into a header: printable ASCII, no spaces
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


def zalo_phone(value: str) -> str:
    """A Vietnamese mobile number as ZNS wants it (`84912345678`); ValueError when it is not one."""
    digits = re.sub(r"[\s.]", "", value)
    found = _PHONE.match(digits)
    if not found:
        raise ValueError(f"not a Vietnamese mobile number: {value!r}")
    return "84" + found.group(1)


ZaloMode = Literal["oa", "zns"]


class ZaloConfig(_Config):
    """A Zalo Official Account: OA messages to followers (`mode: oa`, recipients are Zalo user ids) or ZNS
    template messages to phone numbers (`mode: zns`, `template_id` required; without `recipients`, the
    district's people at their phone numbers).

    The OA's access token lives about 25 hours; the service renews it with `refresh_token`, `app_id` and
    `app_secret`, and keeps the new pair (each refresh token works once). The base URLs are Zalo's.
    """

    mode: ZaloMode = "oa"
    app_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")
    app_secret: SecretStr = Field(
        min_length=8,
        max_length=200,
        description="the Zalo app's secret key; write-only",
        json_schema_extra=_TOKEN_SCHEMA,
    )
    refresh_token: SecretStr = Field(
        min_length=8,
        max_length=1000,
        description="write-only; replaced by the service at every renewal",
        json_schema_extra=_TOKEN_SCHEMA,
    )
    access_token: SecretStr | None = Field(
        default=None, max_length=1000, description="write-only; kept by the service", json_schema_extra=_TOKEN_SCHEMA
    )
    template_id: str | None = Field(default=None, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")
    recipients: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Zalo user ids (oa) or phone numbers (zns); empty: the district's people (zns only)",
        json_schema_extra={"items": {"type": "string", **_PHONE_SCHEMA}},
    )
    oa_api_base_url: str = Field(default=DEFAULT_ZALO_OA_API, max_length=500, json_schema_extra=_URL_SCHEMA)
    zns_api_base_url: str = Field(default=DEFAULT_ZALO_ZNS_API, max_length=500, json_schema_extra=_URL_SCHEMA)
    oauth_base_url: str = Field(default=DEFAULT_ZALO_OAUTH, max_length=500, json_schema_extra=_URL_SCHEMA)

    @field_validator("oa_api_base_url", "zns_api_base_url", "oauth_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("app_secret", "refresh_token", "access_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        # Sent in a header or a form: no spaces or control characters that could split either.
        if value is not None and not re.fullmatch(r"[!-~]+", value.get_secret_value()):
            raise ValueError("printable characters without spaces only")
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("a placeholder is not a secret")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients_of_the_mode(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("mode") == "zns":
            return [zalo_phone(r) for r in value]
        for recipient in value:
            if not _ZALO_USER_ID.match(recipient.strip()):
                raise ValueError(f"not a Zalo user id: {recipient!r}")
        return [r.strip() for r in value]

    @model_validator(mode="after")
    def _zns_has_a_template(self) -> Self:
        if self.mode == "zns" and not self.template_id:
            raise ValueError("a ZNS channel needs template_id, the id of its approved template")
        return self


ChannelConfig = WebhookConfig | EmailConfig | TelegramConfig | ZaloConfig
CONFIG_MODELS: Mapping[ChannelKind, type[ChannelConfig]] = {
    ChannelKind.WEBHOOK: WebhookConfig,
    ChannelKind.EMAIL: EmailConfig,
    ChannelKind.TELEGRAM: TelegramConfig,
    ChannelKind.ZALO: ZaloConfig,
}
#: Where a kind's config names its own recipients (instead of the district's people).
RECIPIENT_KEYS: Mapping[ChannelKind, str] = {
    ChannelKind.EMAIL: "to",
    ChannelKind.TELEGRAM: "chat_ids",
    ChannelKind.ZALO: "recipients",
}


def service_state(stored: Mapping[str, Any]) -> dict[str, Any]:
    """What the service keeps for itself in a stored config (`SERVICE_KEYS`)."""
    return {key: value for key, value in stored.items() if key in SERVICE_KEYS}


def parse_config(kind: ChannelKind | str, data: Mapping[str, Any]) -> ChannelConfig:
    """The config of a channel of `kind`, checked; InvalidInput names every bad field (`config.url`).

    `SERVICE_KEYS` are left out of the check (the stored config holds them; a client's never does:
    see `refuse_service_keys`)."""
    model = CONFIG_MODELS[ChannelKind(kind)]
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in SERVICE_KEYS})
    except ValidationError as exc:
        problems = [
            Problem(".".join(["config", *(str(p) for p in error["loc"])]), error["msg"]) for error in exc.errors()
        ]
        raise InvalidInput(f"invalid {ChannelKind(kind).value} channel config", problems) from exc


def refuse_service_keys(kind: ChannelKind | str, data: Mapping[str, Any]) -> None:
    """InvalidInput when a client's config sets what only the service keeps (`SERVICE_KEYS`)."""
    given = sorted(key for key in data if key in SERVICE_KEYS)
    if given:
        problems = [Problem(f"config.{key}", "kept by the service, not set by a client") for key in given]
        raise InvalidInput(f"invalid {ChannelKind(kind).value} channel config", problems)


def stored_config(config: ChannelConfig) -> dict[str, Any]:
    """What the database keeps of a checked config: every field, secrets as values (the column seals them)."""
    return {
        key: value.get_secret_value() if isinstance(value, SecretStr) else value
        for key, value in config.model_dump(mode="python").items()
    }


def refuse_unopened(config: Mapping[str, Any]) -> None:
    """InvalidInput naming each sealed value of `config` that the keys could not open (it must be given again)."""
    problems = [
        Problem(f"config.{key}", f"cannot be opened ({value.reason}): give it again")
        for key, value in sorted(config.items())
        if key in CHANNEL_SEALED_KEYS and isinstance(value, Unopened)
    ]
    if problems:
        raise InvalidInput("the channel's stored secrets cannot be opened", problems)


def merge_config(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`stored` updated with `changes`: a key set to None is removed, a secret given as the marker is kept.

    A new Zalo refresh token starts a new line of tokens: the access token of the old line (unless given
    too) and the service's state about it go.
    """
    merged = dict(stored)
    new_refresh = changes.get("refresh_token") not in (None, SECRET_MARKER, stored.get("refresh_token"))
    if new_refresh:
        for key in SERVICE_KEYS | {"access_token"}:
            merged.pop(key, None)
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
        if key in SERVICE_KEYS:
            continue
        if key in SECRET_KEYS or isinstance(value, Unopened):
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
