"""SNMP v3 GET (authPriv, HMAC-SHA-96 / AES-128) on pysnmp 7, with one SnmpEngine reused.

aiosnmp has no USM, so v3 devices go through pysnmp's engine API, which costs more CPU per GET
(MEASUREMENTS.md: about 1.4 ms) and registers each new target in its configuration tables, which
slows down as targets accumulate: fine for the minority of v3 units, not for a whole fleet.

pysnmp keys a USM user by its name: two devices with the same user name but different keys cannot
be asked at the same time (the second configuration would replace the first under the requests
still waiting). A small gate per user name lets requests with the same keys run together and
makes a request with other keys wait until those are done.

Only a name that does not resolve is a `dns` failure (`socket.gaierror`, which pysnmp wraps in its
`PySnmpError` when it resolves a target). Anything else pysnmp or this code raises is an `snmp_error`,
and logged with its traceback once per kind of error and stage, not at every poll, so that a bug does not
hide behind a device's failure.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto import errind, rfc1902

from monitor.collectors.errors import CollectError, FailureKind
from monitor.collectors.snmp_codec import ERROR_STATUS
from monitor.collectors.snmp_v2c import SOCKET_BUFFER_BYTES, udp_socket
from monitor.collectors.target import SnmpV3User

log = logging.getLogger(__name__)

_AUTH_ERRORS = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.DecryptionError,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnsupportedSecurityLevel,
    errind.NotInTimeWindow,
)


def pysnmp_value(value: Any) -> Any:
    """A pysnmp value as plain Python: int, bytes (OCTET STRING), dotted str (OID, IpAddress) or None
    (Null, noSuchObject, noSuchInstance, endOfMibView)."""
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    return value.prettyPrint() if hasattr(value, "prettyPrint") else value


@dataclass
class _UserGate:
    keys: tuple[str, str] | None = None
    in_flight: int = 0
    condition: asyncio.Condition = field(default_factory=asyncio.Condition)


class SnmpV3Client:
    """GET for SNMP v3 authPriv agents through one pysnmp engine, created on first use."""

    def __init__(self, *, timeout_s: float = 2.0, retries: int = 1, buffer_bytes: int = SOCKET_BUFFER_BYTES) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self._buffer_bytes = buffer_bytes
        self._engine: SnmpEngine | None = None
        self._targets: dict[tuple[str, int], UdpTransportTarget] = {}
        self._gates: dict[str, _UserGate] = {}
        self._logged: set[tuple[str, type[BaseException]]] = set()

    def _new_engine(self) -> SnmpEngine:
        engine = SnmpEngine()
        # Our own socket, with 4 MiB buffers: pysnmp's default one (208 KiB) dropped every reply beyond
        # about 256 in flight (measured: 256 of 500 concurrent v3 GETs answered, the rest timed out).
        transport = udp.UdpAsyncioTransport().open_server_mode(sock=udp_socket(socket.AF_INET, self._buffer_bytes))
        config.add_transport(engine, udp.DOMAIN_NAME, transport)
        return engine

    def close(self) -> None:
        """Close the engine's sockets."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
            self._targets.clear()

    async def request(
        self, host: str, port: int, user: SnmpV3User, oids: Sequence[str]
    ) -> dict[str, Any] | CollectError:
        """Values by OID (no leading dot; None when absent), or the failure."""
        if self._engine is None:
            self._engine = self._new_engine()
        engine = self._engine
        try:
            target = self._targets.get((host, port))
            if target is None:
                target = await UdpTransportTarget.create((host, port), timeout=self.timeout_s, retries=self.retries)
                self._targets[(host, port)] = target
        except Exception as exc:
            if is_name_not_resolved(exc):
                return CollectError(FailureKind.DNS, f"cannot resolve {host!r}: {exc}")
            self._log_once("setting up the SNMP v3 target", host, port, exc)
            return CollectError(FailureKind.SNMP_ERROR, f"cannot set up SNMP v3 target {host}:{port}: {exc!r}")
        auth = UsmUserData(
            user.user,
            user.auth_key,
            user.priv_key,
            authProtocol=usmHMACSHAAuthProtocol,
            privProtocol=usmAesCfb128Protocol,
        )
        keys = (user.auth_key, user.priv_key)
        gate = self._gates.setdefault(user.user, _UserGate())
        async with gate.condition:
            await gate.condition.wait_for(lambda: gate.in_flight == 0 or gate.keys == keys)
            gate.keys = keys
            gate.in_flight += 1
        try:
            indication, status, index, varbinds = await get_cmd(
                engine, auth, target, ContextData(), *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False
            )
        except Exception as exc:  # the engine raises PySnmpError for what its callbacks found wrong
            self._log_once("the SNMP v3 request", host, port, exc)
            return CollectError(FailureKind.SNMP_ERROR, f"SNMP v3 request to {host}:{port} failed: {exc}")
        finally:
            async with gate.condition:
                gate.in_flight -= 1
                gate.condition.notify_all()
        if indication:
            return _indication_error(indication, host, port, self.timeout_s, self.retries)
        if status:
            name = ERROR_STATUS.get(int(status), f"error-status {int(status)}")
            kind = FailureKind.SNMP_NO_SUCH if int(status) == 2 else FailureKind.SNMP_ERROR
            return CollectError(kind, f"agent answered {name} (index {int(index)})")
        return {str(name): pysnmp_value(value) for name, value in varbinds}

    def _log_once(self, stage: str, host: str, port: int, exc: BaseException) -> None:
        """Log an unexpected error with its traceback the first time its type is seen at this stage."""
        key = (stage, type(exc))
        if key in self._logged:
            return
        self._logged.add(key)
        log.warning(
            "%s for %s:%d failed with %s (further %s errors there are not logged; the polls report snmp_error)",
            stage,
            host,
            port,
            type(exc).__name__,
            type(exc).__name__,
            exc_info=exc,
        )


def is_name_not_resolved(exc: BaseException) -> bool:
    """Whether an error is a name that did not resolve: `socket.gaierror`, bare or as the cause of pysnmp's error."""
    if isinstance(exc, socket.gaierror):
        return True
    return isinstance(exc, PySnmpError) and isinstance(exc.__cause__ or exc.__context__, socket.gaierror)


def _indication_error(indication: Any, host: str, port: int, timeout_s: float, retries: int) -> CollectError:
    if isinstance(indication, errind.RequestTimedOut):
        return CollectError(
            FailureKind.TIMEOUT, f"no reply from {host}:{port} in {retries + 1} tries of {timeout_s:g} s"
        )
    if isinstance(indication, _AUTH_ERRORS):
        return CollectError(FailureKind.AUTH, f"SNMP v3 security refused by {host}:{port}: {indication}")
    if isinstance(indication, errind.DeserializationError):
        return CollectError(FailureKind.SNMP_DECODE, f"undecodable reply from {host}:{port}: {indication}")
    return CollectError(FailureKind.SNMP_ERROR, f"{host}:{port}: {indication}")


__all__ = ["SnmpV3Client", "is_name_not_resolved", "pysnmp_value"]
