"""The fleet's active devices as poll targets, read from the inventory, and kept out of the garbage collector's way.

A collector reads them at its start and every `refresh_s`: as rows of the columns a `PollTarget` needs, a batch at
a time, and keeps the very objects of the targets that did not change (frozen once at the start).
"""

from __future__ import annotations

import gc

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from monitor.collectors.target import PollTarget
from monitor.inventory.models import Device

TARGETS_BATCH = 5_000  # inventory rows read at a time at a refresh (a server-side cursor on PostgreSQL)
#: What a `PollTarget` is made of, in its fields' order.
TARGET_COLUMNS = (
    col(Device.id),
    col(Device.code),
    col(Device.protocol),
    col(Device.address),
    col(Device.port),
    col(Device.profile),
    col(Device.credentials),
    col(Device.interval_s),
)


def load_targets(engine: Engine) -> list[PollTarget]:
    """The active devices as targets, read as rows of the columns they need, a batch at a time.

    Not as `Device` objects: every column and an ORM state for each device of the inventory, every
    minute, took 114 MiB at once for 40,000 devices (traced; ~15 MiB as rows in batches), memory the
    allocator kept: a collector of a pool of three over 40,000 devices sat at ~325 MiB instead of ~190.
    """
    query = (
        sa.select(*TARGET_COLUMNS)
        .where(col(Device.active).is_(True))
        .order_by(col(Device.id))
        .execution_options(yield_per=TARGETS_BATCH)
    )
    with engine.connect() as connection:
        return [
            PollTarget(
                row.id, row.code, row.protocol, row.address, row.port, row.profile, row.credentials, row.interval_s
            )
            for row in connection.execute(query)
        ]


def freeze_what_lives_on() -> None:
    """Put what is built by now (modules, mappers, the targets) out of the cyclic collector's sight, once.

    Full collections then no longer walk the targets (measured at 100,000 devices: 10 % of a core and
    130-200 ms pauses). Once, before the first poll, not at every refresh: a frozen object is never
    collected, so a freeze while polls and saves are in flight keeps for good whatever of theirs dies later
    in a reference cycle (frozen every minute, the frozen heap of a collector polling 13,000 devices grew by
    ~200 objects a minute, without end). The targets stay frozen: a refresh keeps the unchanged ones
    (`same_targets_kept`).
    """
    gc.collect()
    gc.freeze()


def same_targets_kept(previous: list[PollTarget], loaded: list[PollTarget]) -> list[PollTarget]:
    """`loaded`, where each target equal to the previous one of its device is that previous object.

    Unchanged targets then stay the objects frozen at the start (`freeze_what_lives_on`), out of the cyclic
    collector's sight; only new and changed devices get new ones.
    """
    before = {target.device_id: target for target in previous}
    return [
        old
        if (old := before.get(target.device_id)) is not None
        and old == target
        and type(old.credentials) is type(target.credentials)  # an Unopened equals its sealed text
        else target
        for target in loaded
    ]
