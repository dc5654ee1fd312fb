"""Device profiles: the built-ins load and map the contract; bad profiles are refused with file, line and reason."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.collectors.errors import ProfileError, UnknownProfile
from monitor.collectors.profiles import BUILTIN_DIR, load_profile_dir, load_profiles, parse_profile

BUILTIN_NAMES = {
    "generic-mib2",
    "daiviet-rx-snmp",
    "vietloa-ip200-http",
    "vietloa-ip200-mqtt",
    "saobac-board-http",
    "saobac-board-heartbeat",
    "tts-heartbeat",
}
MIB2 = ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.8.1")


def refused(text: str, file: str = "/etc/monitor/profiles/bad.yaml") -> list[tuple[int | None, str, str]]:
    """The (line, where, reason) of every problem parsing `text` finds; fails if it is accepted."""
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, file)
    assert all(p.file == file for p in caught.value.problems)
    assert file in str(caught.value)
    return [(p.line, p.where, p.reason) for p in caught.value.problems]


def test_every_builtin_profile_loads_with_the_names_the_demo_fleet_uses() -> None:
    registry = load_profiles()
    assert set(registry.names()) == BUILTIN_NAMES
    for profile in registry:
        assert Path(profile.file).parent == BUILTIN_DIR
        assert profile.line >= 1


def test_profiles_apply_to_their_protocols_and_snmp_ones_list_their_oids_in_order() -> None:
    registry = load_profiles()
    assert registry.get("generic-mib2").snmp_oids() == MIB2
    daiviet = registry.get("daiviet-rx-snmp").snmp_oids()
    assert daiviet[:3] == MIB2
    assert daiviet[3:] == tuple(f"1.3.6.1.4.1.99999.1.{n}.0" for n in range(1, 10))
    assert registry.get("vietloa-ip200-http").snmp_oids() == ()
    assert registry.get("vietloa-ip200-http").http_path == "/status"
    assert registry.get("vietloa-ip200-mqtt").applies_to("mqtt")
    assert not registry.get("vietloa-ip200-mqtt").applies_to("http")
    assert registry.get("tts-heartbeat").format == "observation"
    assert registry.get("saobac-board-heartbeat").applies_to("heartbeat")


def test_an_unknown_profile_is_a_clear_error_listing_the_known_ones() -> None:
    registry = load_profiles()
    with pytest.raises(UnknownProfile) as caught:
        registry.get("vietloa-ip300")
    message = str(caught.value)
    assert "vietloa-ip300" in message and "vietloa-ip200-http" in message
    assert "vietloa-ip300" not in registry


def test_an_unknown_key_is_refused_at_its_line() -> None:
    problems = refused("name: x\nprotocols: [http]\ncolour: red\nreadings:\n  uptime_s: {field: uptime, bogus: 1}\n")
    assert any(line == 3 and where == "colour" and "unknown key 'colour'" in why for line, where, why in problems)
    assert any(
        line == 5 and where == "readings.uptime_s.bogus" and "unknown key 'bogus'" in why
        for line, where, why in problems
    )


def test_bad_oids_are_refused_with_the_reason() -> None:
    problems = refused(
        "name: x\nprotocols: [snmp]\nreadings:\n"
        "  uptime_s: {oid: 1.3.6.1.2.1.1.3.0}\n"
        '  firmware: {oid: "1.3.x.5"}\n'
        "  description: {oid: 1.3}\n"
        '  volume_pct: {oid: "1.45.6"}\n'
    )
    by_line = {line: why for line, _, why in problems}
    assert "not a numeric OID" in by_line[5]
    assert "quote it" in by_line[6]  # YAML reads 1.3 as a float
    assert "second arc is below 40" in by_line[7]
    assert 4 not in by_line


def test_an_unknown_reading_name_is_refused_listing_the_known_ones() -> None:
    problems = refused("name: x\nprotocols: [http]\nreadings:\n  uptime_s: {field: uptime}\n  humidity: {field: h}\n")
    assert len(problems) == 1
    line, where, why = problems[0]
    assert (line, where) == (5, "readings.humidity")
    assert "unknown reading 'humidity'" in why and "temperature_c" in why


def test_bad_rule_operators_and_fault_codes_are_refused() -> None:
    problems = refused(
        "name: x\nprotocols: [http]\nreadings:\n  temperature_c: {field: temp}\nfaults:\n"
        "  - {fault: overheat, reading: temperature_c, greater: 70}\n"
        "  - {fault: Overheat!, reading: temperature_c, above: 70}\n"
    )
    assert any(line == 6 and "unknown rule operator or key 'greater'" in why for line, _, why in problems)
    assert any(line == 7 and "a fault code is lower-case" in why for line, _, why in problems)


def test_rules_need_exactly_one_operator_and_something_they_can_match() -> None:
    problems = refused(
        "name: x\nprotocols: [http]\nreadings:\n  temperature_c: {field: temp}\n  power: {field: power}\nfaults:\n"
        "  - {fault: overheat, reading: temperature_c, above: 70, below: 10}\n"
        "  - {fault: overheat, reading: temperature_c}\n"
        "  - {fault: power_loss, reading: power, equals: batery}\n"
        "  - {fault: power_loss, reading: power, above: 3}\n"
        "  - {fault: low_signal, reading: signal_dbm, below: -105}\n"
        "  - {fault: door_open, field: door, oid: 1.3.6.1.4.1.1.1.0, equals: open}\n"
    )
    by_line = {line: why for line, _, why in problems}
    assert "exactly one operator" in by_line[7] and "above, below" in by_line[7]
    assert "exactly one operator" in by_line[8] and "none" in by_line[8]
    assert "can never match reading power" in by_line[9]
    assert "above compares numbers" in by_line[10]
    assert "does not map reading 'signal_dbm'" in by_line[11]
    assert "exactly one of reading, field or oid" in by_line[12]


def test_snmp_profiles_map_oids_and_json_profiles_map_fields() -> None:
    problems = refused(
        "name: x\nprotocols: [snmp, http]\nreadings:\n  uptime_s: {field: uptime}\n"
        "  power: {oid: 1.3.6.1.4.1.99999.1.3.0, map: {1: mains, 2: batery}}\n"
    )
    by_line = {line: why for line, _, why in problems}
    assert "cannot be shared" in by_line[2]
    assert "use oid, not field" in by_line[4]
    assert "map value for power" in by_line[5] and "batery" in by_line[5]


def test_a_yaml_syntax_error_names_its_line() -> None:
    problems = refused("name: x\nprotocols: [http\nreadings:\n  uptime_s: {field: uptime}\n")
    assert len(problems) == 1
    line, _, why = problems[0]
    assert line == 3 and why.startswith("YAML syntax error") and "opened on line 2" in why


def test_a_key_written_twice_is_refused_not_silently_replaced() -> None:
    problems = refused("name: x\nprotocols: [http]\nreadings:\n  uptime_s: {field: uptime}\n  uptime_s: {field: up}\n")
    assert problems == [(5, "readings.uptime_s", "duplicate key 'uptime_s' (first on line 4)")]


def test_files_that_are_not_profiles_are_refused() -> None:
    assert refused("- a\n- b\n") == [(1, "", "a profile is a mapping, got a list")]
    assert refused("") == [(None, "", "a profile is a mapping, got an empty file")]
    problems = refused("protocols: []\n")
    assert any("missing required key 'name'" in why for _, _, why in problems)


def test_unquoted_on_and_off_stay_strings_as_in_yaml_1_2() -> None:
    # YAML 1.1 would read `off` as false and the rule would never match a screen that says "off".
    profile = parse_profile(
        "name: board\nprotocols: [http]\nreadings:\n  display: {field: d}\nfaults:\n"
        "  - {fault: screen_off, reading: display, equals: off}\n",
        "board.yaml",
    )
    assert profile.faults[0].operand == "off"


def test_duplicate_profile_names_in_one_folder_are_refused(tmp_path: Path) -> None:
    text = "name: same\nprotocols: [http]\nreadings:\n  uptime_s: {field: uptime}\n"
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yml").write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile_dir(tmp_path)
    [problem] = caught.value.problems
    assert problem.file == str(tmp_path / "b.yml") and problem.line == 1
    assert "duplicate profile name 'same'" in problem.reason and str(tmp_path / "a.yaml") in problem.reason


def test_problems_of_several_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("name: one\nprotocols: [http]\nreadings:\n  humidity: {field: h}\n")
    (tmp_path / "two.yaml").write_text("name: two\nprotocols: [snmp]\nreadings:\n  uptime_s: {oid: x}\n")
    (tmp_path / "three.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    files = {Path(p.file).name for p in caught.value.problems}
    assert files == {"one.yaml", "two.yaml", "three.yaml"}
    assert any("not UTF-8" in p.reason for p in caught.value.problems)


def test_an_operator_profile_replaces_a_builtin_of_the_same_name_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "vietloa.yaml").write_text(
        "name: vietloa-ip200-http\nvendor: VietLoa\nprotocols: [http]\nhttp: {path: /api/status}\n"
        "readings:\n  uptime_s: {field: uptime}\n"
    )
    (tmp_path / "own.yaml").write_text(
        "name: province-board\nprotocols: [heartbeat]\nreadings:\n  serial: {field: sn}\n"
    )
    with caplog.at_level(logging.WARNING, logger="monitor.collectors.profiles"):
        registry = load_profiles(tmp_path)
    replaced = registry.get("vietloa-ip200-http")
    assert replaced.http_path == "/api/status" and Path(replaced.file).parent == tmp_path
    assert "province-board" in registry and len(registry) == len(BUILTIN_NAMES) + 1
    assert any(
        "replaces the built-in" in r.getMessage() and "vietloa-ip200-http" in r.getMessage() for r in caplog.records
    )


def test_a_missing_operator_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "nowhere")
