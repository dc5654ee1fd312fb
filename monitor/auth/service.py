"""Users, passwords, sessions and scopes, as plain functions taking the session as a keyword."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from pwdlib import PasswordHash
from sqlmodel import Session, col, delete, select

from monitor.auth.models import Role, User, UserSession
from monitor.db import utcnow
from monitor.errors import Conflict, InvalidInput, NotFound, Problem
from monitor.inventory.models import District

MIN_PASSWORD_LENGTH = 10
SESSION_TTL = timedelta(hours=12)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHash.recommended()  # argon2id
# Verified when the user is unknown, so that a login takes as long whether the name exists or not.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a user may see: every district (None) or only theirs."""

    role: Role
    district_codes: frozenset[str] | None

    @classmethod
    def of(cls, user: User) -> Scope:
        role = Role(user.role)
        if role.is_district_scoped:
            return cls(role, frozenset({user.district_code}) if user.district_code else frozenset())
        return cls(role, None)

    def allows(self, district_code: str | None) -> bool:
        return self.district_codes is None or district_code in self.district_codes


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    *,
    session: Session,
    username: str,
    full_name: str,
    role: Role,
    password: str,
    district_code: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    language: str = "vi",
) -> User:
    """Create a user, checking every field; district-scoped roles need a district that exists."""
    problems = []
    if not _USERNAME.match(username):
        problems.append(Problem("username", "2-64 lower-case letters, digits, '.', '_' or '-'"))
    if not full_name.strip():
        problems.append(Problem("full_name", "required"))
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(Problem("password", f"at least {MIN_PASSWORD_LENGTH} characters"))
    if role.is_district_scoped and not district_code:
        problems.append(Problem("district_code", f"a {role.value} belongs to a district"))
    if district_code and session.get(District, district_code) is None:
        problems.append(Problem("district_code", f"unknown district {district_code!r}"))
    if language not in ("vi", "en"):
        problems.append(Problem("language", "vi or en"))
    if problems:
        raise InvalidInput("the user cannot be created", problems)
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"a user named {username!r} already exists")
    user = User(
        username=username,
        full_name=full_name.strip(),
        role=role.value,
        district_code=district_code if role.is_district_scoped else None,
        email=email,
        phone=phone,
        language=language,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    return user


def set_password(username: str, password: str, *, session: Session) -> User:
    """Change a user's password and end all their sessions; returns the user."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password too short", [Problem("password", f"at least {MIN_PASSWORD_LENGTH} characters")])
    user = get_user(username, session=session)
    user.password_hash = hash_password(password)
    session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))
    session.flush()
    return user


class LoginThrottle:
    """Refuses attempts of a key after too many failures in a window, kept in memory (devices' heartbeat
    tokens; people's sign-ins are throttled in the database by monitor.auth.throttle)."""

    def __init__(self, max_failures: int = 10, window_s: float = 900) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] < now - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


def check_sign_in(username: str, password: str, *, session: Session) -> tuple[User | None, str | None]:
    """The user of this name (None if unknown) and why signing in is refused: `unknown_user`,
    `wrong_password`, `disabled`, or None when it is accepted (then outdated password hashes are redone)."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        _hasher.verify(password, _DUMMY_HASH)
        return None, "unknown_user"
    valid, updated = _hasher.verify_and_update(password, user.password_hash)
    if not valid:
        return user, "wrong_password"
    if not user.active:
        return user, "disabled"
    if updated is not None:
        user.password_hash = updated
    user.last_login_at = utcnow()
    session.add(user)
    return user, None


def authenticate(username: str, password: str, *, session: Session) -> User | None:
    """The active user with this name and password, or None; rehashes outdated password hashes."""
    user, refusal = check_sign_in(username, password, session=session)
    return user if refusal is None else None


def start_session(user: User, *, session: Session, ttl: timedelta = SESSION_TTL) -> tuple[str, str]:
    """Sign a user in: returns (session token, CSRF token). Only the token's hash is stored."""
    assert user.id is not None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = utcnow()
    session.add(
        UserSession(
            token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf, created_at=now, expires_at=now + ttl
        )
    )
    session.flush()
    return token, csrf


# Built once: a statement built per call costs more to build and to key for the compiled cache than to run.
_SESSION_USER = (
    select(User, UserSession.csrf_token, UserSession.expires_at)
    .join(UserSession, col(User.id) == UserSession.user_id)
    .where(UserSession.token_hash == sa.bindparam("token_hash"))
)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session token's user, its CSRF token and when it ends, as stored (valid or not: see `valid`)."""

    user: User
    csrf_token: str
    expires_at: datetime

    def valid(self, now: datetime) -> bool:
        """Unexpired, and its user active."""
        return self.expires_at > now and self.user.active


def token_key(token: str) -> str:
    """What a session token is stored (and may be kept in memory) as: its SHA-256."""
    return _token_hash(token)


def find_session(key: str, *, session: Session) -> SignedIn | None:
    """The stored session of a token's key (`token_key`), expired or not (`SignedIn.valid`); None if there is
    none. The session's row is read as two columns, not as an object, by a statement built once (building it and
    loading the session whole tripled the look-up, bench/bench_ui.py).

    The user is detached from `session`, so that it may be kept beyond it (monitor.web.deps keeps it while the
    people's data generation is unchanged).
    """
    row = session.exec(_SESSION_USER, params={"token_hash": key}).first()
    if row is None:
        return None
    user, csrf_token, expires_at = row
    session.expunge(user)
    return SignedIn(user, csrf_token, expires_at)


def end_session(token: str, *, session: Session) -> None:
    session.exec(delete(UserSession).where(col(UserSession.token_hash) == _token_hash(token)))


def list_users(
    *,
    session: Session,
    district_codes: frozenset[str] | None = None,
    role: Role | None = None,
    active: bool | None = None,
) -> list[User]:
    """Users by name; only those of `district_codes` when given (a district's people), of `role`, or by state."""
    query = select(User)
    if district_codes is not None:
        query = query.where(col(User.district_code).in_(sorted(district_codes)))
    if role is not None:
        query = query.where(User.role == role.value)
    if active is not None:
        query = query.where(User.active == active)
    return list(session.exec(query.order_by(col(User.username))))


def get_user(username: str, *, session: Session) -> User:
    """The user of this name, or NotFound."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound("user", username)
    return user


def set_active(username: str, active: bool, *, session: Session) -> tuple[User, bool]:
    """Enable or disable a user; returns the user and whether anything changed.

    A disabled user cannot sign in, and their sessions and API tokens are refused at once (the door checks
    `active` on every request); their sessions are also ended, so enabling them again asks for a new sign-in.
    Their tokens are kept and work again once they are enabled: revoke them to end them for good.
    """
    user = get_user(username, session=session)
    changed = user.active != active
    user.active = active
    session.add(user)
    if not active:
        session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))
    session.flush()
    return user, changed
