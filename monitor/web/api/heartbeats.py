"""Heartbeats pushed by devices behind carrier NAT: `POST /api/v1/heartbeats/{device_code}`.

The device authenticates with its own bearer token (stored hashed). The body is what its profile
maps, the same contract as a poll; a body that cannot be read is recorded as a failed observation and
refused with the reason, so the vendor's engineer can see it.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from pydantic import BaseModel
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from monitor.auth.service import LoginThrottle
from monitor.collectors.heartbeat import observation_from_heartbeat
from monitor.collectors.profiles import ProfileRegistry
from monitor.db import utcnow
from monitor.health.machine import Observation
from monitor.health.store import HealthStore
from monitor.inventory.tokens import authenticate_device
from monitor.web.bodies import api_router
from monitor.web.deps import EngineDep, SettingsDep
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/heartbeats", tags=["heartbeats"])
MIN_SPACING_S = 1.0  # a device pushing faster than this is refused (429): one row write per heartbeat


class HeartbeatAccepted(BaseModel):
    device: str
    reachable: bool
    state_changes: int


async def get_store(request: Request) -> HealthStore:
    store: HealthStore = request.app.state.health_store
    return store


async def get_profiles(request: Request) -> ProfileRegistry:
    registry: ProfileRegistry = request.app.state.profiles
    return registry


async def get_device_throttles(request: Request) -> tuple[LoginThrottle, LoginThrottle]:
    """Failed authentications per (address, device) and per address."""
    throttles: tuple[LoginThrottle, LoginThrottle] = request.app.state.device_auth_throttles
    return throttles


@router.post(
    "/{device_code}", response_model=HeartbeatAccepted, status_code=202, responses=problems(401, 409, 413, 429)
)
async def receive_heartbeat(
    device_code: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")],
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    store: Annotated[HealthStore, Depends(get_store)],
    profiles: Annotated[ProfileRegistry, Depends(get_profiles)],
    throttles: Annotated[tuple[LoginThrottle, LoginThrottle], Depends(get_device_throttles)],
) -> HeartbeatAccepted:
    """Take one heartbeat of a device that pushes its state (bearer token of the device).

    The body is read first (the guard at the door has it already, capped and timed), then the device is
    authenticated and the observation written in one worker thread: no database connection is held while
    a client is still sending.
    """
    body = await request.body()
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    address = request.client.host if request.client else "-"
    # Many devices share a carrier's NAT address: a misconfigured one is refused by (address, code) long
    # before the address as a whole is, so it cannot lock its neighbours out.
    pair, everyone = f"{address} {device_code}", address
    if throttles[0].blocked(pair) or throttles[1].blocked(everyone):
        raise HTTPException(429, "too many failed device authentications from this address; try again later")
    last: dict[int, float] = request.app.state.heartbeat_last_seen

    def take() -> tuple[str, Observation, int] | None:
        with Session(engine, expire_on_commit=False) as session:
            device = authenticate_device(device_code, token, session=session)
        if device is None or device.id is None:
            return None
        now_mono = time.monotonic()
        if now_mono - last.get(device.id, -MIN_SPACING_S) < MIN_SPACING_S:
            raise HTTPException(429, f"at most one heartbeat per {MIN_SPACING_S:g} s")
        last[device.id] = now_mono
        if device.profile not in profiles:
            raise HTTPException(409, f"the device's profile {device.profile!r} is not loaded; tell the operator")
        observed_at = utcnow()
        observation = observation_from_heartbeat(
            profiles.get(device.profile),
            body,
            device_id=device.id,
            observed_at=observed_at,
            max_bytes=settings.heartbeat_max_bytes,
        )
        transitions = store.apply([observation], observed_at)
        return device.code, observation, len(transitions)

    taken = await run_in_threadpool(take)
    if taken is None:
        throttles[0].failed(pair)
        throttles[1].failed(everyone)
        raise HTTPException(401, "unknown device or wrong token", headers={"WWW-Authenticate": "Bearer"})
    code, observation, changes = taken
    if not observation.reachable:
        too_large = len(body) > settings.heartbeat_max_bytes
        raise HTTPException(413 if too_large else 422, f"recorded as a failed heartbeat: {observation.error}")
    return HeartbeatAccepted(device=code, reachable=True, state_changes=changes)
