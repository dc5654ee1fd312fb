"""SNMP polling: v1/v2c over shared sockets (`snmp_v2c`), v3 authPriv over pysnmp (`snmp_v3`), one interface.

The device's credentials decide the path (see `target.parse_snmp_credentials`): a community goes
to the shared-socket client, `v3:USER:AUTHPASS:PRIVPASS` to pysnmp. `poll()` GETs the profile's
OIDs in one request and maps the values; it never raises for what a device does. An agent that
knows none of the profile's OIDs fails `snmp_no_such` (the wrong profile, or the wrong device).
Credentials the collector's keys cannot open are not tried: the poll fails `config`, the collector's
fault (logged once per device, and not counted against the device: see `liveness`).

Traps and informs are received by `TrapReceiver` (module `traps`, re-exported here).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from monitor.collectors.errors import CollectError, FailureKind
from monitor.collectors.mapping import failed_observation, observation_from_snmp
from monitor.collectors.profile_types import Profile
from monitor.collectors.snmp_v2c import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, SOCKET_BUFFER_BYTES, SnmpV2cClient
from monitor.collectors.snmp_v3 import SnmpV3Client
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget, SnmpCommunity, parse_snmp_credentials, unreadable_credentials
from monitor.collectors.traps import TrapFault, TrapReceiver, fault_from_trap
from monitor.health.machine import Observation

log = logging.getLogger(__name__)

DEFAULT_PORT = 161


class SnmpPoller:
    """Polls SNMP devices with their profile's OIDs (see the module docstring)."""

    def __init__(
        self,
        *,
        counters: OutcomeCounters | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        sockets: int = 1,
        buffer_bytes: int = SOCKET_BUFFER_BYTES,
    ) -> None:
        self.counters = counters if counters is not None else OutcomeCounters()
        self._v2c = SnmpV2cClient(
            timeout_s=timeout_s, retries=retries, sockets=sockets, buffer_bytes=buffer_bytes, counters=self.counters
        )
        self._v3 = SnmpV3Client(timeout_s=timeout_s, retries=retries, buffer_bytes=buffer_bytes)
        self._unreadable: set[str] = set()  # devices whose credentials could not be opened, logged once

    async def start(self) -> None:
        """Open the shared sockets (inside the running loop)."""
        await self._v2c.start()

    async def close(self) -> None:
        """Close every socket; requests still waiting end as timeouts."""
        self._v2c.close()
        self._v3.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def get(self, target: PollTarget, oids: Sequence[str]) -> dict[str, Any]:
        """Values of `oids` on the target's agent, by OID without leading dot (None when the agent has
        no such object); `CollectError` when the GET fails."""
        result = await self._request(target, tuple(oid.lstrip(".") for oid in oids))
        if isinstance(result, CollectError):
            raise result
        return result

    async def poll(self, target: PollTarget, profile: Profile) -> Observation:
        """GET the profile's OIDs and map them; never raises for what the device does."""
        observed_at = datetime.now(UTC)
        started = time.perf_counter()
        oids = profile.oids
        if not oids:
            result: dict[str, Any] | CollectError = CollectError(
                FailureKind.SNMP_NO_SUCH, f"profile {profile.name!r} maps no OID"
            )
        else:
            result = await self._request(target, oids)
        latency_s = time.perf_counter() - started
        if isinstance(result, CollectError):
            observation = failed_observation(
                target.device_id, observed_at, "snmp", result.kind, result.detail, latency_s=latency_s
            )
        elif all(result.get(oid) is None for oid in oids):
            detail = f"the agent has none of the {len(oids)} objects of profile {profile.name!r}"
            observation = failed_observation(
                target.device_id, observed_at, "snmp", FailureKind.SNMP_NO_SUCH, detail, latency_s=latency_s
            )
        else:
            observation = observation_from_snmp(
                profile, result, device_id=target.device_id, observed_at=observed_at, latency_s=latency_s
            )
        self.counters.record_observation(observation)
        return observation

    async def _request(self, target: PollTarget, oids: tuple[str, ...]) -> dict[str, Any] | CollectError:
        unreadable = unreadable_credentials(target)
        if unreadable is not None:
            if target.code not in self._unreadable:
                self._unreadable.add(target.code)
                log.error("not polling %s: %s", target.code, unreadable.detail)
            return unreadable
        try:
            credentials = parse_snmp_credentials(target.credentials)
        except CollectError as exc:
            return exc
        host = target.address.strip()
        if not host:
            return CollectError(FailureKind.UNREACHABLE, "the device has no address to poll")
        port = target.port or DEFAULT_PORT
        if isinstance(credentials, SnmpCommunity):
            return await self._v2c.request(host, port, credentials.community.encode(), oids, credentials.version)
        return await self._v3.request(host, port, credentials, oids)


__all__ = ["DEFAULT_PORT", "SnmpPoller", "TrapFault", "TrapReceiver", "fault_from_trap"]
