"""From the contract's sample payloads to readings and faults; garbage becomes a failed observation, never an error."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.collectors.errors import CollectError, FailureKind
from monitor.collectors.heartbeat import observation_from_heartbeat
from monitor.collectors.mapping import failed_observation, observation_from_json, observation_from_snmp
from monitor.collectors.profiles import load_profiles
from monitor.collectors.stats import OutcomeCounters
from monitor.collectors.target import PollTarget, SnmpCommunity, SnmpV3User, parse_snmp_credentials
from monitor.health.machine import Observation
from monitor.inventory.models import Device

REGISTRY = load_profiles()
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)

# The samples of docs/vendor-formats.md, verbatim.
VIETLOA = {
    "device_id": "06613-CL01",
    "fw": "2.4.1",
    "uptime": 123456,
    "power": {"source": "AC", "battery": 100},
    "net": {"type": "4G", "rssi": -87},
    "audio": {"amp": "OK", "line": "OK", "volume": 70},
    "temp": 41.5,
    "door": "closed",
    "ts": "2026-11-26T15:00:00Z",
}
SAOBAC = {
    "serial": "SB55-000123",
    "system": {"uptime_s": 86400, "firmware": "1.8.0", "power": "mains"},
    "status": {
        "display": "on",
        "brightness": 80,
        "temperature_c": 45.0,
        "content": {"playlist": "tin-tuc-xa", "updated_at": 1764169200},
        "storage": {"used_pct": 40},
    },
}
SAOBAC_UPDATED = datetime.fromtimestamp(1764169200, UTC)
TTS = {
    "readings": {
        "uptime_s": 3600,
        "power": "mains",
        "battery_pct": 100,
        "signal_dbm": -80,
        "temperature_c": 38.0,
        "volume_pct": 65,
        "firmware": "1.0.3",
    },
    "faults": [],
}
SYS = "1.3.6.1.2.1.1"
DV = "1.3.6.1.4.1.99999.1"
DAIVIET = {
    f"{SYS}.1.0": b"Dai Viet DV-RX8 fw 3.1.0",
    f"{SYS}.3.0": 12345678,
    "1.3.6.1.2.1.2.2.1.8.1": 1,
    **{f"{DV}.{n}.0": v for n, v in {1: 1, 2: 1, 3: 1, 4: 100, 5: -87, 6: 41, 7: 70, 8: 1}.items()},
    f"{DV}.9.0": b"3.1.0",
}


def from_json(profile: str, payload: Any, at: datetime = NOW, source: str = "http") -> Observation:
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload).encode()
    return observation_from_json(
        REGISTRY.get(profile), body, device_id=7, observed_at=at, source=source, latency_s=0.01
    )


def from_snmp(values: dict[str, Any], profile: str = "daiviet-rx-snmp") -> Observation:
    return observation_from_snmp(REGISTRY.get(profile), values, device_id=7, observed_at=NOW, latency_s=0.002)


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `document` with the dotted `path` set to `value`."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = result
    for key in parents:
        node = node[key]
    node[last] = value
    return result


@pytest.mark.parametrize("profile", ["vietloa-ip200-http", "vietloa-ip200-mqtt"])
def test_the_vietloa_sample_maps_to_its_readings_and_no_fault(profile: str) -> None:
    observation = from_json(profile, VIETLOA)
    assert observation.reachable and observation.error is None and observation.latency_s == 0.01
    assert dict(observation.readings) == {
        "firmware": "2.4.1",
        "uptime_s": 123456,
        "power": "mains",
        "battery_pct": 100,
        "network": "4G",
        "signal_dbm": -87,
        "amplifier": "ok",
        "speaker_line": "ok",
        "volume_pct": 70,
        "temperature_c": 41.5,
        "door": "closed",
    }
    assert observation.faults == frozenset()


@pytest.mark.parametrize(
    ("path", "value", "faults"),
    [
        ("power.source", "BAT", {"power_loss"}),
        ("audio.amp", "FAIL", {"amplifier_fault"}),
        ("audio.line", "OPEN", {"speaker_line_fault"}),
        ("audio.line", "SHORT", {"speaker_line_fault"}),
        ("net.rssi", -105, set()),  # "below -105" is strictly below
        ("net.rssi", -105.5, {"low_signal"}),
        ("net.rssi", -120, {"low_signal"}),
        ("temp", 70, set()),  # "above 70" is strictly above
        ("temp", 70.1, {"overheat"}),
        ("door", "open", {"door_open"}),
    ],
)
def test_each_vietloa_fault_rule_fires_past_its_threshold(path: str, value: Any, faults: set[str]) -> None:
    observation = from_json("vietloa-ip200-http", changed(VIETLOA, path, value))
    assert observation.reachable and observation.faults == faults


def test_the_saobac_sample_maps_its_readings_and_content_age_relative_to_the_observation() -> None:
    observation = from_json("saobac-board-http", SAOBAC, at=SAOBAC_UPDATED + timedelta(minutes=10))
    assert dict(observation.readings) == {
        "serial": "SB55-000123",
        "uptime_s": 86400,
        "firmware": "1.8.0",
        "power": "mains",
        "display": "on",
        "brightness_pct": 80,
        "temperature_c": 45.0,
        "playlist": "tin-tuc-xa",
        "content_age_s": 600,
        "storage_used_pct": 40,
    }
    assert observation.faults == frozenset()


@pytest.mark.parametrize(
    ("age", "faults"),
    [
        (timedelta(hours=2), set()),
        (timedelta(hours=2, seconds=1), {"content_stale"}),
        (timedelta(days=3), {"content_stale"}),
    ],
)
def test_content_older_than_two_hours_is_stale(age: timedelta, faults: set[str]) -> None:
    assert from_json("saobac-board-heartbeat", SAOBAC, at=SAOBAC_UPDATED + age, source="heartbeat").faults == faults


def test_content_updated_by_a_clock_ahead_of_ours_is_fresh_not_negative() -> None:
    observation = from_json("saobac-board-http", SAOBAC, at=SAOBAC_UPDATED - timedelta(minutes=5))
    assert observation.readings["content_age_s"] == 0 and observation.faults == frozenset()


@pytest.mark.parametrize(
    ("path", "value", "faults"),
    [
        ("system.power", "battery", {"power_loss"}),
        ("status.display", "off", {"screen_off"}),
        ("status.storage.used_pct", 95, set()),
        ("status.storage.used_pct", 95.5, {"storage_full"}),
        ("status.temperature_c", 70, set()),
        ("status.temperature_c", 71, {"overheat"}),
    ],
)
def test_each_saobac_fault_rule_fires_past_its_threshold(path: str, value: Any, faults: set[str]) -> None:
    assert from_json("saobac-board-http", changed(SAOBAC, path, value), at=SAOBAC_UPDATED).faults == faults


def test_the_tts_contract_passes_readings_through_and_keeps_reported_faults() -> None:
    observation = from_json("tts-heartbeat", TTS, source="heartbeat")
    assert dict(observation.readings) == TTS["readings"] and observation.faults == frozenset()
    reported = from_json("tts-heartbeat", {**TTS, "faults": ["amplifier_fault", "speaker_line_fault"]})
    assert reported.faults == {"amplifier_fault", "speaker_line_fault"}
    weak = from_json("tts-heartbeat", changed(TTS, "readings.signal_dbm", -110))
    assert weak.faults == {"low_signal"}, "the profile's thresholds apply to the contract's readings too"
    assert from_json("tts-heartbeat", {"faults": ["door_open"]}).readings == {}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"readings": {"humidity": 40}}, "readings.humidity: unknown reading"),
        ({"readings": {"power": "solar"}}, "readings.power: unexpected value 'solar'"),
        ({"readings": {"volume_pct": "65"}}, "readings.volume_pct: expected a number, got string '65'"),
        ({"readings": [1, 2]}, "readings: expected an object"),
        ({"faults": "amplifier_fault"}, "faults: expected a list of fault codes"),
        ({"faults": ["Amplifier Fault"]}, "faults[0]: expected a fault code"),
        ({"readings": {}, "extra": 1}, "unknown key 'extra'"),
        ([TTS], "expected a JSON object"),
    ],
)
def test_a_tts_payload_off_contract_is_bad_payload(payload: Any, reason: str) -> None:
    observation = from_json("tts-heartbeat", payload, source="heartbeat")
    assert not observation.reachable and observation.error is not None
    assert observation.error.startswith("bad_payload: ") and reason in observation.error


def test_the_daiviet_snmp_values_map_to_readings_with_timeticks_in_seconds() -> None:
    observation = from_snmp(DAIVIET)
    assert observation.reachable and observation.source == "snmp" and observation.faults == frozenset()
    assert dict(observation.readings) == {
        "description": "Dai Viet DV-RX8 fw 3.1.0",
        "uptime_s": 123456,
        "if_oper_status": "up",
        "amplifier": "ok",
        "speaker_line": "ok",
        "power": "mains",
        "battery_pct": 100,
        "signal_dbm": -87,
        "temperature_c": 41,
        "volume_pct": 70,
        "door": "closed",
        "firmware": "3.1.0",
    }


@pytest.mark.parametrize(
    ("oid", "value", "faults"),
    [
        (f"{DV}.1.0", 2, {"amplifier_fault"}),
        (f"{DV}.2.0", 2, {"speaker_line_fault"}),
        (f"{DV}.2.0", 3, {"speaker_line_fault"}),
        (f"{DV}.3.0", 2, {"power_loss"}),
        (f"{DV}.5.0", -105, set()),
        (f"{DV}.5.0", -106, {"low_signal"}),
        (f"{DV}.6.0", 70, set()),
        (f"{DV}.6.0", 71, {"overheat"}),
        (f"{DV}.8.0", 2, {"door_open"}),
        ("1.3.6.1.2.1.2.2.1.8.1", 2, {"uplink_down"}),
    ],
)
def test_each_daiviet_fault_rule_fires(oid: str, value: int, faults: set[str]) -> None:
    assert from_snmp({**DAIVIET, oid: value}).faults == faults


def test_snmp_objects_the_agent_lacks_are_simply_absent() -> None:
    observation = from_snmp({f"{SYS}.1.0": b"Linux box", f"{SYS}.3.0": 99, f"{DV}.1.0": None})
    assert observation.reachable and dict(observation.readings) == {"description": "Linux box", "uptime_s": 0}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({f"{DV}.1.0": 7}, f"{DV}.1.0: unexpected number 7 for amplifier"),
        ({f"{DV}.4.0": b"full"}, "(battery_pct): expected a number, got string 'full'"),
        ({f"{DV}.4.0": 250}, "250 is out of range [0, 100]"),
        ({f"{DV}.6.0": 2**40}, "out of range"),
    ],
)
def test_snmp_values_of_the_wrong_kind_are_bad_payload(values: dict[str, Any], reason: str) -> None:
    observation = from_snmp({**DAIVIET, **values})
    assert not observation.reachable and observation.error is not None
    assert observation.error.startswith("bad_payload: ") and reason in observation.error


GARBAGE: list[tuple[bytes, str, str]] = [
    (b"", "bad_json", "not JSON"),
    (b"<html>500</html>", "bad_json", "not JSON: Expecting value at line 1 column 1"),
    (b"\xff\xfe\x00garbage", "bad_json", "not JSON"),
    (b'{"temp": NaN}', "bad_json", "NaN is not valid JSON"),
    (b'{"temp": -Infinity}', "bad_json", "-Infinity is not valid JSON"),
    (b'{"uptime": 1' + b"0" * 5000 + b"}", "bad_json", "digits"),
    (b"[" * 100_000, "bad_json", "nested too deep"),
    (b"[1, 2]", "bad_payload", "expected a JSON object, got list"),
    (b'"status ok"', "bad_payload", "expected a JSON object, got string"),
    (b'{"temp": "41.5"}', "bad_payload", "temp (temperature_c): expected a number, got string '41.5'"),
    (b'{"temp": 1e400}', "bad_payload", "expected a finite number, got inf"),
    (b'{"temp": 1e300}', "bad_payload", "1e+300 is out of range [-60, 200]"),
    (b'{"uptime": -5}', "bad_payload", "uptime (uptime_s): -5 is out of range"),
    (b'{"uptime": ' + b"9" * 100 + b"}", "bad_payload", "out of range"),
    (b'{"power": {"battery": true}}', "bad_payload", "expected a number, got boolean True"),
    (b'{"audio": [1, 2]}', "bad_payload", "field audio.amp: audio is list [1, 2], not an object"),
    (
        b'{"power": {"source": "XYZ"}}',
        "bad_payload",
        "power.source: unexpected string 'XYZ' for power, expected one of AC, BAT",
    ),
    (b'{"fw": {"major": 2}}', "bad_payload", "fw (firmware): expected a string, got object"),
    (b'{"fw": "' + b"x" * 500 + b'"}', "bad_payload", "longer than 100"),
]


@pytest.mark.parametrize(("payload", "kind", "reason"), GARBAGE)
def test_garbage_becomes_a_failed_observation_with_a_precise_reason(payload: bytes, kind: str, reason: str) -> None:
    observation = from_json("vietloa-ip200-http", payload)
    assert not observation.reachable and observation.readings == {} and observation.faults == frozenset()
    assert observation.error is not None and observation.error.startswith(f"{kind}: ")
    assert reason in observation.error
    assert observation.latency_s == 0.01


def test_absent_and_null_fields_are_absent_from_the_readings() -> None:
    observation = from_json("vietloa-ip200-http", {"temp": 41.5, "power": None, "audio": {"amp": None}})
    assert observation.reachable and dict(observation.readings) == {"temperature_c": 41.5}


def test_an_already_parsed_document_and_text_work_like_bytes() -> None:
    profile = REGISTRY.get("vietloa-ip200-mqtt")
    parsed = observation_from_json(profile, VIETLOA, device_id=7, observed_at=NOW, source="mqtt")
    text = observation_from_json(profile, json.dumps(VIETLOA), device_id=7, observed_at=NOW, source="mqtt")
    assert parsed == text and parsed.reachable


def test_a_json_payload_given_to_an_snmp_profile_fails_instead_of_raising() -> None:
    observation = from_json("generic-mib2", VIETLOA)
    assert observation.error == "bad_payload: profile 'generic-mib2' maps SNMP objects, not JSON"


def test_a_heartbeat_body_maps_like_a_poll_and_an_oversized_one_is_too_large() -> None:
    profile = REGISTRY.get("saobac-board-heartbeat")
    body = json.dumps(SAOBAC).encode()
    observation = observation_from_heartbeat(profile, body, device_id=3, observed_at=SAOBAC_UPDATED)
    assert observation.reachable and observation.source == "heartbeat" and observation.latency_s is None
    assert observation.readings["serial"] == "SB55-000123"
    big = observation_from_heartbeat(profile, body + b" " * 70_000, device_id=3, observed_at=SAOBAC_UPDATED)
    assert not big.reachable and big.error is not None and big.error.startswith("too_large: ")
    small_cap = observation_from_heartbeat(profile, body, device_id=3, observed_at=SAOBAC_UPDATED, max_bytes=10)
    assert small_cap.error is not None and small_cap.error.startswith("too_large: ")


def test_a_failed_observation_says_kind_then_detail() -> None:
    observation = failed_observation(9, NOW, "snmp", FailureKind.TIMEOUT, "no reply", latency_s=2.0)
    assert (observation.reachable, observation.error, observation.latency_s) == (False, "timeout: no reply", 2.0)
    assert CollectError(FailureKind.REFUSED, "port 80").args == ("refused: port 80",)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "power": st.dictionaries(st.sampled_from(["source", "battery"]), JSON, max_size=2),
        "audio": JSON,
        "temp": JSON,
        "uptime": JSON,
        "status": st.dictionaries(st.sampled_from(["display", "content", "storage"]), JSON, max_size=3),
        "readings": st.dictionaries(st.sampled_from(["power", "signal_dbm", "humidity"]), JSON, max_size=3),
        "faults": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(document=JSON | SHAPED, profile=st.sampled_from(sorted(REGISTRY.names())))
def test_no_payload_ever_raises(document: Any, profile: str) -> None:
    observation = observation_from_json(REGISTRY.get(profile), document, device_id=1, observed_at=NOW, source="mqtt")
    assert observation.reachable or (observation.error or "").split(":")[0] in {"bad_json", "bad_payload"}


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(DAIVIET)), st.none() | st.integers() | st.binary(max_size=8)))
def test_no_snmp_values_ever_raise(values: dict[str, Any]) -> None:
    observation = from_snmp(values)
    assert observation.reachable or (observation.error or "").startswith("bad_payload: ")


def test_a_poll_target_never_shows_its_credentials() -> None:
    target = PollTarget(
        1, "06613-CL01", "snmp", "127.1.0.1", 16162, "daiviet-rx-snmp", "v3:monitor:s3cret-auth:s3cret-priv"
    )
    assert "s3cret" not in repr(target) and "s3cret" not in str(target)
    credentials = parse_snmp_credentials(target.credentials)
    assert credentials == SnmpV3User("monitor", "s3cret-auth", "s3cret-priv")
    assert "s3cret" not in repr(credentials)
    assert "hush" not in repr(parse_snmp_credentials("hush"))


def test_a_poll_target_is_made_from_a_saved_device() -> None:
    device = Device(
        id=12,
        code="06613-CL01",
        name="Cụm loa",
        kind="radio_cluster",
        commune_code="06613",
        profile="daiviet-rx-snmp",
        protocol="snmp",
        address="127.1.0.1",
        port=16161,
        credentials="public",
        interval_s=60,
    )
    target = PollTarget.from_device(device)
    assert (target.device_id, target.code, target.port, target.credentials) == (12, "06613-CL01", 16161, "public")
    device.id = None
    with pytest.raises(ValueError, match="no id"):
        PollTarget.from_device(device)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, SnmpCommunity("public")),
        ("", SnmpCommunity("public")),
        ("private", SnmpCommunity("private")),
        ("v1:old", SnmpCommunity("old", version=0)),
        ("v3:monitor:authpass123:privpass123", SnmpV3User("monitor", "authpass123", "privpass123")),
        ("v3:monitor:authpass123:priv:with:colons", SnmpV3User("monitor", "authpass123", "priv:with:colons")),
    ],
)
def test_snmp_credentials_are_read_from_the_inventory_string(text: str | None, expected: object) -> None:
    assert parse_snmp_credentials(text) == expected


@pytest.mark.parametrize(
    "text", ["v3:monitor", "v3:monitor:authpass123:", "v3::authpass123:privpass123", "v3:u:short:privpass123"]
)
def test_malformed_v3_credentials_are_an_auth_failure_that_does_not_echo_secrets(text: str) -> None:
    with pytest.raises(CollectError) as caught:
        parse_snmp_credentials(text)
    assert caught.value.kind is FailureKind.AUTH
    assert "authpass123" not in str(caught.value) and "privpass123" not in str(caught.value)


def test_counters_count_outcomes_by_kind_and_latencies_in_buckets() -> None:
    counters = OutcomeCounters()
    counters.record_observation(from_json("vietloa-ip200-http", VIETLOA))
    counters.record_observation(from_json("vietloa-ip200-http", b"oops"))
    counters.record_observation(failed_observation(1, NOW, "snmp", FailureKind.TIMEOUT, "x", latency_s=4.0))
    counters.event("snmp", "garbage_packet", 3)
    assert counters.outcomes() == {("http", "ok"): 1, ("http", "bad_json"): 1, ("snmp", "timeout"): 1}
    assert counters.event_count("snmp", "garbage_packet") == 3
    http = counters.latency("http")
    assert http.total == 2 and http.sum == pytest.approx(0.02)
    assert dict(http.cumulative())[0.01] == 2 and dict(counters.latency("snmp").cumulative())[2.5] == 0
    assert counters.latency("snmp").cumulative()[-1] == (float("inf"), 1)
