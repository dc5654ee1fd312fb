"""Every secret the database keeps, checked or re-sealed at once (`monitor secrets check | rotate`).

Two tables hold secrets: notification channels (the config keys `CHANNEL_SEALED_KEYS`) and devices (their
SNMP `credentials`). Here they are read raw, without the sealing column types, so that a value no key opens
is found and named (channel id and name, device code) rather than read as `Unopened`.

`rotate_stored_secrets` re-seals every value, sealed or still in clear, under the newest key, in one
transaction per table with its rows locked (`FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so a
sender renewing a Zalo token meanwhile waits rather than being overwritten. A table holding a value that no
key opens is left exactly as it was, and that row named: add the missing key and run it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.alerts.models import CHANNEL_SEALED_KEYS
from monitor.db import begin_write
from monitor.sealing import Keyring, SealState, Unopened

_CHANNELS = sa.table(
    "notification_channels", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("config", sa.JSON)
)
_DEVICES = sa.table(
    "devices", sa.column("id", sa.Integer), sa.column("code", sa.String), sa.column("credentials", sa.Text)
)


@dataclass
class TableSecrets:
    """What one table holds: its secrets by how they are kept, and the rows whose secrets no key opens."""

    table: str
    rows: int = 0  # rows holding at least one secret
    states: Counter[SealState] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)  # "channel 3 'Hook Cao Lộc' (secret, url)", "device X"
    resealed: int = 0  # values written again under the newest key (rotate)

    @property
    def secrets(self) -> int:
        return sum(self.states.values())

    @property
    def unprotected(self) -> int:
        """Values a dump shows, or that a public key opens: in clear, or under the demo key."""
        return self.states[SealState.CLEAR] + self.states[SealState.DEMO]


def _channel_rows(connection: Connection, lock: bool) -> Iterator[tuple[int, str, dict[str, Any]]]:
    query = sa.select(_CHANNELS.c.id, _CHANNELS.c.name, _CHANNELS.c.config).order_by(_CHANNELS.c.id)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    for channel_id, name, config in connection.execute(query):
        yield channel_id, name, dict(config or {})


def _device_rows(connection: Connection, lock: bool) -> Iterator[tuple[int, str, str]]:
    c = _DEVICES.c
    query = sa.select(c.id, c.code, c.credentials).where(c.credentials.is_not(None), c.credentials != "")
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    yield from ((row.id, row.code, row.credentials) for row in connection.execute(query.order_by(c.id)))


def _channel_secrets(config: dict[str, Any]) -> dict[str, str]:
    return {
        key: value
        for key, value in sorted(config.items())
        if key in CHANNEL_SEALED_KEYS and isinstance(value, str) and value
    }


def check_stored_secrets(engine: Engine, keyring: Keyring) -> list[TableSecrets]:
    """How every stored secret is kept under `keyring`, and the rows whose secrets it cannot open."""
    channels, devices = TableSecrets("notification channels"), TableSecrets("devices")
    with engine.connect() as connection:
        for channel_id, name, config in _channel_rows(connection, lock=False):
            secrets = _channel_secrets(config)
            if not secrets:
                continue
            channels.rows += 1
            states = {key: keyring.state(value) for key, value in secrets.items()}
            channels.states.update(states.values())
            unreadable = [key for key, state in states.items() if state is SealState.UNREADABLE]
            if unreadable:
                channels.unreadable.append(f"channel {channel_id} {name!r} ({', '.join(unreadable)})")
        for _device_id, code, credentials in _device_rows(connection, lock=False):
            devices.rows += 1
            state = keyring.state(credentials)
            devices.states[state] += 1
            if state is SealState.UNREADABLE:
                devices.unreadable.append(f"device {code}")
    return [channels, devices]


@contextmanager
def _table_transaction(engine: Engine) -> Iterator[tuple[Connection, Any]]:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            begin_write(connection)
            yield connection, transaction
            if transaction.is_active:
                transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise


def rotate_stored_secrets(engine: Engine, keyring: Keyring) -> list[TableSecrets]:
    """Re-seal every stored secret under the newest key of `keyring`, one transaction per table (see the
    module); `SealingRefused` when it cannot seal. Each table's counts are of the values as they were."""
    keyring.require_sealing()
    return [_rotate_channels(engine, keyring), _rotate_devices(engine, keyring)]


def _rotate_channels(engine: Engine, keyring: Keyring) -> TableSecrets:
    report = TableSecrets("notification channels")
    changes: list[dict[str, Any]] = []
    with _table_transaction(engine) as (connection, transaction):
        for channel_id, name, config in _channel_rows(connection, lock=True):
            secrets = _channel_secrets(config)
            if not secrets:
                continue
            report.rows += 1
            report.states.update(keyring.state(value) for value in secrets.values())
            resealed = {key: keyring.reseal(value) for key, value in secrets.items()}
            unreadable = [key for key, value in resealed.items() if isinstance(value, Unopened)]
            if unreadable:
                report.unreadable.append(f"channel {channel_id} {name!r} ({', '.join(unreadable)})")
                continue
            changes.append({"b_id": channel_id, "b_config": config | resealed})
            report.resealed += len(resealed)
        if report.unreadable:
            transaction.rollback()
            report.resealed = 0
            return report
        if changes:
            statement = (
                sa.update(_CHANNELS)
                .where(_CHANNELS.c.id == sa.bindparam("b_id"))
                .values(config=sa.bindparam("b_config"))
            )
            connection.execute(statement, changes)
    return report


def _rotate_devices(engine: Engine, keyring: Keyring) -> TableSecrets:
    report = TableSecrets("devices")
    changes: list[dict[str, Any]] = []
    with _table_transaction(engine) as (connection, transaction):
        for device_id, code, credentials in _device_rows(connection, lock=True):
            report.rows += 1
            report.states[keyring.state(credentials)] += 1
            resealed = keyring.reseal(credentials)
            if isinstance(resealed, Unopened):
                report.unreadable.append(f"device {code}")
                continue
            changes.append({"b_id": device_id, "b_credentials": resealed})
        if report.unreadable:
            transaction.rollback()
            return report
        if changes:
            statement = (
                sa.update(_DEVICES)
                .where(_DEVICES.c.id == sa.bindparam("b_id"))
                .values(credentials=sa.bindparam("b_credentials"))
            )
            connection.execute(statement, changes)
        report.resealed = len(changes)
    return report


__all__ = ["TableSecrets", "check_stored_secrets", "rotate_stored_secrets"]
