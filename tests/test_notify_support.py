"""Peers and people for the notification tests (no tests here).

Real peers on loopback: an aiohttp webhook receiver that checks signatures, an aiosmtpd SMTP server
(STARTTLS with a self-signed certificate made here, and login), and an aiohttp stand-in for the
Telegram Bot API. The last one is a mock: the real service cannot be reached from the tests; it speaks
the documented `sendMessage` contract (POST /bot<token>/sendMessage, JSON {"ok": true, "result": …}).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session, select

from monitor.alerts.models import NotificationChannel
from monitor.alerts.notify.events import ProblemEvent
from monitor.auth.models import Role, User
from tests.peers import free_port

T0 = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)  # 14:05 in Hà Nội
CAO_LOC, DINH_LAP = "183", "189"
DONG_DANG, DINH_LAP_TOWN = "06184", "06613"
WEBHOOK_SECRET = "whsec-0123456789abcdef-cao-loc"
BOT_TOKEN = "123456789:AAE-secret-token_xyz"
SMTP_USER, SMTP_PASSWORD = "monitor", "smtp-password-42"


# --- people -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    username: str
    role: Role
    district: str | None
    email: str
    chat: str
    language: str = "vi"


#: Who the tests expect to hear what: Cao Lộc's officer and technician (who reads English), Đình Lập's
#: officer, the province's administrator (P1/P2 only), a leader (never notified).
PEOPLE = (
    Member("admin", Role.ADMIN, None, "admin@sovhtt.langson.gov.vn", "1001"),
    Member("lanhdao", Role.LEADER, None, "lanhdao@langson.gov.vn", "1002"),
    Member("caoloc", Role.OFFICER, CAO_LOC, "caoloc@langson.gov.vn", "1831"),
    Member("kythuat", Role.TECHNICIAN, CAO_LOC, "kythuat@langson.gov.vn", "1832", "en"),
    Member("dinhlap", Role.OFFICER, DINH_LAP, "dinhlap@langson.gov.vn", "1891"),
)
ADDRESS = {m.username: m.email for m in PEOPLE}
CHAT = {m.username: m.chat for m in PEOPLE}


def add_people(session: Session, *, with_passwords: bool = False) -> None:
    """The cast with e-mail addresses, Telegram chats and languages (passwords only when they log in)."""
    if with_passwords:
        from monitor.auth.cast import seed_cast

        seed_cast(session=session)
    for member in PEOPLE:
        user = session.exec(select(User).where(User.username == member.username)).first()
        if user is None:
            user = User(
                username=member.username,
                full_name=member.username,
                role=member.role.value,
                district_code=member.district,
                password_hash="not-a-hash",
            )
        user.email, user.telegram_chat_id, user.language = member.email, member.chat, member.language
        session.add(user)
    session.commit()


def add_channel(session: Session, name: str, kind: str, config: dict[str, Any], **fields: Any) -> NotificationChannel:
    channel = NotificationChannel(name=name, kind=kind, config=config, **fields)
    session.add(channel)
    session.commit()
    return channel


def event(
    device: str = "06184-CL01",
    *,
    kind: str = "opened",
    district: str | None = CAO_LOC,
    commune: str | None = DONG_DANG,
    problem: str = "offline",
    priority: str = "P3",
    at: datetime = T0,
    scope: str = "device",
    members: tuple[str, ...] = (),
    ticket: str | None = "LS-2026-000123",
) -> ProblemEvent:
    """An event about `device` (or a commune/district when `scope` says so) of Cao Lộc by default."""
    return ProblemEvent(
        kind=kind,  # type: ignore[arg-type]  # strings are accepted and normalised
        problem_key=f"{scope}:{device}:{problem}",
        scope=scope,  # type: ignore[arg-type]
        scope_code=device,
        problem_kind=problem,
        priority=priority,  # type: ignore[arg-type]
        title=f"{device} mất kết nối",
        district_code=district,
        commune_code=commune,
        members=members,
        ticket_code=ticket,
        at=at,
    )


# --- a webhook receiver -------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookPeer:
    """Receives webhooks, checks each signature with `secret`, answers the scripted statuses then 200."""

    secret: str = WEBHOOK_SECRET
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/fleet"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Signature-SHA256", "")
        self.received.append(Received(dict(request.headers), body, hmac.compare_digest(expected, given)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"status": status}, status=status)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@asynccontextmanager
async def webhook_peer(statuses: list[int] | None = None) -> AsyncIterator[WebhookPeer]:
    peer = WebhookPeer(statuses=list(statuses or []))
    app = web.Application()
    app.router.add_post("/hooks/fleet", peer.handle)
    async with serve(app) as port:
        peer.port = port
        yield peer


# --- a stand-in for the Telegram Bot API --------------------------------------------------------


@dataclass
class TelegramPeer:
    """Answers `sendMessage` as the Bot API documents it; a wrong token gets 401 like the real one."""

    token: str = BOT_TOKEN
    refuse: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        data = await request.json()
        if str(data["chat_id"]) in self.refuse:
            status, answer = self.refuse[str(data["chat_id"])]
            return web.json_response(answer, status=status)
        self.messages.append(data)
        result = {"message_id": len(self.messages), "chat": {"id": data["chat_id"]}, "text": data["text"]}
        return web.json_response({"ok": True, "result": result})


@asynccontextmanager
async def telegram_peer() -> AsyncIterator[TelegramPeer]:
    peer = TelegramPeer()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", peer.handle)
    async with serve(app) as port:
        peer.port = port
        yield peer


# --- an SMTP server -----------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server accepted: each message with its envelope recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        self.tls.append(session.ssl is not None)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@dataclass
class SmtpPeer:
    mailbox: Mailbox
    port: int
    client_context: ssl.SSLContext | None


@contextmanager
def smtp_peer(folder: Path | None = None) -> Iterator[SmtpPeer]:
    """aiosmtpd on a free port; with `folder`, STARTTLS required (self-signed cert) and login checked."""
    mailbox = Mailbox()
    port = free_port()
    kwargs: dict[str, Any] = {}
    client_context = None
    if folder is not None:
        cert, key = self_signed(folder)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        kwargs = {
            "tls_context": server_context,
            "require_starttls": True,
            "authenticator": mailbox.authenticate,
            "auth_require_tls": True,
        }
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpPeer(mailbox, port, client_context)
    finally:
        controller.stop()


def smtp_config(peer: SmtpPeer, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": peer.port,
        "starttls": peer.client_context is not None,
        "from_addr": "giamsat@langson.gov.vn",
        "timeout_s": 5,
    }
    if peer.client_context is not None:
        config |= {"username": SMTP_USER, "password": SMTP_PASSWORD}
    return config | extra
