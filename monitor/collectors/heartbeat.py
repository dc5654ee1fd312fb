"""A pushed heartbeat body to an observation: the web endpoint's half of `POST /api/v1/heartbeats/{code}`.

Pure and never raising on device input, like the rest of the mapping: the endpoint authenticates
the device, reads at most `max_bytes + 1` bytes of the body, and calls this.
"""

from __future__ import annotations

from datetime import datetime

from monitor.collectors.errors import FailureKind
from monitor.collectors.mapping import failed_observation, observation_from_json
from monitor.collectors.profile_types import Profile
from monitor.health.machine import Observation

MAX_HEARTBEAT_BYTES = 64 * 1024


def observation_from_heartbeat(
    profile: Profile,
    body: bytes,
    *,
    device_id: int,
    observed_at: datetime,
    max_bytes: int = MAX_HEARTBEAT_BYTES,
) -> Observation:
    """The observation a heartbeat body makes (source `heartbeat`); a body over `max_bytes` is `too_large`."""
    if len(body) > max_bytes:
        detail = f"heartbeat body of {len(body)} bytes or more is over the {max_bytes}-byte cap"
        return failed_observation(device_id, observed_at, "heartbeat", FailureKind.TOO_LARGE, detail)
    return observation_from_json(profile, body, device_id=device_id, observed_at=observed_at, source="heartbeat")


__all__ = ["MAX_HEARTBEAT_BYTES", "observation_from_heartbeat"]
