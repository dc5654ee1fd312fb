"""The fleet's current state, read from the database at scrape time: the web process's metrics (with its tickets).

Per device only three full series — `fleet_device_up` (judged devices), `fleet_device_last_seen_timestamp_seconds`
(devices ever seen) and `fleet_device_info` (every active device, with protocol and coordinates for maps) —
and sparse ones for the devices they concern (faults present, down since, maintenance, flapping).
Inactive devices are not exported at all. Cardinality: ~3 series per device (300,000 for 100,000 devices),
plus ~5 per commune, ~20 per district × kind and ~30 per district for tickets.

`unknown` and `maintenance` are not judged: such a device has no `fleet_device_up`, so uptime averages
(`avg(fleet_device_up)`) count only the time devices were judged, and maintenance windows do not lower them.
They are still counted in `fleet_devices{state=...}`, and maintenance shows in `fleet_device_in_maintenance`.

Speed: each device's label text is rendered once and kept (`DeviceLabels`), until the inventory changes —
seen by a cheap signature of the devices table (count, latest `updated_at`, highest id) and the communes'
districts — or every `RELABEL_EVERY_S` anyway. Each build then reads one row per device, computes
timestamps in SQL, and joins values to the cached label text.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.db import utcnow
from monitor.health.leases import SHARDS
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState
from monitor.inventory.choices import DeviceKind
from monitor.inventory.models import BroadcastSystem, Commune, Device, District
from monitor.metrics.exporter import Renderer
from monitor.metrics.exposition import Block, escape, family_block, labels
from monitor.metrics.names import (
    BROADCAST_SYSTEMS,
    COLLECTOR_POOL_SHARDS,
    COMMUNE_DEVICES,
    COMMUNE_INFO,
    COMMUNES,
    COMMUNES_WITH_IP_RADIO,
    COMMUNES_WITH_RADIO,
    DEVICE_DOWN_SINCE,
    DEVICE_FAULT,
    DEVICE_FLAPPING,
    DEVICE_INFO,
    DEVICE_LAST_SEEN,
    DEVICE_MAINTENANCE,
    DEVICE_UP,
    DEVICES,
    DISTRICT_INFO,
    STATE_CHANGES_OLDEST_AGE,
    STATE_CHANGES_PENDING,
    Family,
)

HEALTH = DeviceHealthRow.__table__  # type: ignore[attr-defined]
CHANGES = StateChange.__table__  # type: ignore[attr-defined]
DEVICE_TABLE = Device.__table__  # type: ignore[attr-defined]
COMMUNE_TABLE = Commune.__table__  # type: ignore[attr-defined]
DISTRICT_TABLE = District.__table__  # type: ignore[attr-defined]
SYSTEMS = BroadcastSystem.__table__  # type: ignore[attr-defined]

CHUNK = 5000  # rows handled between two releases of the GIL
RELABEL_EVERY_S = 600.0  # a safety net for inventory changes the signature cannot see (raw SQL edits)
JUDGED_UP = frozenset({DeviceState.UP.value, DeviceState.DEGRADED.value})
JUDGED = JUDGED_UP | {DeviceState.DOWN.value}
_RARE_STATES = frozenset({DeviceState.DOWN.value, DeviceState.MAINTENANCE.value})
STATES = tuple(s.value for s in DeviceState)
UNKNOWN = DeviceState.UNKNOWN.value

_UP = b"fleet_device_up{%s} 1\n"
_DOWN = b"fleet_device_up{%s} 0\n"
_SEEN = b"fleet_device_last_seen_timestamp_seconds{%s} %d\n"  # whole seconds: enough, and faster
_DOWN_SINCE = b"fleet_device_down_since_timestamp_seconds{%s} %d\n"
_FAULT = b'fleet_device_fault{%s,fault="%s"} 1\n'
_MAINTENANCE = b"fleet_device_in_maintenance{%s} 1\n"
_FLAPPING = b"fleet_device_flapping{%s} 1\n"
_INFO = b"fleet_device_info{%s} 1\n"
assert _UP.startswith(DEVICE_UP.name.encode()) and _SEEN.startswith(DEVICE_LAST_SEEN.name.encode())


def epoch_seconds(column: Any, dialect: str) -> Any:
    """A UTC timestamp column as whole Unix seconds (rounded), computed by the database: no datetime in Python."""
    if dialect == "postgresql":
        return sa.func.round(sa.cast(sa.extract("epoch", column), sa.Float))
    # SQLite keeps UTC timestamps as text; julianday() reads it, 2440587.5 is the Unix epoch's Julian day.
    # Its double holds a day count, so seconds come back a few microseconds off: rounded, not truncated.
    return sa.type_coerce(sa.func.round((sa.func.julianday(column) - 2440587.5) * 86400.0), sa.Float)


def _coordinate(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(round(value, 6))


@dataclass(slots=True)
class DeviceLabels:
    """Each active device's label text (`device`, `kind`, `commune`, `district`), rendered once.

    `info` is the whole `fleet_device_info` family, which changes only with the inventory.
    """

    signature: tuple[Any, ...] | None = None
    text: dict[int, bytes] = field(default_factory=dict)
    group: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # district, kind, commune
    totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # devices per group
    info: Block = field(default_factory=lambda: Block(b"", 0))
    rendered_at: float = -math.inf

    def refresh(self, connection: Connection, communes: dict[str, tuple[str, str]]) -> bool:
        """Render the labels again if the inventory changed (or every RELABEL_EVERY_S); True if it did."""
        count, latest, highest = connection.execute(
            sa.select(sa.func.count(), sa.func.max(DEVICE_TABLE.c.updated_at), sa.func.max(DEVICE_TABLE.c.id))
        ).one()
        signature = (count, str(latest), highest, tuple(sorted((c, d) for c, (d, _n) in communes.items())))
        if signature == self.signature and time.monotonic() - self.rendered_at < RELABEL_EVERY_S:
            return False
        query = (
            sa.select(
                DEVICE_TABLE.c.id,
                DEVICE_TABLE.c.code,
                DEVICE_TABLE.c.kind,
                DEVICE_TABLE.c.commune_code,
                DEVICE_TABLE.c.protocol,
                sa.func.coalesce(DEVICE_TABLE.c.lat, COMMUNE_TABLE.c.lat),
                sa.func.coalesce(DEVICE_TABLE.c.lon, COMMUNE_TABLE.c.lon),
            )
            .join(COMMUNE_TABLE, COMMUNE_TABLE.c.code == DEVICE_TABLE.c.commune_code)
            .where(DEVICE_TABLE.c.active.is_(True))
            .order_by(DEVICE_TABLE.c.id)
        )
        text: dict[int, bytes] = {}
        group: dict[int, tuple[str, str, str]] = {}
        info: list[bytes] = []
        for rows in connection.execute(query).partitions(CHUNK):
            for device_id, code, kind, commune, protocol, lat, lon in rows:
                district = communes[commune][0]
                base = labels([("device", code), ("kind", kind), ("commune", commune), ("district", district)])
                text[device_id] = base.encode()
                group[device_id] = (district, kind, commune)
                extra = labels([("protocol", protocol), ("lat", _coordinate(lat)), ("lon", _coordinate(lon))])
                info.append(_INFO % f"{base},{extra}".encode())
            time.sleep(0)  # let the event loop's thread run
        self.signature, self.text, self.group = signature, text, group
        self.totals = Counter(group.values())
        self.info = Block(DEVICE_INFO.header() + b"".join(info), len(info), reused=True)
        self.rendered_at = time.monotonic()
        return True


@dataclass(frozen=True, slots=True)
class _Places:
    districts: dict[str, str]  # code -> name
    communes: dict[str, tuple[str, str]]  # code -> (district code, name)


def _places(connection: Connection) -> _Places:
    districts = {
        code: name for code, name in connection.execute(sa.select(DISTRICT_TABLE.c.code, DISTRICT_TABLE.c.name))
    }
    communes = {
        code: (district, name)
        for code, district, name in connection.execute(
            sa.select(COMMUNE_TABLE.c.code, COMMUNE_TABLE.c.district_code, COMMUNE_TABLE.c.name)
        )
    }
    return _Places(districts, communes)


class FleetStateSource:
    """The devices' state, the coverage figures of the plan and the outbox backlog, from the database."""

    name = "fleet"

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.labels = DeviceLabels()  # touched only by the build thread: builds never overlap

    def capture(self) -> Renderer:
        return self.render

    def render(self) -> list[Block]:
        """Read the state (in one transaction: one consistent picture on PostgreSQL) and render every family."""
        with self.engine.connect() as connection, connection.begin():
            places = _places(connection)
            self.labels.refresh(connection, places.communes)
            blocks = self._devices(connection, places)
            blocks += _coverage(connection, places)
            blocks.append(_outbox(connection, self.clock()))
            blocks.append(_pool(connection, self.clock()))
        return blocks

    def _devices(self, connection: Connection, places: _Places) -> list[Block]:
        label_of = self.labels.text.get
        up: list[bytes] = []
        seen: list[bytes] = []
        rare: list[tuple[bytes, tuple[Any, ...]]] = []
        judged: Counter[tuple[tuple[str, str, str], str]] = Counter()
        group_of = self.labels.group.__getitem__
        # Plain tuples and list comprehensions, a chunk of rows at a time: at 100,000 devices every per-row
        # cost counts, and between chunks the event loop's thread gets the GIL back at once.
        for rows in _health_rows(connection):
            labelled = [(label, row) for row in rows if (label := label_of(row[0])) is not None]
            up += [(_DOWN if row[1] == "down" else _UP) % label for label, row in labelled if row[1] in JUDGED]
            seen += [_SEEN % (label, row[2]) for label, row in labelled if row[2] is not None]
            rare += [(label, row) for label, row in labelled if row[5] or row[1] in _RARE_STATES or row[4] != "[]"]
            judged.update((group_of(row[0]), row[1]) for _label, row in labelled)
        faults: list[bytes] = []
        down_since: list[bytes] = []
        maintenance: list[bytes] = []
        flapping: list[bytes] = []
        for label, (_id, state, _seen, since, fault_text, is_flapping) in rare:
            if state == "down" and since is not None:
                down_since.append(_DOWN_SINCE % (label, since))
            elif state == "maintenance":
                maintenance.append(_MAINTENANCE % label)
            if fault_text and fault_text != "[]":
                faults += [_FAULT % (label, code) for code in _fault_codes(fault_text)]
            if is_flapping:
                flapping.append(_FLAPPING % label)
        return [
            _lines(DEVICE_UP, up),
            _lines(DEVICE_LAST_SEEN, seen),
            _lines(DEVICE_FAULT, faults),
            _lines(DEVICE_DOWN_SINCE, down_since),
            _lines(DEVICE_MAINTENANCE, maintenance),
            _lines(DEVICE_FLAPPING, flapping),
            self.labels.info,
            *_device_counts(self.labels.totals, judged, places),
        ]


_HEALTH_SQL: dict[str, str] = {}


@lru_cache(maxsize=1024)
def _fault_codes(fault_text: str) -> tuple[bytes, ...]:
    """The fault codes of a stored JSON list, escaped as label values (few distinct lists: cached)."""
    return tuple(escape(str(code)).encode() for code in json.loads(fault_text))


def _health_rows(connection: Connection) -> Iterator[list[tuple[Any, ...]]]:
    """(device id, state, last seen, since, faults as JSON text, flapping) of every health row, by device id,
    CHUNK rows at a time.

    Through the driver's own cursor, in the connection's transaction: SQLAlchemy's rows and type
    processing would double the time of this, the largest read of a build.
    """
    dialect = connection.dialect
    sql = _HEALTH_SQL.get(dialect.name)
    if sql is None:
        query = sa.select(
            HEALTH.c.device_id,
            HEALTH.c.state,
            epoch_seconds(HEALTH.c.last_seen, dialect.name),
            epoch_seconds(HEALTH.c.since, dialect.name),
            sa.cast(HEALTH.c.faults, sa.Text),
            HEALTH.c.flapping,
        ).order_by(HEALTH.c.device_id)
        # Only constants to bind (the epoch arithmetic): literal binds make it plain SQL for the driver.
        sql = _HEALTH_SQL[dialect.name] = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK):
            yield list(rows)
            time.sleep(0)  # let go of the GIL: a waiting event loop runs now, not after the switch interval
    finally:
        cursor.close()


def _lines(family: Family, lines: Sequence[bytes]) -> Block:
    return Block(family.header() + b"".join(lines), len(lines))


def _device_counts(
    totals: Counter[tuple[str, str, str]], judged: Counter[tuple[tuple[str, str, str], str]], places: _Places
) -> list[Block]:
    """Devices by district, kind and state, and by commune and state; a device without a health row is unknown."""
    by_kind: Counter[tuple[str, str, str]] = Counter()
    by_commune: Counter[tuple[str, str]] = Counter()
    unknown = Counter(totals)
    for ((district, kind, commune), state), n in judged.items():
        by_kind[(district, kind, state)] += n
        by_commune[(commune, state)] += n
        unknown[(district, kind, commune)] -= n
    for (district, kind, commune), n in unknown.items():
        by_kind[(district, kind, UNKNOWN)] += n
        by_commune[(commune, UNKNOWN)] += n
    kinds = sorted({k.value for k in DeviceKind} | {kind for _d, kind, _s in by_kind})
    districts = sorted(places.districts)
    communes = sorted(places.communes)
    return [
        family_block(
            DEVICES,
            [
                (labels([("district", d), ("kind", k), ("state", s)]), by_kind[(d, k, s)])
                for d in districts
                for k in kinds
                for s in STATES
            ],
        ),
        family_block(
            COMMUNE_DEVICES,
            [
                (labels([("commune", c), ("district", places.communes[c][0]), ("state", s)]), by_commune[(c, s)])
                for c in communes
                for s in STATES
            ],
        ),
        family_block(
            DISTRICT_INFO, [(labels([("district", d), ("district_name", places.districts[d])]), 1) for d in districts]
        ),
        family_block(
            COMMUNE_INFO,
            [
                (
                    labels(
                        [
                            ("commune", c),
                            ("district", places.communes[c][0]),
                            ("commune_name", places.communes[c][1]),
                            ("district_name", places.districts.get(places.communes[c][0], "")),
                        ]
                    ),
                    1,
                )
                for c in communes
            ],
        ),
    ]


def _coverage(connection: Connection, places: _Places) -> list[Block]:
    """The plan's figures: communes with a working radio system, and with an IT-telecom one."""
    systems = Counter[tuple[str, str, str]]()
    with_radio: dict[str, set[str]] = {d: set() for d in places.districts}
    with_ip: dict[str, set[str]] = {d: set() for d in places.districts}
    query = sa.select(SYSTEMS.c.commune_code, SYSTEMS.c.technology, SYSTEMS.c.condition)
    for commune, technology, condition in connection.execute(query):
        district = places.communes[commune][0]
        systems[(district, technology, condition)] += 1
        if condition != "broken":
            with_radio.setdefault(district, set()).add(commune)
            if technology == "ip":
                with_ip.setdefault(district, set()).add(commune)
    per_district = Counter(district for district, _name in places.communes.values())
    districts = sorted(places.districts)
    return [
        family_block(COMMUNES, [(labels([("district", d)]), per_district[d]) for d in districts]),
        family_block(COMMUNES_WITH_RADIO, [(labels([("district", d)]), len(with_radio[d])) for d in districts]),
        family_block(COMMUNES_WITH_IP_RADIO, [(labels([("district", d)]), len(with_ip[d])) for d in districts]),
        family_block(
            BROADCAST_SYSTEMS,
            [
                (labels([("district", d), ("technology", t), ("condition", c)]), n)
                for (d, t, c), n in sorted(systems.items())
            ],
        ),
    ]


def _outbox(connection: Connection, now: datetime) -> Block:
    pending, oldest = connection.execute(
        sa.select(sa.func.count(), sa.func.min(CHANGES.c.created_at)).where(CHANGES.c.processed_at.is_(None))
    ).one()
    if isinstance(oldest, str):  # SQLite hands aggregates back untyped
        oldest = datetime.fromisoformat(oldest)
    age = 0.0 if oldest is None else max(0.0, (now - _aware(oldest)).total_seconds())
    pending_block = family_block(STATE_CHANGES_PENDING, [("", pending)])
    age_block = family_block(STATE_CHANGES_OLDEST_AGE, [("", age)])
    return Block(pending_block.text + age_block.text, 2)


def _pool(connection: Connection, now: datetime) -> Block:
    """The collectors' pool's shards, held or not (both zero without a pool: SQLite, or no collector started)."""
    held = sa.func.sum(sa.case((SHARDS.c.expires_at > now, 1), else_=0))
    total, current = connection.execute(sa.select(sa.func.count(), held).select_from(SHARDS)).one()
    current = int(current or 0)
    return family_block(
        COLLECTOR_POOL_SHARDS,
        [(labels([("state", "held")]), current), (labels([("state", "unheld")]), int(total) - current)],
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


__all__ = ["DeviceLabels", "FleetStateSource", "epoch_seconds"]
