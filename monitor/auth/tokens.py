"""Personal API tokens: a user's own bearer token for scripts and integrations, scoped exactly like them.

A token is random (256 bits), shown once when it is made and stored only as its SHA-256 (a random secret
needs no slow hash; the same approach as sessions and device heartbeat tokens). It starts with
`TOKEN_PREFIX`, which holds a '.', a character no session token has (they are URL-safe base64), so the
door knows which table to ask without a second look-up. It expires (at most a year), can be revoked, and
stops working while its owner is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select, update

from monitor.auth.models import User
from monitor.db import UTCDateTime, utcnow
from monitor.errors import InvalidInput, NotFound, Problem

TOKEN_PREFIX = "mon_pat."
DEFAULT_DAYS = 90
MAX_DAYS = 365
# "Last used" is written at most this often: a token used by a script every second must not write every second.
LAST_USED_PRECISION = timedelta(minutes=5)


class ApiToken(SQLModel, table=True):
    """A personal API token of a user. Only its hash is stored; revoked tokens are kept for the record."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(sa_column_args=[sa.ForeignKey("users.id", ondelete="CASCADE")], index=True)
    note: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def state(self, now: datetime) -> str:
        """`active`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


def is_personal_token(token: str) -> bool:
    """Whether a bearer token is a personal API token (else it may be a session token)."""
    return token.startswith(TOKEN_PREFIX)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    user: User, *, session: Session, days: int = DEFAULT_DAYS, note: str | None = None, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """Give `user` a new token valid for `days` (1..MAX_DAYS); returns the row and the secret, shown only once."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput("the token cannot be created", [Problem("days", f"1 to {MAX_DAYS}")])
    assert user.id is not None
    now = now or utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=_hash(secret),
        user_id=user.id,
        note=note.strip()[:200] if note and note.strip() else None,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    return token, secret


def token_user(secret: str, *, session: Session, now: datetime | None = None) -> tuple[User, ApiToken] | None:
    """The active owner and the token of a valid secret (not expired, not revoked), or None.

    Notes when the token was used (to the nearest LAST_USED_PRECISION) in the caller's transaction.
    """
    now = now or utcnow()
    row = session.exec(
        select(ApiToken, User).join(User, col(User.id) == ApiToken.user_id).where(ApiToken.token_hash == _hash(secret))
    ).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or token.expires_at <= now or not user.active:
        return None
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_PRECISION:
        session.exec(update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now))
        token.last_used_at = now
    return user, token


def list_tokens(*, session: Session, username: str | None = None) -> list[tuple[ApiToken, User]]:
    """Tokens with their owners, newest first; only `username`'s when given (NotFound for an unknown name)."""
    query = select(ApiToken, User).join(User, col(User.id) == ApiToken.user_id)
    if username is not None:
        if session.exec(select(User.id).where(User.username == username)).first() is None:
            raise NotFound("user", username)
        query = query.where(User.username == username)
    return list(session.exec(query.order_by(col(ApiToken.created_at).desc(), col(ApiToken.id).desc())).all())


def revoke_token(token_id: int, *, session: Session, now: datetime | None = None) -> tuple[ApiToken, User, bool]:
    """Revoke a token at once; returns it, its owner and whether it was still unrevoked (False: nothing changed)."""
    row = session.exec(
        select(ApiToken, User).join(User, col(User.id) == ApiToken.user_id).where(ApiToken.id == token_id)
    ).first()
    if row is None:
        raise NotFound("token", str(token_id))
    token, user = row
    if token.revoked_at is not None:
        return token, user, False
    token.revoked_at = now or utcnow()
    session.add(token)
    session.flush()
    return token, user, True
