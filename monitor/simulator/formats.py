"""What each vendor says, exactly as docs/vendor-formats.md writes it: JSON bodies, SNMP objects, garbage.

Pure functions of a device and its `DeviceState`; the protocol servers only carry the bytes.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from monitor.simulator.faults import GarbageVariant
from monitor.simulator.fleet import DeviceState, SimDevice

HUGE_BODY_BYTES = 10 * 1024 * 1024

# SNMP value tags (BER): the types the fleet's objects use.
INTEGER = 0x02
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
TIMETICKS = 0x43

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_OPER_STATUS_1 = "1.3.6.1.2.1.2.2.1.8.1"
ENTERPRISE = "1.3.6.1.4.1.99999"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
TRAP_FAULT_RAISED = f"{ENTERPRISE}.2.1"
TRAP_FAULT_CLEARED = f"{ENTERPRISE}.2.2"
TRAP_FAULT_CODE = f"{ENTERPRISE}.2.10.0"
TRAP_DEVICE_CODE = f"{ENTERPRISE}.2.11.0"

#: One SNMP object: (OID without leading dot, BER tag, value).
SnmpObject = tuple[str, int, int | str]

_SERVER_HEADER = {
    "vietloa-ip200-http": "lighttpd/1.4.59",
    "saobac-board-http": "nginx/1.18.0",
}


def iso_utc(now: float) -> str:
    """`2026-11-26T15:00:00Z`: the VietLoa timestamp."""
    return datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vietloa(device: SimDevice, state: DeviceState, now: float) -> dict[str, Any]:
    """The VietLoa IP-200 status (HTTP) and heartbeat (MQTT)."""
    return {
        "device_id": device.code,
        "fw": state.firmware,
        "uptime": state.uptime_s,
        "power": {"source": "AC" if state.power == "mains" else "BAT", "battery": state.battery_pct},
        "net": {"type": "4G" if device.protocol == "mqtt" else "ETH", "rssi": state.signal_dbm},
        "audio": {"amp": state.amplifier, "line": state.speaker_line, "volume": state.volume_pct},
        "temp": state.temperature_c,
        "door": state.door,
        "ts": iso_utc(now),
    }


def saobac(device: SimDevice, state: DeviceState) -> dict[str, Any]:
    """The Sao Bắc bulletin board status (HTTP) and heartbeat body."""
    return {
        "serial": device.serial,
        "system": {"uptime_s": state.uptime_s, "firmware": state.firmware, "power": state.power},
        "status": {
            "display": state.display,
            "brightness": state.brightness_pct,
            "temperature_c": state.temperature_c,
            "content": {"playlist": "tin-tuc-xa", "updated_at": state.content_updated_at},
            "storage": {"used_pct": state.storage_used_pct},
        },
    }


# Faults a TTS-1 reports by itself in its `faults` list (it diagnoses what its readings show too).
_TTS_SELF_REPORTED = frozenset(
    {"amplifier_fault", "speaker_line_fault", "door_open", "overheat", "low_signal", "power_loss"}
)


def tts(device: SimDevice, state: DeviceState) -> dict[str, Any]:
    """The TruyềnThanh số TTS-1 heartbeat: the service's own observation contract."""
    return {
        "readings": {
            "uptime_s": state.uptime_s,
            "power": state.power,
            "battery_pct": state.battery_pct,
            "signal_dbm": state.signal_dbm,
            "temperature_c": state.temperature_c,
            "volume_pct": state.volume_pct,
            "firmware": state.firmware,
        },
        "faults": [code for code in state.faults if code in _TTS_SELF_REPORTED],
    }


def document(device: SimDevice, state: DeviceState, now: float) -> dict[str, Any]:
    """The JSON document a device of this profile serves or pushes."""
    if device.profile.startswith("vietloa"):
        return vietloa(device, state, now)
    if device.profile.startswith("saobac"):
        return saobac(device, state)
    if device.profile == "tts-heartbeat":
        return tts(device, state)
    raise ValueError(f"profile {device.profile!r} has no JSON format")


def encode(doc: Any) -> bytes:
    """Compact JSON, as embedded firmware writes it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _numbers_as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _numbers_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_strings(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def garbage_body(variant: GarbageVariant, device: SimDevice, state: DeviceState, now: float) -> bytes:
    """A malformed body of `variant` in place of the device's JSON."""
    good = encode(document(device, state, now))
    if variant is GarbageVariant.WRONG_TYPES:
        return encode(_numbers_as_strings(document(device, state, now)))
    if variant is GarbageVariant.HUGE_BODY:
        prefix = b'{"device_id":"' + device.code.encode() + b'","log":"'
        return prefix + b"x" * (HUGE_BODY_BYTES - len(prefix) - 2) + b'"}'
    if variant is GarbageVariant.NOT_JSON:
        return f"AT+STATUS={device.code},ERR 0x1F\r\nBUSY\r\n".encode()
    return good[: len(good) // 2]  # MALFORMED_JSON (and any other variant): the JSON cut in the middle


def server_header(device: SimDevice) -> str:
    """What the device's embedded web server calls itself."""
    return _SERVER_HEADER.get(device.profile, "GoAhead-Webs")


# --- SNMP ----------------------------------------------------------------------------------------

_SYS_DESCR = {
    "daiviet-rx-snmp": "Dai Viet DV-RX8 fw {fw}",
    "generic-mib2": "Linux station {fw} #1 SMP Debian 5.10.209-2 (2024-01-31) x86_64",
}
_SYS_OBJECT_ID = {"daiviet-rx-snmp": f"{ENTERPRISE}.10.8", "generic-mib2": "1.3.6.1.4.1.8072.3.2.10"}


def snmp_objects(device: SimDevice, state: DeviceState, *, wrong_types: bool = False) -> list[SnmpObject]:
    """The objects the device's agent serves, in OID order (MIB-2, plus the Đại Việt subtree)."""
    descr = _SYS_DESCR.get(device.profile, "SNMP agent {fw}").format(fw=state.firmware)
    objects: list[SnmpObject] = [
        (SYS_DESCR, OCTET_STRING, descr),
        (SYS_OBJECT_ID, OBJECT_IDENTIFIER, _SYS_OBJECT_ID.get(device.profile, "1.3.6.1.4.1.8072.3.2.10")),
        (SYS_UPTIME, TIMETICKS, (state.uptime_s * 100) % 2**32),
        (SYS_NAME, OCTET_STRING, device.code),
        (IF_OPER_STATUS_1, INTEGER, state.if_oper_status),
    ]
    if device.profile == "daiviet-rx-snmp":
        line = {"OK": 1, "OPEN": 2, "SHORT": 3}[state.speaker_line]
        readings = (
            1 if state.amplifier == "OK" else 2,
            line,
            1 if state.power == "mains" else 2,
            state.battery_pct,
            state.signal_dbm,
            round(state.temperature_c),
            state.volume_pct,
            1 if state.door == "closed" else 2,
        )
        for n, value in enumerate(readings, start=1):
            if wrong_types:
                objects.append((f"{ENTERPRISE}.1.{n}.0", OCTET_STRING, str(value)))
            else:
                objects.append((f"{ENTERPRISE}.1.{n}.0", INTEGER, value))
        objects.append((f"{ENTERPRISE}.1.9.0", OCTET_STRING, state.firmware))
    return objects


def random_bytes(rng: random.Random) -> bytes:
    """Between 1 and 200 random bytes: what a confused agent might send."""
    return rng.randbytes(rng.randint(1, 200))
