"""The few BER pieces an SNMP v2c agent needs: read a request, write a response or a trap.

Hand-written rather than aiosnmp's Rust codec: its decoder panics (a BaseException, with a stack
trace on stderr) on truncated input, which an agent must shrug off, and its encoder cannot write
`noSuchObject` or `endOfMibView`. A request or a reply is a handful of byte strings; names (OIDs)
are encoded once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from monitor.simulator.errors import SimulatorError

GET_REQUEST = 0xA0
GET_NEXT_REQUEST = 0xA1
GET_RESPONSE = 0xA2
GET_BULK_REQUEST = 0xA5
SNMPV2_TRAP = 0xA7
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82
SEQUENCE = 0x30
VERSION_V2C = 1


class MalformedRequest(SimulatorError, ValueError):
    """Bytes that are not an SNMP request this agent understands."""


@dataclass(frozen=True, slots=True)
class Request:
    """An SNMP request as read off the wire."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    non_repeaters: int  # the error-status field: non-repeaters for GETBULK
    max_repetitions: int  # the error-index field: max-repetitions for GETBULK
    oids: tuple[str, ...]  # without the leading dot


def _tlv_at(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at `pos`; MalformedRequest past `end`."""
    if pos + 2 > end:
        raise MalformedRequest("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise MalformedRequest("multi-byte tags are not used by SNMP")
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or pos + size > end:
            raise MalformedRequest("bad length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + length > end:
        raise MalformedRequest("truncated")
    return tag, pos, pos + length


def _integer_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, start, stop = _tlv_at(data, pos, end)
    if tag != 0x02 or not 0 < stop - start <= 9:
        raise MalformedRequest("expected an INTEGER")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


@lru_cache(maxsize=4096)
def decode_oid_body(body: bytes) -> str:
    """`1.3.6...` from the body of an OBJECT IDENTIFIER."""
    if not body or body[-1] & 0x80:
        raise MalformedRequest("bad OID")
    first = body[0]
    if first & 0x80:
        raise MalformedRequest("unsupported OID first arc")
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    arc = 0
    for byte in body[1:]:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    return ".".join(map(str, arcs))


def decode_request(data: bytes) -> Request:
    """Read an SNMP v1/v2c request; MalformedRequest if the bytes are not one."""
    end = len(data)
    tag, pos, end = _tlv_at(data, 0, end)
    if tag != SEQUENCE:
        raise MalformedRequest("not a SEQUENCE")
    version, pos = _integer_at(data, pos, end)
    tag, start, pos = _tlv_at(data, pos, end)
    if tag != 0x04:
        raise MalformedRequest("expected the community")
    community = data[start:pos]
    pdu_type, pos, pdu_end = _tlv_at(data, pos, end)
    request_id, pos = _integer_at(data, pos, pdu_end)
    field2, pos = _integer_at(data, pos, pdu_end)
    field3, pos = _integer_at(data, pos, pdu_end)
    tag, pos, list_end = _tlv_at(data, pos, pdu_end)
    if tag != SEQUENCE:
        raise MalformedRequest("expected the varbind list")
    oids = []
    while pos < list_end:
        tag, item, pos = _tlv_at(data, pos, list_end)
        name_tag, start, stop = _tlv_at(data, item, pos)
        if tag != SEQUENCE or name_tag != 0x06:
            raise MalformedRequest("expected a varbind")
        _tlv_at(data, stop, pos)  # the value (NULL in requests) must be there and well-formed
        oids.append(decode_oid_body(data[start:stop]))
    return Request(version, community, pdu_type, request_id, field2, field3, tuple(oids))


def encode_length(length: int) -> bytes:
    """A BER length: short form below 128, long form above."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    """Tag, length, value."""
    return bytes((tag,)) + encode_length(len(body)) + body


def encode_integer_body(value: int) -> bytes:
    """The minimal two's-complement body of an INTEGER (or of an unsigned application type)."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return value.to_bytes(size, "big", signed=True)


@lru_cache(maxsize=4096)
def encode_oid_body(oid: str) -> bytes:
    """The body of an OBJECT IDENTIFIER `1.3.6...` (no leading dot)."""
    arcs = [int(arc) for arc in oid.split(".")]
    if len(arcs) < 2:
        raise ValueError(f"OID {oid!r} has fewer than two arcs")
    out = bytearray((arcs[0] * 40 + arcs[1],))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


@lru_cache(maxsize=4096)
def encoded_name(oid: str) -> bytes:
    """The full OBJECT IDENTIFIER TLV of a varbind name."""
    return tlv(0x06, encode_oid_body(oid))


def encode_value(tag: int, value: int | str | bytes | None) -> bytes:
    """A value TLV: INTEGER, TimeTicks and other integers, OCTET STRING, OID, or an exception (no body)."""
    if value is None or tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    if tag == 0x06:
        return tlv(tag, encode_oid_body(str(value)))
    if isinstance(value, int):
        return tlv(tag, encode_integer_body(value))
    return tlv(tag, value.encode() if isinstance(value, str) else value)


def varbind(oid: str, tag: int, value: int | str | bytes | None) -> bytes:
    """One encoded varbind."""
    return tlv(SEQUENCE, encoded_name(oid) + encode_value(tag, value))


def encode_message(
    community: bytes,
    pdu_type: int,
    request_id: int,
    varbinds: list[bytes],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    """A v2c message around a PDU of already-encoded varbinds."""
    pdu = tlv(
        pdu_type,
        tlv(0x02, encode_integer_body(request_id))
        + tlv(0x02, encode_integer_body(error_status))
        + tlv(0x02, encode_integer_body(error_index))
        + tlv(SEQUENCE, b"".join(varbinds)),
    )
    return tlv(SEQUENCE, b"\x02\x01\x01" + tlv(0x04, community) + pdu)


def oid_key(oid: str) -> tuple[int, ...]:
    """An OID as a tuple of arcs, for lexicographic order (GETNEXT)."""
    try:
        return tuple(int(arc) for arc in oid.split(".") if arc)
    except ValueError:
        return ()
