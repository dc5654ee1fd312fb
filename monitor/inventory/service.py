"""Inventory service functions: plain functions taking the session as a keyword, no web, no CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.db import utcnow
from monitor.errors import FleetFileError, NotFound, Problem
from monitor.inventory.choices import BroadcastTechnology
from monitor.inventory.fleetfile import PARENT_KINDS, FleetRow, parse_row, people_today
from monitor.inventory.models import SECRET_FIELDS, BroadcastSystem, Commune, Device, District
from monitor.sealing import require_sealing
from monitor.text import fold, like_pattern

# --- fleet import -------------------------------------------------------------------------------


def validate_fleet_rows(
    raw_rows: Sequence[tuple[int, dict[str, str]]], *, session: Session, source: str, today: date | None = None
) -> list[FleetRow]:
    """Check every row, on its own, across the file and against the database; refuse the file whole.

    Raises FleetFileError listing every problem with its line and field; returns the rows otherwise.
    """
    today = today or people_today()
    problems: list[Problem] = []
    rows: list[FleetRow] = []
    for line, raw in raw_rows:
        row, row_problems = parse_row(line, raw, today)
        problems += row_problems
        if row is not None:
            rows.append(row)
    if not raw_rows:
        problems.append(Problem("file", "no devices in the file", None))

    # Across the file: a code once only.
    first_line: dict[str, int] = {}
    for line, raw in raw_rows:
        code = raw.get("code", "")
        if not code:
            continue
        if code in first_line:
            problems.append(Problem("code", f"duplicate code {code!r}, first on line {first_line[code]}", line))
        else:
            first_line[code] = line

    # Against the database and the file: communes exist, parents exist in the same commune.
    communes = set(session.exec(select(Commune.code)))
    in_file = {row.code: row for row in rows}
    parent_codes = {row.parent_code for row in rows if row.parent_code and row.parent_code not in in_file}
    stored_parents = (
        {d.code: d for d in session.exec(select(Device).where(col(Device.code).in_(parent_codes)))}
        if parent_codes
        else {}
    )
    for row in rows:
        if row.commune_code not in communes:
            problems.append(Problem("commune_code", f"unknown commune {row.commune_code!r}", row.line))
        if row.parent_code is None:
            continue
        parent: FleetRow | Device | None = in_file.get(row.parent_code) or stored_parents.get(row.parent_code)
        if parent is None:
            problems.append(
                Problem("parent_code", f"no device {row.parent_code!r} in the file or the inventory", row.line)
            )
            continue
        if parent.commune_code != row.commune_code:
            problems.append(
                Problem(
                    "parent_code",
                    f"parent {row.parent_code!r} stands in commune {parent.commune_code}, not {row.commune_code}",
                    row.line,
                )
            )
        if parent.kind not in PARENT_KINDS:
            problems.append(
                Problem(
                    "parent_code",
                    f"parent {row.parent_code!r} is a {parent.kind}: only a gateway or station "
                    "controller can be a parent",
                    row.line,
                )
            )
    problems += _parent_cycles(rows)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.field))
        bad_lines = len({p.line for p in problems})
        raise FleetFileError(f"{source}: refused, {bad_lines} bad row(s); nothing was written", problems)
    return rows


def _parent_cycles(rows: Sequence[FleetRow]) -> list[Problem]:
    parent_of = {row.code: row.parent_code for row in rows}
    problems = []
    for row in rows:
        seen = {row.code}
        current = row.parent_code
        while current is not None and current in parent_of:
            if current in seen:
                problems.append(Problem("parent_code", f"{row.code!r} depends on itself through its parents", row.line))
                break
            seen.add(current)
            current = parent_of[current]
    return problems


@dataclass
class ImportResult:
    """What an import changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    codes_changed: list[str] = field(default_factory=list)


def _device_values(row: FleetRow, search_text: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": row.name,
        "kind": row.kind.value,
        "commune_code": row.commune_code,
        "vendor": row.vendor,
        "model": row.model,
        "profile": row.profile,
        "protocol": row.protocol.value,
        "address": row.address,
        "port": row.port,
        "interval_s": row.interval_s,
        "installed_on": row.installed_on,
        "lat": row.lat,
        "lon": row.lon,
        "active": row.active,
        "search_text": search_text,
    }
    if row.credentials is not None:  # absent credentials keep the stored ones: exports leave them out
        values["credentials"] = row.credentials
    return values


def apply_fleet_rows(rows: Sequence[FleetRow], *, session: Session) -> ImportResult:
    """Upsert validated rows by code; a row equal to what is stored changes nothing.

    Credentials are sealed as they are stored (monitor/sealing.py): `SealingRefused`, before anything is
    written, when new ones cannot be (no MONITOR_SECRET_KEYS outside the demo).
    """
    result = ImportResult()
    names = {
        c.code: (c.name, d.name)
        for c, d in session.exec(select(Commune, District).where(Commune.district_code == District.code))
    }
    codes = [row.code for row in rows]
    existing: dict[str, Device] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        existing.update({d.code: d for d in session.exec(select(Device).where(col(Device.code).in_(chunk)))})
    stored = {code: device.credentials for code, device in existing.items()}
    if any(row.credentials is not None and row.credentials != stored.get(row.code) for row in rows):
        require_sealing()
    now = utcnow()
    changed: dict[str, Device] = {}
    for row in rows:
        commune_name, district_name = names[row.commune_code]
        values = _device_values(row, fold(f"{row.code} {row.name} {commune_name} {district_name}"))
        device = existing.get(row.code)
        if device is None:
            device = Device(code=row.code, created_at=now, updated_at=now, **values)
            session.add(device)
            existing[row.code] = device
            result.created += 1
            changed[row.code] = device
        elif any(getattr(device, k) != v for k, v in values.items()):
            device.sqlmodel_update(values)
            device.updated_at = now
            result.updated += 1
            changed[row.code] = device
    session.flush()
    # Parents second: a parent may come later in the file than its children.
    parent_codes = {row.parent_code for row in rows if row.parent_code and row.parent_code not in existing}
    if parent_codes:
        existing.update({d.code: d for d in session.exec(select(Device).where(col(Device.code).in_(parent_codes)))})
    for row in rows:
        device = existing[row.code]
        parent_id = existing[row.parent_code].id if row.parent_code else None
        if device.parent_id != parent_id:
            device.parent_id = parent_id
            device.updated_at = now
            if row.code not in changed:
                result.updated += 1
                changed[row.code] = device
    session.flush()
    result.unchanged = len(rows) - result.created - result.updated
    result.codes_changed = sorted(changed)
    return result


def export_records(*, session: Session) -> list[dict[str, Any]]:
    """Every device as a fleet-file record, ordered by code (secrets left out)."""
    parent = sa.orm.aliased(Device)
    query = (
        select(Device, parent.code)
        .join(parent, col(Device.parent_id) == parent.id, isouter=True)
        .order_by(col(Device.code))
    )
    records = []
    for device, parent_code in session.exec(query):
        record = device.model_dump(
            exclude={*SECRET_FIELDS, "search_text", "created_at", "updated_at", "id", "parent_id"}
        )
        record["parent_code"] = parent_code
        records.append(record)
    return records


# --- queries for the API (the fleet's state, devices with their health: monitor.health.queries) --------


def get_district(code: str, *, session: Session, district_codes: frozenset[str] | None = None) -> District:
    """One district; NotFound also when it lies outside what the caller may see (existence is not leaked)."""
    district = session.get(District, code)
    if district is None or (district_codes is not None and code not in district_codes):
        raise NotFound("district", code)
    return district


@dataclass(frozen=True, slots=True)
class CommuneSummary:
    """A commune with its device count and what its broadcast systems count for the plan's targets."""

    commune: Commune
    device_count: int
    system_count: int
    ip_system_count: int


def list_communes(
    *,
    session: Session,
    district: str | None = None,
    q: str | None = None,
    limit: int = 500,
    offset: int = 0,
    district_codes: frozenset[str] | None = None,
) -> tuple[list[CommuneSummary], int]:
    """Communes with their counts, filtered by district and by a text search, and the total."""
    query = select(Commune)
    if district:
        get_district(district, session=session, district_codes=district_codes)
        query = query.where(Commune.district_code == district)
    if district_codes is not None:
        query = query.where(col(Commune.district_code).in_(district_codes))
    if q and fold(q):
        query = query.where(col(Commune.search_text).like(like_pattern(q), escape="\\"))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = list(session.exec(query.order_by(col(Commune.code)).limit(limit).offset(offset)))
    codes = [c.code for c in page]
    devices = dict(
        session.exec(
            select(Device.commune_code, func.count())
            .where(col(Device.commune_code).in_(codes))
            .group_by(col(Device.commune_code))
        ).all()
    )
    is_ip = sa.case((col(BroadcastSystem.technology) == BroadcastTechnology.IP.value, 1), else_=0)
    systems = {
        code: (count, ip)
        for code, count, ip in session.exec(
            select(BroadcastSystem.commune_code, func.count(), func.sum(is_ip))
            .where(col(BroadcastSystem.commune_code).in_(codes))
            .group_by(col(BroadcastSystem.commune_code))
        ).all()
    }
    return [
        CommuneSummary(c, devices.get(c.code, 0), *(int(n) for n in systems.get(c.code, (0, 0)))) for c in page
    ], total


def get_commune(
    code: str, *, session: Session, district_codes: frozenset[str] | None = None
) -> tuple[Commune, list[BroadcastSystem]]:
    """One commune with its broadcast systems; NotFound for an unknown code or one out of scope."""
    commune = session.get(Commune, code)
    if commune is None or (district_codes is not None and commune.district_code not in district_codes):
        raise NotFound("commune", code)
    systems = session.exec(
        select(BroadcastSystem).where(BroadcastSystem.commune_code == code).order_by(col(BroadcastSystem.id))
    )
    return commune, list(systems)
