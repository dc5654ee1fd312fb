"""Heartbeats pushed by devices behind carrier NAT: `POST /api/v1/heartbeats/{device_code}`.

The device authenticates with its own bearer token (stored hashed). The body is what its profile
maps, the same contract as a poll; a body that cannot be read is recorded as a failed observation and
refused with the reason, so the vendor's engineer can see it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel

from monitor.collectors.heartbeat import observation_from_heartbeat
from monitor.collectors.profiles import ProfileRegistry
from monitor.db import utcnow
from monitor.health.store import HealthStore
from monitor.inventory.tokens import authenticate_device
from monitor.web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/heartbeats", tags=["heartbeats"])
MIN_SPACING_S = 1.0  # a device pushing faster than this is refused (429): one row write per heartbeat


class HeartbeatAccepted(BaseModel):
    device: str
    reachable: bool
    state_changes: int


def get_store(request: Request) -> HealthStore:
    store: HealthStore = request.app.state.health_store
    return store


def get_profiles(request: Request) -> ProfileRegistry:
    registry: ProfileRegistry = request.app.state.profiles
    return registry


async def _read_capped(request: Request, cap: int) -> bytes | None:
    """The body, or None when it is larger than `cap` (never read past cap + 1 bytes)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)


@router.post("/{device_code}", response_model=HeartbeatAccepted, status_code=202)
async def receive_heartbeat(
    device_code: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: Annotated[HealthStore, Depends(get_store)],
    profiles: Annotated[ProfileRegistry, Depends(get_profiles)],
) -> HeartbeatAccepted:
    """Take one heartbeat of a device that pushes its state (bearer token of the device)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    device = authenticate_device(device_code, token, session=session)
    if device is None or device.id is None:
        raise HTTPException(401, "unknown device or wrong token", headers={"WWW-Authenticate": "Bearer"})
    last: dict[int, float] = request.app.state.heartbeat_last_seen
    now_mono = time.monotonic()
    if now_mono - last.get(device.id, -MIN_SPACING_S) < MIN_SPACING_S:
        raise HTTPException(429, f"at most one heartbeat per {MIN_SPACING_S:g} s")
    last[device.id] = now_mono
    if device.profile not in profiles:
        raise HTTPException(409, f"the device's profile {device.profile!r} is not loaded; tell the operator")
    body = await _read_capped(request, settings.heartbeat_max_bytes)
    observed_at = utcnow()
    observation = observation_from_heartbeat(
        profiles.get(device.profile),
        body if body is not None else b"\0" * (settings.heartbeat_max_bytes + 1),
        device_id=device.id,
        observed_at=observed_at,
        max_bytes=settings.heartbeat_max_bytes,
    )
    transitions = await asyncio.to_thread(store.apply, [observation], observed_at)
    if not observation.reachable:
        raise HTTPException(413 if body is None else 422, f"recorded as a failed heartbeat: {observation.error}")
    return HeartbeatAccepted(device=device.code, reachable=True, state_changes=len(transitions))
