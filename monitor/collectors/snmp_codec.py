"""The bytes of SNMP v1/v2c GET requests and responses.

Requests are built from templates: the varbind list of an OID set is encoded once (each OID by pyasn1's
BER encoder, which comes with pysnmp and installs on every Python the service supports), then each request
only adds its request-id and the outer lengths (a few bytes).

Responses are decoded here, in Python, not with aiosnmp's Rust decoder (which the service used before
and which ships wheels only up to CPython 3.11): fed truncated or random
packets (which the field and the simulator's garbage scenario do send), that decoder *panics*
(pyo3 `PanicException`, a BaseException, printing a Rust backtrace to stderr for every packet) on
about 2 % of them instead of raising. This decoder checks every length against its container,
knows the handful of types SNMP uses, and raises `SnmpDecodeError` for anything else. Repeated
OIDs (the same few per profile) are decoded once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import encoder as ber_encoder
from pyasn1.type import univ

from monitor.collectors.errors import UnreadableData

# BER tags (X.690) and SNMP's application types (RFC 2578, 3416).
SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
IP_ADDRESS = 0x40
COUNTER32, GAUGE32, TIME_TICKS, OPAQUE, COUNTER64, UINTEGER32 = 0x41, 0x42, 0x43, 0x44, 0x46, 0x47
GET_REQUEST = 0xA0
GET_RESPONSE = 0xA2
_UNSIGNED = frozenset({COUNTER32, GAUGE32, TIME_TICKS, COUNTER64, UINTEGER32})
_OCTETS = frozenset({OCTET_STRING, OPAQUE})
# noSuchObject, noSuchInstance, endOfMibView: context-specific, primitive, empty.
EXCEPTIONS = {0x80: "noSuchObject", 0x81: "noSuchInstance", 0x82: "endOfMibView"}
ERROR_STATUS = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    7: "wrongType",
    8: "wrongLength",
    9: "wrongEncoding",
    10: "wrongValue",
    11: "noCreation",
    12: "inconsistentValue",
    13: "resourceUnavailable",
    14: "commitFailed",
    15: "undoFailed",
    16: "authorizationError",
    17: "notWritable",
    18: "inconsistentName",
}
_CACHE_MAX = 50_000


class SnmpDecodeError(UnreadableData):
    """A packet that is not a well-formed SNMP v1/v2c message."""


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded GetResponse. `varbinds` are (OID without leading dot, value) with None for the
    exceptions noSuchObject / noSuchInstance / endOfMibView."""

    version: int
    community: bytes
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[str, Any]]


# --- encoding ---------------------------------------------------------------------------------------

_templates: dict[tuple[int, bytes, tuple[str, ...]], tuple[bytes, bytes]] = {}


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _sequence(contents: bytes) -> bytes:
    return bytes((SEQUENCE,)) + _length(len(contents)) + contents


def encode_get(version: int, community: bytes, request_id: int, oids: tuple[str, ...]) -> bytes:
    """A GetRequest message (v1: version 0, v2c: version 1); `request_id` in 1..2^31-1."""
    key = (version, community, oids)
    template = _templates.get(key)
    if template is None:
        varbinds = b"".join(_sequence(ber_encoder.encode(univ.ObjectIdentifier(oid)) + b"\x05\x00") for oid in oids)
        head = bytes((INTEGER, 1, version, OCTET_STRING)) + _length(len(community)) + community
        tail = b"\x02\x01\x00\x02\x01\x00" + _sequence(varbinds)  # error-status 0, error-index 0, varbinds
        if len(_templates) >= _CACHE_MAX:
            _templates.clear()
        template = _templates[key] = (head, tail)
    head, tail = template
    size = (request_id.bit_length() + 8) // 8  # room for the sign bit: request ids are positive
    pdu = bytes((INTEGER, size)) + request_id.to_bytes(size, "big") + tail
    body = head + bytes((GET_REQUEST,)) + _length(len(pdu)) + pdu
    return bytes((SEQUENCE,)) + _length(len(body)) + body


# --- decoding ---------------------------------------------------------------------------------------

_oids: dict[bytes, str] = {}


def _tlv(data: bytes, i: int, end: int) -> tuple[int, int, int]:
    """The tag at `i`, and the start and end of its contents, which must fit before `end`."""
    if i + 2 > end:
        raise SnmpDecodeError(f"truncated at byte {i}")
    tag = data[i]
    n = data[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or i + k > end:
            raise SnmpDecodeError(f"bad length at byte {i - 1}")
        n = int.from_bytes(data[i : i + k], "big")
        i += k
    if i + n > end:
        raise SnmpDecodeError(f"length {n} at byte {i} runs past its container")
    return tag, i, i + n


def _integer(data: bytes, i: int, end: int, what: str) -> tuple[int, int]:
    tag, start, stop = _tlv(data, i, end)
    if tag != INTEGER or start == stop or stop - start > 8:
        raise SnmpDecodeError(f"{what}: expected an INTEGER, got tag 0x{tag:02x}")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def decode_oid(raw: bytes) -> str:
    """BER OBJECT IDENTIFIER contents to a dotted string (no leading dot)."""
    cached = _oids.get(raw)
    if cached is not None:
        return cached
    if not raw or raw[-1] & 0x80:
        raise SnmpDecodeError("empty or unterminated OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    text = ".".join(str(a) for a in (*head, *arcs[1:]))
    if len(_oids) >= _CACHE_MAX:
        _oids.clear()
    _oids[raw] = text
    return text


def _value(tag: int, data: bytes, start: int, stop: int) -> Any:
    if tag == INTEGER:
        if start == stop or stop - start > 8:
            raise SnmpDecodeError("bad INTEGER value")
        return int.from_bytes(data[start:stop], "big", signed=True)
    if tag in _OCTETS:
        return data[start:stop]
    if tag in _UNSIGNED:
        if start == stop or stop - start > 9:
            raise SnmpDecodeError(f"bad unsigned value of tag 0x{tag:02x}")
        return int.from_bytes(data[start:stop], "big")
    if tag in EXCEPTIONS or tag == NULL:
        return None
    if tag == OBJECT_IDENTIFIER:
        return decode_oid(data[start:stop])
    if tag == IP_ADDRESS:
        if stop - start != 4:
            raise SnmpDecodeError("IpAddress is not 4 bytes")
        return ".".join(str(b) for b in data[start:stop])
    raise SnmpDecodeError(f"unexpected value type 0x{tag:02x}")


def decode_response(data: bytes) -> Response:
    """A v1/v2c GetResponse; `SnmpDecodeError` for anything else, whatever the bytes."""
    end = len(data)
    tag, i, stop = _tlv(data, 0, end)
    if tag != SEQUENCE or stop != end:
        raise SnmpDecodeError("not one SNMP message")
    version, i = _integer(data, i, stop, "version")
    if version not in (0, 1):
        raise SnmpDecodeError(f"not SNMP v1/v2c (version field {version})")
    tag, start, i = _tlv(data, i, stop)
    if tag != OCTET_STRING:
        raise SnmpDecodeError("no community")
    community = data[start:i]
    tag, i, pdu_end = _tlv(data, i, stop)
    if tag != GET_RESPONSE:
        raise SnmpDecodeError(f"not a GetResponse (PDU tag 0x{tag:02x})")
    request_id, i = _integer(data, i, pdu_end, "request-id")
    error_status, i = _integer(data, i, pdu_end, "error-status")
    error_index, i = _integer(data, i, pdu_end, "error-index")
    tag, i, list_end = _tlv(data, i, pdu_end)
    if tag != SEQUENCE:
        raise SnmpDecodeError("no varbind list")
    varbinds: list[tuple[str, Any]] = []
    while i < list_end:
        tag, start, i = _tlv(data, i, list_end)
        if tag != SEQUENCE:
            raise SnmpDecodeError("varbind is not a SEQUENCE")
        tag, oid_start, oid_end = _tlv(data, start, i)
        if tag != OBJECT_IDENTIFIER:
            raise SnmpDecodeError("varbind without an OID")
        value_tag, value_start, value_end = _tlv(data, oid_end, i)
        if value_end != i:
            raise SnmpDecodeError("extra bytes in a varbind")
        varbinds.append((decode_oid(data[oid_start:oid_end]), _value(value_tag, data, value_start, value_end)))
    return Response(version, community, request_id, error_status, error_index, varbinds)


__all__ = ["ERROR_STATUS", "Response", "SnmpDecodeError", "decode_oid", "decode_response", "encode_get"]
