"""Requests already answered: an action sent again with the same `Idempotency-Key` is answered as the first
time, never applied twice.

A technician on a mountain road taps "Đã xong" with no signal; the page keeps the action and sends it when the
signal returns, perhaps twice (a reply lost on the way back). The key is the page's random id of that action,
bound to the credential that sent it (a hash of the key and the session or token, so one person's key cannot
read another's answer). The first request claims the key (a unique row, so two copies in flight cannot both
run), its answer is stored, and any later copy gets the stored answer back. An answer the server failed to
give (5xx) releases the key, so the action can be tried again. Keys are kept `RETENTION` long. A claim whose
answer was never stored (the database went away, or the process died, in the middle) is abandoned after
`ABANDONED_AFTER`: a copy sent later then claims the key again, instead of a 409 for a week.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime

RETENTION = timedelta(days=7)
ABANDONED_AFTER = timedelta(minutes=10)  # far longer than any request is worked on
MAX_KEY_LENGTH = 200


class IdempotencyKey(SQLModel, table=True):
    """An action's key (hashed with its credential), and the answer given to it (None while in flight)."""

    __tablename__ = "idempotency_keys"

    key_hash: str = Field(primary_key=True, max_length=64)
    method: str = Field(max_length=8)
    path: str = Field(max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=100)
    body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)


KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]


def key_hash(key: str, credential: str) -> str:
    """The stored name of `key` sent with `credential` (a session or API token): neither is kept in clear."""
    return hashlib.sha256(f"{credential}\x00{key}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    """What a key holds: the answer given (status None: the first request is still being answered)."""

    method: str
    path: str
    status_code: int | None
    content_type: str | None
    body: bytes | None


def claim(engine: Engine, hashed: str, *, method: str, path: str, now: datetime) -> Stored | None:
    """Claim a key for a new request: None when it is ours to answer, else what the key already holds."""
    with engine.begin() as connection:
        connection.execute(KEYS.delete().where(KEYS.c.created_at < now - RETENTION))
        try:
            with connection.begin_nested():
                connection.execute(KEYS.insert().values(key_hash=hashed, method=method, path=path, created_at=now))
            return None
        except sa.exc.IntegrityError:
            row = connection.execute(sa.select(KEYS).where(KEYS.c.key_hash == hashed)).one()
            abandoned = row.status_code is None and row.created_at < now - ABANDONED_AFTER
            if abandoned and (row.method, row.path) == (method, path):
                taken = connection.execute(  # one copy takes it over: the first to move created_at
                    KEYS.update()
                    .where(KEYS.c.key_hash == hashed, KEYS.c.status_code.is_(None), KEYS.c.created_at == row.created_at)
                    .values(created_at=now)
                )
                if taken.rowcount == 1:
                    return None
            return Stored(row.method, row.path, row.status_code, row.content_type, row.body)


def complete(engine: Engine, hashed: str, *, status_code: int, content_type: str | None, body: bytes) -> None:
    """Keep the answer given to a claimed key; a server error releases the key instead (it may be tried again)."""
    with engine.begin() as connection:
        if status_code >= 500:
            connection.execute(KEYS.delete().where(KEYS.c.key_hash == hashed))
            return
        connection.execute(
            KEYS.update()
            .where(KEYS.c.key_hash == hashed)
            .values(status_code=status_code, content_type=content_type, body=body)
        )


def release(engine: Engine, hashed: str) -> None:
    """Forget a claimed key whose request never got an answer (the client went away, the process stopped)."""
    with engine.begin() as connection:
        connection.execute(KEYS.delete().where(KEYS.c.key_hash == hashed, KEYS.c.status_code.is_(None)))
