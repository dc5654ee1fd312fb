from collections import Counter

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from monitor.db import session_scope
from monitor.errors import ConfigError, Conflict
from monitor.inventory.models import Commune, District
from monitor.inventory.units import MAINTENANCE_AREA_TYPE, init_province, load_units

# Per-district commune counts of the 2020-2024 structure, as the data's README gives them.
EXPECTED_2020 = {
    "Thành phố Lạng Sơn": 8, "Huyện Tràng Định": 22, "Huyện Bình Gia": 19, "Huyện Văn Lãng": 17,
    "Huyện Cao Lộc": 22, "Huyện Văn Quan": 17, "Huyện Bắc Sơn": 18, "Huyện Hữu Lũng": 24,
    "Huyện Chi Lăng": 20, "Huyện Lộc Bình": 21, "Huyện Đình Lập": 12,
}  # fmt: skip


def test_the_2020_structure_has_11_districts_and_200_communes_with_coordinates() -> None:
    units = load_units("lang-son", "2020")
    names = {d.code: d.name for d in units.districts}
    assert Counter(names[c.district_code] for c in units.communes) == EXPECTED_2020
    assert len({c.code for c in units.communes}) == 200
    assert all(c.lat is not None and 21 < c.lat < 23 and 106 < c.lon < 108 for c in units.communes)  # type: ignore[operator]


def test_the_2025_structure_places_65_communes_in_maintenance_areas() -> None:
    units = load_units("lang-son", "2025")
    assert len(units.communes) == 65
    assert {d.type for d in units.districts} == {MAINTENANCE_AREA_TYPE}
    assert "Khu vực Cao Lộc" in {d.name for d in units.districts}
    assert {c.district_code for c in units.communes} == {d.code for d in units.districts}
    # Xã Đình Lập (2025) was formed from communes of the former Đình Lập district.
    dinh_lap = next(c for c in units.communes if c.name == "Xã Đình Lập")
    assert next(d.name for d in units.districts if d.code == dinh_lap.district_code) == "Khu vực Đình Lập"


def test_an_unknown_province_is_refused_naming_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="lang-son"):
        load_units("ha-noi", "2020")


def test_init_twice_changes_nothing(engine: Engine) -> None:
    units = load_units("lang-son", "2020")
    with session_scope(engine) as session:
        first = init_province(session, units)
    with session_scope(engine) as session:
        second = init_province(session, units)
    assert (first.created, second.created, second.updated) == (211, 0, 0)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(District)).one() == 11
        assert session.exec(select(func.count()).select_from(Commune)).one() == 200


def test_another_structure_is_refused_on_a_database_that_holds_one(province: Engine) -> None:
    with pytest.raises(Conflict, match="use a new database"), session_scope(province) as session:
        init_province(session, load_units("lang-son", "2025"))
