"""The overview of a scope is shared for `max_age_s`, then served stale while one thread builds the next.

A real database (SQLite and PostgreSQL): a device added between two calls shows only once the shared
overview has been rebuilt, and a rebuild never makes a request wait while a recent one exists.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.db import session_scope, utcnow
from monitor.health.models import DeviceHealthRow
from monitor.inventory.models import Commune, Device
from monitor.web import overview as module
from monitor.web.overview import overview

CAO_LOC = "183"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    module._overview_cache.clear()
    module._refreshing.clear()


def _add_down_device(engine: Engine, code: str) -> None:
    with session_scope(engine) as session:
        commune = session.exec(select(Commune.code).where(col(Commune.district_code) == CAO_LOC).limit(1)).one()
        device = Device(
            code=code, name=code, kind="radio_cluster", commune_code=commune, protocol="http", profile="generic-http"
        )
        session.add(device)
        session.flush()
        assert device.id is not None
        session.add(DeviceHealthRow(device_id=device.id, state="down", since=utcnow()))


def _down(engine: Engine, max_age_s: float) -> int:
    with Session(engine) as session:
        return overview(session, district_codes={CAO_LOC}, now=utcnow(), max_age_s=max_age_s).devices_by_state["down"]


def test_shared_then_stale_while_rebuilt_then_fresh(province: Engine) -> None:
    assert _down(province, 0.3) == 0
    _add_down_device(province, "X-1")
    assert _down(province, 0.3) == 0  # shared: built less than 0.3 s ago
    assert _down(province, 0) == 1  # max_age_s 0: built for this request
    time.sleep(0.35)
    assert _down(province, 0.3) == 0  # stale, answered at once; a thread builds the next
    for _ in range(50):
        if not module._refreshing:
            break
        time.sleep(0.05)
    assert _down(province, 0.3) == 1


def test_too_old_an_overview_is_rebuilt_before_answering(province: Engine) -> None:
    assert _down(province, 0.05) == 0
    _add_down_device(province, "X-2")
    time.sleep(0.05 * module.STALE_SERVED_FOR + 0.05)
    assert _down(province, 0.05) == 1


def test_scopes_are_apart(province: Engine) -> None:
    _add_down_device(province, "X-3")
    with Session(province) as session:
        mine = overview(session, district_codes={CAO_LOC}, now=utcnow(), max_age_s=5)
        province_wide = overview(session, district_codes=None, now=utcnow(), max_age_s=5)
        other = overview(session, district_codes={"189"}, now=utcnow(), max_age_s=5)
    assert mine.devices_by_state["down"] == province_wide.devices_by_state["down"] == 1
    assert other.devices_by_state["down"] == 0
    assert [line.summary.district.code for line in mine.districts] == [CAO_LOC]
