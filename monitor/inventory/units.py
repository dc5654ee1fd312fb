"""The province's administrative units, shipped with the package (see `data/README.md`).

Two structures:
- 2020: the 11 districts and 200 communes in force from 2020 to June 2025, the period of the
  provincial plan; commune coordinates are taken from the 2025 commune each one joined.
- 2025: the 65 communes after the 1 July 2025 reform, which abolished districts. Repairs still need
  an owner, so each new commune is placed in a maintenance area named after the former district
  most of its old communes came from (through the merge mapping).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from importlib.resources import files
from statistics import fmean
from typing import Any

from sqlmodel import Session, select

from monitor.errors import ConfigError, Conflict
from monitor.inventory.choices import UnitStructure
from monitor.inventory.models import Commune, District
from monitor.text import fold

PROVINCES = {"lang-son": "Lạng Sơn"}
MAINTENANCE_AREA_TYPE = "Khu vực bảo trì"


@dataclass(frozen=True, slots=True)
class DistrictRecord:
    code: str
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class CommuneRecord:
    code: str
    name: str
    type: str
    district_code: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class UnitSet:
    """The districts (or maintenance areas) and communes of one province in one structure."""

    province: str
    structure: UnitStructure
    districts: tuple[DistrictRecord, ...]
    communes: tuple[CommuneRecord, ...]


def _read_csv(name: str) -> list[dict[str, str]]:
    text = (files("monitor.inventory") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Where a commune dissolved before the reform stands: the centre of its district's others."""
    return round(fmean(p[0] for p in points), 5), round(fmean(p[1] for p in points), 5)


def _area_name(district_name: str) -> str:
    """ "Huyện Cao Lộc" -> "Khu vực Cao Lộc"; a city keeps its word: "Khu vực Thành phố Lạng Sơn"."""
    return "Khu vực " + district_name.removeprefix("Huyện ")


def load_units(province: str, structure: UnitStructure | str) -> UnitSet:
    """Read a province's units from the files shipped with the package."""
    if province not in PROVINCES:
        raise ConfigError(f"unknown province {province!r}; shipped: {', '.join(sorted(PROVINCES))}")
    structure = UnitStructure(structure)
    old = _read_csv("lang-son-units.csv")
    new = _read_csv("lang-son-units-2025.csv")
    mapping = _read_csv("lang-son-2025-merge-mapping.csv")
    new_coords = {r["commune_code"]: (float(r["lat"]), float(r["lon"])) for r in new}
    old_district = {r["commune_code"]: r["district_code"] for r in old}

    districts: dict[str, DistrictRecord] = {}
    for r in old:
        districts.setdefault(
            r["district_code"], DistrictRecord(r["district_code"], r["district_name"], r["district_type"])
        )

    if structure is UnitStructure.Y2020:
        joined: dict[str, tuple[float, float]] = {}
        for m in mapping:
            # a commune split in parts takes the coordinates of the first part listed
            joined.setdefault(m["old_commune_code"], new_coords[m["new_commune_code"]])
        by_district: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for code, coords in joined.items():
            by_district[old_district[code]].append(coords)
        communes = []
        for r in old:
            coords = joined.get(r["commune_code"]) or _centre(by_district[r["district_code"]])
            communes.append(
                CommuneRecord(r["commune_code"], r["commune_name"], r["commune_type"], r["district_code"], *coords)
            )
        return UnitSet(province, structure, tuple(districts.values()), tuple(communes))

    # 2025: place each new commune in the area of the former district most of it came from;
    # ties go to the district of a fully merged part, then to the lowest district code.
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mapping:
        weight = 2 if m["merge_type"] == "full" else 1
        sources[m["new_commune_code"]][old_district[m["old_commune_code"]]] += weight
    areas: dict[str, DistrictRecord] = {}
    communes = []
    for r in new:
        counts = sources[r["commune_code"]]
        area_code = min(counts, key=lambda code: (-counts[code], code))
        former = districts[area_code]
        areas.setdefault(area_code, DistrictRecord(area_code, _area_name(former.name), MAINTENANCE_AREA_TYPE))
        lat, lon = new_coords[r["commune_code"]]
        communes.append(CommuneRecord(r["commune_code"], r["commune_name"], r["commune_type"], area_code, lat, lon))
    ordered = tuple(sorted(areas.values(), key=lambda d: d.code))
    return UnitSet(province, structure, ordered, tuple(communes))


@dataclass(frozen=True, slots=True)
class InitResult:
    districts: int
    communes: int
    created: int
    updated: int


def init_province(session: Session, units: UnitSet) -> InitResult:
    """Upsert the province's districts and communes; running it twice changes nothing.

    Refuses to mix structures: a database holding communes of another structure stays as it is.
    """
    wanted = {c.code for c in units.communes}
    foreign = [code for code in session.exec(select(Commune.code)) if code not in wanted]
    if foreign:
        raise Conflict(
            f"the database already holds {len(foreign)} communes that are not in the "
            f"{units.structure.value} structure (e.g. {foreign[0]}): use a new database for another structure"
        )
    district_names = {d.code: d.name for d in units.districts}
    created = updated = 0
    for d in units.districts:
        row = session.get(District, d.code)
        values = {"name": d.name, "type": d.type, "search_text": fold(f"{d.code} {d.name}")}
        if row is None:
            session.add(District(code=d.code, **values))
            created += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            row.sqlmodel_update(values)
            updated += 1
    session.flush()
    for c in units.communes:
        row_c = session.get(Commune, c.code)
        district_name = district_names[c.district_code]
        values_c: dict[str, Any] = {
            "name": c.name,
            "type": c.type,
            "district_code": c.district_code,
            "lat": c.lat,
            "lon": c.lon,
            "search_text": fold(f"{c.code} {c.name} {district_name}"),
        }
        if row_c is None:
            session.add(Commune(code=c.code, **values_c))
            created += 1
        elif any(getattr(row_c, k) != v for k, v in values_c.items()):
            row_c.sqlmodel_update(values_c)
            updated += 1
    session.flush()
    return InitResult(len(units.districts), len(units.communes), created, updated)
