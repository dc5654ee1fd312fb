"""A collector's memory stays bounded over its refreshes: nothing it had in flight is frozen out of the
cyclic collector's reach (issue 14's soak: a pool collector grew from 240 to 300+ MiB in minutes)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.fleet_targets import load_targets, same_targets_kept
from monitor.collectors.target import PollTarget
from monitor.config import Settings
from monitor.inventory.models import Device
from monitor.sealing import Unopened
from tests.peers import free_port
from tests.test_collect_end_to_end import _polled_fleet, _simulated


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # what a collector froze in this test is the next tests' garbage


class InFlight:
    """Stands for what a poll holds while it runs and drops in a reference cycle (a task, its exception)."""

    def __init__(self) -> None:
        self.itself = self


def test_refreshes_while_polls_run_freeze_nothing_and_what_was_in_flight_is_freed(
    province: Engine, collector_settings: Settings
) -> None:
    http_port, snmp_port = free_port(), free_port()
    codes = _polled_fleet(province, http_port, snmp_port)

    async def scenario() -> tuple[int, int, list[weakref.ref[InFlight]]]:
        simulator, collector = _simulated(collector_settings, province, http_port, snmp_port)
        await simulator.start()
        await collector.start()
        frozen_at_start = gc.get_freeze_count()
        gone: list[weakref.ref[InFlight]] = []
        try:
            for _ in range(5):
                held = InFlight()
                gone.append(weakref.ref(held))
                polls = asyncio.ensure_future(collector.scheduler.poll_all_now())
                await asyncio.sleep(0)  # the polls are on their way while the inventory is read again
                await collector.refresh()
                await polls
                assert await collector.flush() == len(codes)
                del held
            return frozen_at_start, gc.get_freeze_count(), gone
        finally:
            await collector.stop()
            await simulator.stop()

    frozen_at_start, frozen_after, gone = asyncio.run(scenario())
    assert frozen_after <= frozen_at_start, "a refresh froze what was in flight"
    gc.collect()
    assert [ref() for ref in gone] == [None] * len(gone), "a cycle alive during a refresh outlived it"


def test_a_refresh_keeps_unchanged_targets_and_takes_new_and_changed_ones() -> None:
    first = [
        PollTarget(1, "A-1", "http", "http://127.0.0.1/status", None, "vietloa-ip200-http"),
        PollTarget(2, "A-2", "snmp", "127.0.0.2", 161, "daiviet-rx-snmp", credentials="public"),
        PollTarget(3, "A-3", "snmp", "127.0.0.3", 161, "daiviet-rx-snmp", credentials="sealed"),
    ]
    loaded = [
        replace(first[0]),  # the same row read again
        replace(first[1], interval_s=300),
        replace(first[2], credentials=Unopened("sealed", "no key opens it")),
        PollTarget(4, "A-4", "http", "http://127.0.0.4/status", None, "vietloa-ip200-http"),
    ]

    kept = same_targets_kept(first, loaded)

    assert kept == loaded
    assert kept[0] is first[0]
    assert [kept[i] is loaded[i] for i in (1, 2, 3)] == [True, True, True]


def test_a_refresh_reads_rows_not_device_objects_and_gets_the_same_targets(province: Engine) -> None:
    _polled_fleet(province, free_port(), free_port())
    loaded: list[object] = []

    def count(target: object, _context: object) -> None:
        loaded.append(target)

    sa.event.listen(Device, "load", count)
    try:
        targets = load_targets(province)
    finally:
        sa.event.remove(Device, "load", count)

    assert loaded == [], "a refresh built ORM objects of the whole inventory"
    with Session(province) as session:
        devices = session.exec(select(Device).where(col(Device.active).is_(True)).order_by(col(Device.id)))
        assert targets == [PollTarget.from_device(d) for d in devices]
