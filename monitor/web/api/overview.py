"""The overview as data (`GET /api/v1/overview`): what the `/` page shows, from the same service
(`monitor.web.overview`), scoped like every list."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from monitor.db import utcnow
from monitor.web.bodies import api_router
from monitor.web.deps import ScopedList, SessionDep, SettingsDep
from monitor.web.openapi import problems
from monitor.web.overview import overview

router = api_router(prefix="/api/v1/overview", tags=["reports"])


class TicketCountsPublic(BaseModel):
    open: int
    breached: int


class DownDevicePublic(BaseModel):
    code: str
    name: str
    commune_code: str
    commune_name: str
    since: datetime | None


class DistrictOverviewPublic(BaseModel):
    code: str
    name: str
    devices: int
    devices_by_state: dict[str, int]
    tickets: TicketCountsPublic
    availability_7d: float | None
    availability_30d: float | None


class CoveragePublic(BaseModel):
    """Communes against the plan's targets (radio system everywhere; IT-telecom based 80 % by 2025, all by 2030)."""

    communes: int
    with_radio: int
    ip_based: int
    legacy_standing: int
    share_radio: float | None
    share_ip: float | None
    target_ip_2025: float
    target_ip_2030: float


class CollectorGapPublic(BaseModel):
    """Shards of the collectors' pool held by nobody since `since`: their devices are `unknown`, not down."""

    unheld_shards: int
    shard_count: int
    since: datetime


class OverviewPublic(BaseModel):
    """The fleet now (devices by state, the longest down first), open tickets by priority with breaches, uptime
    over the last 7 and 30 local days (as the uptime report counts it), the plan's coverage, and each district."""

    generated_at: datetime
    devices_by_state: dict[str, int]
    down_now: list[DownDevicePublic]
    down_total: int
    tickets: TicketCountsPublic
    tickets_by_priority: dict[str, TicketCountsPublic]
    availability_7d: float | None
    availability_30d: float | None
    coverage: CoveragePublic
    districts: list[DistrictOverviewPublic]
    collectors: CollectorGapPublic | None = None


@router.get("", response_model=OverviewPublic, responses=problems(401, 404))
def get_overview(session: SessionDep, scope: ScopedList, settings: SettingsDep) -> OverviewPublic:
    """What the overview page shows, for your districts (or `district`); `generated_at` says when the figures
    were built (they are shared for `MONITOR_WEB_OVERVIEW_MAX_AGE_S`, 5 s by default)."""
    o = overview(session, district_codes=scope.district_codes, now=utcnow(), max_age_s=settings.web_overview_max_age_s)
    c = o.coverage
    return OverviewPublic(
        generated_at=o.now,
        devices_by_state=o.devices_by_state,
        down_now=[
            DownDevicePublic(
                code=device.code,
                name=device.name,
                commune_code=commune.code,
                commune_name=commune.name,
                since=health.since if health is not None else None,
            )
            for device, commune, _parent, health in o.down_now
        ],
        down_total=o.down_total,
        tickets=TicketCountsPublic(open=o.tickets.open, breached=o.tickets.breached),
        tickets_by_priority={
            p: TicketCountsPublic(open=t.open, breached=t.breached) for p, t in o.tickets_by_priority.items()
        },
        availability_7d=o.availability_7d,
        availability_30d=o.availability_30d,
        coverage=CoveragePublic(
            communes=c.communes,
            with_radio=c.with_radio,
            ip_based=c.ip_based,
            legacy_standing=c.legacy_standing,
            share_radio=c.share_radio,
            share_ip=c.share_ip,
            target_ip_2025=o.target_ip_2025,
            target_ip_2030=o.target_ip_2030,
        ),
        districts=[
            DistrictOverviewPublic(
                code=line.summary.district.code,
                name=line.summary.district.name,
                devices=line.summary.device_count,
                devices_by_state=line.summary.devices_by_state,
                tickets=TicketCountsPublic(open=line.tickets.open, breached=line.tickets.breached),
                availability_7d=line.availability_7d,
                availability_30d=line.availability_30d,
            )
            for line in o.districts
        ],
        collectors=(
            CollectorGapPublic(
                unheld_shards=o.collectors.unheld, shard_count=o.collectors.shard_count, since=o.collectors.since
            )
            if o.collectors is not None
            else None
        ),
    )
