"""Sign-in throttling that slows guessing down without letting anyone lock a person out.

Failures are counted per (name, address) pair, never per name alone: someone guessing caoloc's password
from one address slows down and then shuts out only that pair, and caoloc signing in from anywhere else is
not affected. An address failing across many names (password spraying) is refused as a whole.

The rules (`ThrottleRules`, from the `login_*` settings):

- a pair's failures decay: the count halves over every `half_life_s` of quiet (a decaying window);
- up to `free_failures - 1` failures are answered at once; from the `free_failures`-th on, the pair must wait
  `first_delay_s`, doubled with each further failure, at most `max_delay_s` (429 with Retry-After meanwhile);
- an address is refused while `address_max_names` different names have failed from it within the last
  `address_window_s` (a sliding window): it can try at most that many new names per window.

Counters live in the database (`login_failures`), so they survive a restart and are shared by every web
process. An attempt is counted *before* its password is checked, under a lock per address, and the count is
cleared when the password was right: so a burst of parallel guesses cannot all slip in before the first
failure is written.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, delete, select

from monitor.config import Settings
from monitor.db import UTCDateTime, begin_write, utcnow

NAME_MAX = 64
ADDRESS_MAX = 64


class LoginFailure(SQLModel, table=True):
    """Recent failed sign-ins of one name from one address: a decaying count and how long the pair must wait."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.UniqueConstraint("username", "address", name="uq_login_failures_username_address"),
        # The address's recent names, newest first (the spraying rule).
        sa.Index("ix_login_failures_address_last_failed_at", "address", "last_failed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=NAME_MAX)
    address: str = Field(max_length=ADDRESS_MAX)
    failures: float = 0.0
    # Pruning finds old rows by this alone.
    last_failed_at: datetime = Field(sa_type=UTCDateTime, index=True)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    """How failures of a pair and of an address slow sign-ins down (see the module's docstring)."""

    free_failures: int = 5
    first_delay_s: float = 2.0
    max_delay_s: float = 900.0
    half_life_s: float = 3600.0
    address_max_names: int = 20
    address_window_s: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottleRules:
        return cls(
            free_failures=settings.login_free_failures,
            first_delay_s=settings.login_first_delay_s,
            max_delay_s=settings.login_max_delay_s,
            half_life_s=settings.login_failure_half_life_s,
            address_max_names=settings.login_address_max_names,
            address_window_s=settings.login_address_window_s,
        )

    def decayed(self, failures: float, elapsed_s: float) -> float:
        """A count of failures after `elapsed_s` of quiet."""
        return float(failures * 0.5 ** (max(elapsed_s, 0.0) / self.half_life_s))

    def delay_s(self, failures: float) -> float:
        """How long a pair with this many failures waits before its next attempt (0: none)."""
        # The count decays all the time, so the 5th failure a moment after the 4th counts 4.999: to the nearest.
        if failures < self.free_failures - 0.5:
            return 0.0
        exponent = min(max(failures - self.free_failures, 0.0), 64.0)  # 2**64 s is already far past any cap
        return float(min(self.first_delay_s * 2.0**exponent, self.max_delay_s))

    @property
    def retention(self) -> timedelta:
        """How long a quiet row is kept: by then its count has decayed to nothing that matters."""
        return timedelta(seconds=max(8 * self.half_life_s, self.address_window_s, self.max_delay_s))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an attempt may check its password; if not, who is refused and for how long."""

    allowed: bool
    refused: Literal["pair", "address"] | None = None
    retry_after_s: int = 0  # whole seconds, at least 1 when refused; after an admitted attempt: the wait it set


def client_key(host: str | None) -> str:
    """The address failures are counted by: the IPv4 address, or the /64 network of an IPv6 one (a single
    client usually holds a whole /64 and could otherwise step through it)."""
    if not host:
        return "-"
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host[:ADDRESS_MAX]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is that IPv4 address
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _lock_address(session: Session, address: str) -> None:
    """Serialise the attempts of one address until the transaction ends (SQLite: its one writer lock)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"login {address}"})
    else:
        begin_write(connection)


def admit(
    username: str, address: str, *, session: Session, rules: ThrottleRules, now: datetime | None = None
) -> Verdict:
    """Decide whether this sign-in attempt may check its password, and if so count it as a failure already.

    Call `succeeded` when the password turns out right. The caller commits right after (the count must be
    visible to the other processes before the slow password check), whatever the verdict.
    """
    now = now or utcnow()
    name = username[:NAME_MAX]
    _lock_address(session, address)
    session.exec(delete(LoginFailure).where(col(LoginFailure.last_failed_at) < now - rules.retention))

    window_start = now - timedelta(seconds=rules.address_window_s)
    recent = session.exec(
        select(LoginFailure.username, LoginFailure.last_failed_at)
        .where(LoginFailure.address == address, col(LoginFailure.last_failed_at) > window_start)
        .order_by(col(LoginFailure.last_failed_at).desc())
        .limit(rules.address_max_names)
    ).all()
    if len(recent) >= rules.address_max_names:
        # Open again when the oldest of these names leaves the window.
        reopens = recent[-1][1] + timedelta(seconds=rules.address_window_s)
        return Verdict(False, "address", _seconds(reopens - now))

    pair = session.exec(
        select(LoginFailure).where(LoginFailure.username == name, LoginFailure.address == address)
    ).first()
    if pair is not None and pair.blocked_until is not None and pair.blocked_until > now:
        return Verdict(False, "pair", _seconds(pair.blocked_until - now))
    if pair is None:
        pair = LoginFailure(username=name, address=address, failures=0.0, last_failed_at=now)
    failures = rules.decayed(pair.failures, (now - pair.last_failed_at).total_seconds()) + 1
    delay = rules.delay_s(failures)
    pair.failures = failures
    pair.last_failed_at = now
    pair.blocked_until = now + timedelta(seconds=delay) if delay else None
    session.add(pair)
    session.flush()
    return Verdict(True, None, math.ceil(delay))


def succeeded(username: str, address: str, *, session: Session) -> None:
    """A right password: forget the pair's failures (the attempt itself was counted by `admit`)."""
    session.exec(
        delete(LoginFailure).where(
            col(LoginFailure.username) == username[:NAME_MAX], col(LoginFailure.address) == address
        )
    )
