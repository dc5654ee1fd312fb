"""The device health state machine: confirmation, faults, heartbeats, maintenance, flapping, restarts.

Pure functions over plain data, so every rule is pinned here without a database or a clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.health import (
    DeviceHealth,
    DeviceState,
    FaultCode,
    HealthPolicy,
    Observation,
    Priority,
    Transition,
    collector_blind,
    fault_label,
    fault_priority,
    observe,
    set_maintenance,
    tick,
)

UP = DeviceState.UP
DOWN = DeviceState.DOWN
DEGRADED = DeviceState.DEGRADED
UNKNOWN = DeviceState.UNKNOWN
MAINTENANCE = DeviceState.MAINTENANCE

T0 = datetime(2025, 7, 1, 1, 0, tzinfo=UTC)  # 08:00 in Lạng Sơn
POLICY = HealthPolicy()
HEARTBEAT_S = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ok(seconds: float, *faults: str) -> Observation:
    return Observation(
        device_id=1,
        observed_at=at(seconds),
        source="http",
        reachable=True,
        latency_s=0.05,
        readings={"power": "mains"},
        faults=frozenset(faults),
    )


def failed(seconds: float, error: str = "timeout") -> Observation:
    return Observation(device_id=1, observed_at=at(seconds), source="http", reachable=False, error=error)


def feed(
    health: DeviceHealth, observations: Sequence[Observation], policy: HealthPolicy = POLICY
) -> tuple[DeviceHealth, list[Transition]]:
    """Apply observations in order; return the final health and every transition."""
    transitions: list[Transition] = []
    for observation in observations:
        health, changed = observe(health, observation, policy)
        transitions += changed
    return health, transitions


def up_device() -> DeviceHealth:
    health, _ = observe(DeviceHealth.initial(T0), ok(0))
    return health


def states(transitions: Sequence[Transition]) -> list[tuple[DeviceState, DeviceState]]:
    return [(t.old, t.new) for t in transitions]


# --- confirming before declaring ------------------------------------------------------------


def test_a_new_device_is_up_on_its_first_success() -> None:
    health, transitions = observe(DeviceHealth.initial(T0), ok(10))

    assert health.state is UP
    assert states(transitions) == [(UNKNOWN, UP)]
    assert transitions[0].at == at(10)
    assert health.since == at(10)
    assert health.last_seen == at(10)


def test_a_new_device_reporting_faults_is_degraded_on_its_first_success() -> None:
    health, transitions = observe(DeviceHealth.initial(), ok(10, "low_signal"))

    assert health.state is DEGRADED
    assert transitions[0].faults_added == {"low_signal"}
    assert transitions[0].reason == "first success: low_signal"


def test_it_goes_down_only_after_three_consecutive_failures() -> None:
    health, transitions = feed(up_device(), [failed(60), failed(120)])
    assert health.state is UP
    assert transitions == []

    health, transitions = observe(health, failed(180))

    assert health.state is DOWN
    assert states(transitions) == [(UP, DOWN)]
    assert transitions[0].reason == "3 consecutive failures: timeout"
    assert transitions[0].at == at(180)
    assert health.since == at(180)


def test_a_success_between_failures_resets_the_failure_count() -> None:
    health, transitions = feed(up_device(), [failed(60), failed(120), ok(180), failed(240), failed(300)])

    assert health.state is UP
    assert health.consecutive_failures == 2
    assert transitions == []


def test_a_device_never_heard_goes_down_after_three_failures() -> None:
    health, transitions = feed(DeviceHealth.initial(T0), [failed(60), failed(120)])
    assert health.state is UNKNOWN

    health, transitions = observe(health, failed(180, "bad_json"))

    assert states(transitions) == [(UNKNOWN, DOWN)]
    assert transitions[0].reason == "3 consecutive failures: bad_json"
    assert health.faults == {"offline"}


def test_it_comes_back_up_only_after_two_consecutive_successes() -> None:
    down, _ = feed(up_device(), [failed(60), failed(120), failed(180)])

    health, transitions = observe(down, ok(240))
    assert health.state is DOWN
    assert transitions == []

    health, transitions = observe(health, ok(300))
    assert states(transitions) == [(DOWN, UP)]
    assert transitions[0].reason == "2 consecutive successes"
    assert transitions[0].faults_removed == {"offline"}


def test_a_failure_while_coming_back_resets_the_success_count() -> None:
    down, _ = feed(up_device(), [failed(60), failed(120), failed(180)])

    health, transitions = feed(down, [ok(240), failed(300), ok(360)])

    assert health.state is DOWN
    assert health.consecutive_successes == 1
    assert transitions == []


def test_it_comes_back_degraded_when_the_confirming_success_reports_faults() -> None:
    down, _ = feed(up_device(), [failed(60), failed(120), failed(180)])

    _, transitions = feed(down, [ok(240), ok(300, "power_loss")])

    assert states(transitions) == [(DOWN, DEGRADED)]
    assert transitions[0].faults == {"power_loss"}
    assert transitions[0].faults_added == {"power_loss"}
    assert transitions[0].faults_removed == {"offline"}


def test_up_and_degraded_switch_immediately() -> None:
    health, transitions = feed(up_device(), [ok(60, "door_open"), ok(120)])

    assert states(transitions) == [(UP, DEGRADED), (DEGRADED, UP)]
    assert transitions[0].reason == "reachable with faults: door_open"
    assert transitions[1].reason == "faults cleared"
    assert transitions[1].faults_removed == {"door_open"}
    assert health.faults == frozenset()


def test_a_change_of_faults_while_degraded_is_a_transition_naming_what_changed() -> None:
    health, transitions = feed(up_device(), [ok(60, "amplifier_fault"), ok(120, "amplifier_fault", "overheat")])
    assert transitions[-1].old is DEGRADED and transitions[-1].new is DEGRADED
    assert transitions[-1].faults_added == {"overheat"}
    assert transitions[-1].faults_removed == frozenset()

    health, transitions = observe(health, ok(180, "overheat"))
    assert states(transitions) == [(DEGRADED, DEGRADED)]
    assert transitions[0].faults_added == frozenset()
    assert transitions[0].faults_removed == {"amplifier_fault"}
    assert transitions[0].faults == {"overheat"}


def test_the_same_faults_again_are_no_transition() -> None:
    health, _ = observe(up_device(), ok(60, "low_signal"))

    _, transitions = feed(health, [ok(120, "low_signal"), ok(180, "low_signal")])

    assert transitions == []


def test_a_down_device_keeps_its_last_faults_because_unseen_is_not_fixed() -> None:
    degraded, _ = observe(up_device(), ok(60, "amplifier_fault"))

    _, transitions = feed(degraded, [failed(120), failed(180), failed(240)])

    assert transitions[-1].faults == {"amplifier_fault", "offline"}
    assert transitions[-1].faults_added == {"offline"}
    assert transitions[-1].faults_removed == frozenset()


def test_a_failed_observation_says_nothing_about_faults() -> None:
    degraded, _ = observe(up_device(), ok(60, "low_signal"))

    health, transitions = observe(degraded, replace(failed(120), faults=frozenset({"overheat"})))

    assert health.faults == {"low_signal"}
    assert transitions == []


def test_the_last_error_is_that_of_the_last_observation() -> None:
    health, _ = observe(up_device(), failed(60, "bad_json"))
    assert health.last_error == "bad_json"
    assert health.last_seen == at(0)

    health, _ = observe(health, ok(120))
    assert health.last_error is None


def test_a_failure_without_a_reason_is_called_unreachable() -> None:
    health, _ = feed(up_device(), [failed(60, ""), failed(120, ""), failed(180, "")])

    assert health.last_error == "unreachable"


def test_an_observation_older_than_the_last_one_is_ignored() -> None:
    health, _ = observe(up_device(), ok(120))

    after, transitions = observe(health, ok(60, "overheat"))

    assert after is health
    assert transitions == []


def test_an_observation_at_the_same_time_as_the_last_one_is_applied() -> None:
    health, _ = observe(up_device(), ok(120))

    _, transitions = observe(health, replace(ok(120, "door_open"), source="trap"))

    assert states(transitions) == [(UP, DEGRADED)]


def test_a_policy_can_ask_for_more_confirmation() -> None:
    policy = HealthPolicy(failures_to_down=5, successes_to_up=3)
    health, transitions = feed(up_device(), [failed(60 * i) for i in range(1, 5)], policy)
    assert health.state is UP

    health, transitions = feed(health, [failed(300), ok(360), ok(420)], policy)
    assert health.state is DOWN

    health, transitions = observe(health, ok(480), policy)
    assert states(transitions) == [(DOWN, UP)]


# The exhaustive table: every state, the counters that matter, every kind of observation.
# (state, failures, successes, faults, observation, new state, transition?, failures, successes)
LOW = frozenset({"low_signal"})
OFF = frozenset({"offline"})
_OK = ok(1000)
_LOW = ok(1000, "low_signal")
_DOOR = ok(1000, "door_open")
_FAIL = failed(1000)
TABLE: list[tuple[DeviceState, int, int, frozenset[str], Observation, DeviceState, bool, int, int]] = [
    (UNKNOWN, 0, 0, frozenset(), _OK, UP, True, 0, 1),
    (UNKNOWN, 0, 0, frozenset(), _LOW, DEGRADED, True, 0, 1),
    (UNKNOWN, 0, 0, frozenset(), _FAIL, UNKNOWN, False, 1, 0),
    (UNKNOWN, 1, 0, frozenset(), _FAIL, UNKNOWN, False, 2, 0),
    (UNKNOWN, 2, 0, frozenset(), _FAIL, DOWN, True, 3, 0),
    (UNKNOWN, 2, 0, frozenset(), _OK, UP, True, 0, 1),
    (UP, 0, 5, frozenset(), _OK, UP, False, 0, 6),
    (UP, 0, 5, frozenset(), _LOW, DEGRADED, True, 0, 6),
    (UP, 0, 5, frozenset(), _FAIL, UP, False, 1, 0),
    (UP, 1, 0, frozenset(), _FAIL, UP, False, 2, 0),
    (UP, 2, 0, frozenset(), _FAIL, DOWN, True, 3, 0),
    (UP, 2, 0, frozenset(), _OK, UP, False, 0, 1),
    (UP, 2, 0, frozenset(), _LOW, DEGRADED, True, 0, 1),
    (DEGRADED, 0, 3, LOW, _OK, UP, True, 0, 4),
    (DEGRADED, 0, 3, LOW, _LOW, DEGRADED, False, 0, 4),
    (DEGRADED, 0, 3, LOW, _DOOR, DEGRADED, True, 0, 4),
    (DEGRADED, 0, 3, LOW, _FAIL, DEGRADED, False, 1, 0),
    (DEGRADED, 2, 0, LOW, _FAIL, DOWN, True, 3, 0),
    (DEGRADED, 2, 0, LOW, _LOW, DEGRADED, False, 0, 1),
    (DOWN, 5, 0, OFF, _OK, DOWN, False, 0, 1),
    (DOWN, 5, 0, OFF, _LOW, DOWN, False, 0, 1),
    (DOWN, 5, 0, OFF, _FAIL, DOWN, False, 6, 0),
    (DOWN, 0, 1, OFF, _OK, UP, True, 0, 2),
    (DOWN, 0, 1, OFF, _LOW, DEGRADED, True, 0, 2),
    (DOWN, 0, 1, OFF, _FAIL, DOWN, False, 1, 0),
]


@pytest.mark.parametrize(
    (
        "state",
        "failures",
        "successes",
        "faults",
        "observation",
        "new_state",
        "changes",
        "new_failures",
        "new_successes",
    ),
    TABLE,
)
def test_the_state_table(
    state: DeviceState,
    failures: int,
    successes: int,
    faults: frozenset[str],
    observation: Observation,
    new_state: DeviceState,
    changes: bool,
    new_failures: int,
    new_successes: int,
) -> None:
    health = DeviceHealth(
        state=state,
        true_state=state,
        since=T0,
        consecutive_failures=failures,
        consecutive_successes=successes,
        faults=faults,
        last_observation_at=T0,
    )

    after, transitions = observe(health, observation)

    assert (after.state, after.true_state) == (new_state, new_state)
    assert len(transitions) == (1 if changes else 0)
    assert (after.consecutive_failures, after.consecutive_successes) == (new_failures, new_successes)
    if transitions:
        assert (transitions[0].old, transitions[0].new) == (state, new_state)
        assert transitions[0].faults == after.faults


# --- heartbeats of push devices -------------------------------------------------------------


def heard_at(seconds: float) -> DeviceHealth:
    health, _ = observe(DeviceHealth.initial(T0), replace(ok(seconds), source="mqtt"))
    return health


def test_silence_within_interval_plus_grace_is_not_a_failure() -> None:
    health, transitions = tick(heard_at(0), at(HEARTBEAT_S + 30), HEARTBEAT_S)

    assert health.consecutive_failures == 0
    assert transitions == []


def test_each_interval_of_silence_beyond_the_grace_is_one_missed_heartbeat() -> None:
    health, _ = tick(heard_at(0), at(HEARTBEAT_S + 31), HEARTBEAT_S)
    assert health.consecutive_failures == 1
    assert health.last_error == "no_heartbeat"

    health, _ = tick(health, at(2 * HEARTBEAT_S + 31), HEARTBEAT_S)
    assert health.consecutive_failures == 2
    assert health.state is UP


def test_a_silent_push_device_goes_down_after_three_intervals_plus_grace() -> None:
    health, transitions = tick(heard_at(0), at(3 * HEARTBEAT_S + 31), HEARTBEAT_S)

    assert health.state is DOWN
    assert states(transitions) == [(UP, DOWN)]
    assert transitions[0].reason == "3 consecutive failures: no_heartbeat"
    # Dated when the third heartbeat was certainly missed, not when someone looked.
    assert transitions[0].at == at(3 * HEARTBEAT_S + 30)


def test_ticking_twice_at_the_same_time_counts_nothing_twice() -> None:
    once, _ = tick(heard_at(0), at(2 * HEARTBEAT_S + 45), HEARTBEAT_S)

    twice, transitions = tick(once, at(2 * HEARTBEAT_S + 45), HEARTBEAT_S)

    assert twice == once
    assert twice.consecutive_failures == 2
    assert transitions == []


def test_ticking_often_counts_the_same_as_ticking_once() -> None:
    health = heard_at(0)
    for second in range(0, 10 * int(HEARTBEAT_S), 7):
        health, _ = tick(health, at(second), HEARTBEAT_S)

    direct, _ = tick(heard_at(0), at(second), HEARTBEAT_S)

    assert health == direct


def test_a_heartbeat_after_silence_starts_a_fresh_count() -> None:
    health, _ = tick(heard_at(0), at(2 * HEARTBEAT_S + 31), HEARTBEAT_S)

    health, _ = observe(health, replace(ok(2 * HEARTBEAT_S + 40), source="mqtt"))
    health, transitions = tick(health, at(3 * HEARTBEAT_S + 40), HEARTBEAT_S)

    assert health.consecutive_failures == 0
    assert health.state is UP
    assert transitions == []


def test_a_month_of_silence_is_counted_without_a_month_of_work() -> None:
    month_s = 30 * 24 * 3600

    health, transitions = tick(heard_at(0), at(month_s + 31), HEARTBEAT_S)

    assert health.state is DOWN
    assert len(transitions) == 1
    assert health.consecutive_failures == month_s // int(HEARTBEAT_S)


def test_a_device_never_heard_is_watched_from_its_first_tick() -> None:
    health, transitions = tick(DeviceHealth.initial(), at(0), HEARTBEAT_S)
    assert health.since == at(0)
    assert transitions == []

    health, transitions = tick(health, at(3 * HEARTBEAT_S + 31), HEARTBEAT_S)

    assert states(transitions) == [(UNKNOWN, DOWN)]


def test_a_device_never_heard_keeps_counting_after_it_went_down() -> None:
    health = DeviceHealth.initial(T0)
    for minute in range(1, 11):
        health, _ = tick(health, at(60 * minute + 31), HEARTBEAT_S)

    assert health.consecutive_failures == 10


def test_a_late_heartbeat_dated_before_the_counted_silence_does_not_recount_it() -> None:
    health, _ = tick(heard_at(0), at(2 * HEARTBEAT_S + 31), HEARTBEAT_S)
    health, _ = observe(health, replace(ok(100), source="mqtt"))

    health, _ = tick(health, at(2 * HEARTBEAT_S + 40), HEARTBEAT_S)

    assert health.consecutive_failures == 0


def test_tick_refuses_a_nonsense_interval_or_a_naive_time() -> None:
    with pytest.raises(ValueError, match="positive"):
        tick(heard_at(0), at(100), 0)
    with pytest.raises(ValueError, match="timezone"):
        tick(heard_at(0), datetime(2025, 7, 1, 8, 0), HEARTBEAT_S)  # noqa: DTZ001


# --- maintenance ----------------------------------------------------------------------------


def test_maintenance_is_shown_and_silences_transitions_while_it_lasts() -> None:
    health, transitions = set_maintenance(up_device(), True, at(60))
    assert states(transitions) == [(UP, MAINTENANCE)]
    assert health.state is MAINTENANCE
    assert health.since == at(60)

    health, transitions = feed(health, [failed(120), failed(180), failed(240)])

    assert transitions == []
    assert health.state is MAINTENANCE
    assert health.true_state is DOWN


def test_maintenance_ends_on_the_true_state_so_a_down_device_is_never_hidden() -> None:
    health, _ = set_maintenance(up_device(), True, at(60))
    health, _ = feed(health, [failed(120), failed(180), failed(240)])

    health, transitions = set_maintenance(health, False, at(300))

    assert states(transitions) == [(MAINTENANCE, DOWN)]
    assert transitions[0].reason == "maintenance ended: down"
    assert transitions[0].faults_added == {"offline"}
    assert health.state is DOWN


def test_failures_before_maintenance_keep_counting_through_it() -> None:
    health, _ = feed(up_device(), [failed(60), failed(120)])
    health, _ = set_maintenance(health, True, at(130))
    health, _ = observe(health, failed(180))

    assert health.true_state is DOWN


def test_maintenance_end_reports_the_faults_fixed_meanwhile() -> None:
    degraded, _ = observe(up_device(), ok(60, "speaker_line_fault"))
    health, start = set_maintenance(degraded, True, at(120))
    assert start[0].faults == {"speaker_line_fault"}

    health, _ = observe(health, ok(180, "door_open"))
    health, transitions = set_maintenance(health, False, at(240))

    assert states(transitions) == [(MAINTENANCE, DEGRADED)]
    assert transitions[0].faults_removed == {"speaker_line_fault"}
    assert transitions[0].faults_added == {"door_open"}


def test_asking_for_the_maintenance_already_set_changes_nothing() -> None:
    health = up_device()
    assert set_maintenance(health, False, at(60)) == (health, [])

    inside, _ = set_maintenance(health, True, at(60))
    assert set_maintenance(inside, True, at(120)) == (inside, [])


# --- flapping -------------------------------------------------------------------------------


def flap(health: DeviceHealth, start_s: float, changes: int, every_s: float) -> tuple[DeviceHealth, list[Transition]]:
    """Alternate up and degraded: one state change per observation."""
    observations = [ok(start_s + i * every_s, *(["low_signal"] if i % 2 == 0 else [])) for i in range(changes)]
    return feed(health, observations)


def test_flapping_is_set_by_the_transition_that_reaches_the_threshold() -> None:
    # up_device() made one change (unknown -> up); four more reach the threshold of five.
    health, transitions = flap(up_device(), 60, 4, 60)

    assert [t.flapping for t in transitions] == [False, False, False, True]
    assert health.flapping


def test_changes_older_than_the_flap_window_do_not_count() -> None:
    health, transitions = flap(up_device(), 1000, 4, 1000)

    assert not any(t.flapping for t in transitions)
    assert len(health.recent_changes) <= 4


def test_flapping_clears_after_a_quiet_period_without_a_transition() -> None:
    flapping, _ = flap(up_device(), 60, 4, 60)
    quiet_from = flapping.last_change_at
    assert quiet_from is not None

    still, _ = observe(flapping, ok((quiet_from - T0).total_seconds() + 7199))
    assert still.flapping

    cleared, transitions = observe(still, ok((quiet_from - T0).total_seconds() + 7200))
    assert not cleared.flapping
    assert transitions == []
    assert cleared.recent_changes == ()


def test_maintenance_does_not_count_as_flapping() -> None:
    health = up_device()
    for i in range(10):
        health, _ = set_maintenance(health, i % 2 == 0, at(60 + i))

    assert not health.flapping
    assert len(health.recent_changes) == 1


# --- persistence and restarts ---------------------------------------------------------------


def test_to_dict_is_json_and_reads_back_the_same() -> None:
    health, _ = flap(up_device(), 60, 3, 60)
    health, _ = set_maintenance(health, True, at(400))
    health, _ = tick(health, at(600), HEARTBEAT_S)

    stored = json.loads(json.dumps(health.to_dict()))

    assert DeviceHealth.from_dict(stored) == health
    assert stored["state"] == "maintenance"
    assert stored["since"] == "2025-07-01T01:06:40+00:00"


def test_from_dict_gives_defaults_for_keys_an_older_row_lacks() -> None:
    health = DeviceHealth.from_dict({"state": "down", "consecutive_failures": 4})

    assert health.true_state is DOWN
    assert health.faults == frozenset()
    assert health.since is None


def test_from_dict_refuses_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone"):
        DeviceHealth.from_dict({"state": "up", "since": "2025-07-01T08:00:00"})


def test_after_a_restart_an_observation_agreeing_with_the_state_is_no_transition() -> None:
    down, _ = feed(up_device(), [failed(60), failed(120), failed(180)])
    reloaded = DeviceHealth.from_dict(json.loads(json.dumps(down.to_dict())))

    _, transitions = observe(reloaded, failed(240))
    assert transitions == []
    _, transitions = observe(reloaded, ok(240))
    assert transitions == []


# --- refusing nonsense ----------------------------------------------------------------------


def test_observations_refuse_naive_times_and_unknown_sources() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Observation(1, datetime(2025, 7, 1, 8, 0), "http", True)  # noqa: DTZ001
    with pytest.raises(ValueError, match="source"):
        Observation(1, T0, "carrier_pigeon", True)


def test_observation_readings_cannot_be_changed_behind_the_machine() -> None:
    readings: dict[str, Any] = {"battery_pct": 80}
    observation = Observation(1, T0, "snmp", True, readings=readings)
    readings["battery_pct"] = 5

    assert observation.readings["battery_pct"] == 80
    with pytest.raises(TypeError):
        observation.readings["battery_pct"] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    "changes",
    [
        {"failures_to_down": 0},
        {"successes_to_up": 0},
        {"flap_threshold": 1},
        {"flap_window_s": 0},
        {"heartbeat_grace_s": -1},
        {"flap_clear_s": 0},
    ],
)
def test_a_policy_refuses_nonsense(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HealthPolicy(**changes)


def test_the_flapping_flag_clears_by_default_after_twice_the_window() -> None:
    assert HealthPolicy(flap_window_s=600).flap_clear_after_s == 1200
    assert HealthPolicy(flap_window_s=600, flap_clear_s=60).flap_clear_after_s == 60


# --- the collector's own blindness ----------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "blind"),
    [
        ({"http": (30, 30), "snmp": (12, 12), "mqtt": (0, 0)}, True),
        ({"http": (30, 30), "snmp": (12, 11)}, False),
        ({"http": (20, 20)}, True),
        ({"http": (19, 19)}, False),
        ({"http": (10, 10), "snmp": (10, 10)}, True),
        ({"http": (500, 499)}, False),
        ({}, False),
    ],
)
def test_the_collector_is_blind_only_when_everything_failed_at_once(
    results: dict[str, tuple[int, int]], blind: bool
) -> None:
    assert collector_blind(results) is blind


def test_collector_blind_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="http"):
        collector_blind({"http": (3, 4)})


# --- the words ------------------------------------------------------------------------------


def test_every_state_fault_and_priority_has_a_vietnamese_and_an_english_label() -> None:
    for member in [*DeviceState, *FaultCode, *Priority]:
        assert member.label_vi and member.label_en
        assert member.label_vi != member.value
    assert DeviceState.DOWN.label() == "Mất kết nối"
    assert DeviceState.DOWN.label("en") == "Down"


@pytest.mark.parametrize(
    ("code", "priority"),
    [
        ("offline", Priority.P2),
        ("power_loss", Priority.P2),
        ("amplifier_fault", Priority.P2),
        ("speaker_line_fault", Priority.P2),
        ("low_signal", Priority.P3),
        ("screen_off", Priority.P2),
        ("content_stale", Priority.P3),
        ("overheat", Priority.P2),
        ("door_open", Priority.P3),
        ("storage_full", Priority.P4),
    ],
)
def test_each_fault_has_its_default_priority(code: str, priority: Priority) -> None:
    assert FaultCode(code).default_priority is priority
    assert fault_priority(code) is priority


def test_a_fault_a_profile_added_gets_a_medium_priority_and_shows_its_code() -> None:
    assert fault_priority("fm_transmitter_fault") is Priority.P3
    assert fault_label("fm_transmitter_fault") == "fm_transmitter_fault"
    assert fault_label("overheat") == "Quá nhiệt"


# --- properties -----------------------------------------------------------------------------

FAULT_POOL = ["low_signal", "door_open", "overheat"]
Event = tuple[Any, ...]

gaps = st.one_of(st.integers(0, 400), st.just(9000))
observation_events = st.tuples(
    st.just("obs"), gaps, st.booleans(), st.frozensets(st.sampled_from(FAULT_POOL), max_size=2)
)
tick_events = st.tuples(st.just("tick"), gaps)
maintenance_events = st.tuples(st.just("maint"), gaps, st.booleans())
policies = st.builds(
    HealthPolicy,
    failures_to_down=st.integers(1, 4),
    successes_to_up=st.integers(1, 3),
    flap_window_s=st.sampled_from([600.0, 3600.0]),
    flap_threshold=st.integers(2, 6),
)


def apply(
    health: DeviceHealth, event: Event, now: datetime, policy: HealthPolicy
) -> tuple[DeviceHealth, list[Transition]]:
    if event[0] == "obs":
        _, _, reachable, faults = event
        observation = Observation(1, now, "mqtt", reachable, faults=faults, error=None if reachable else "timeout")
        return observe(health, observation, policy)
    if event[0] == "tick":
        return tick(health, now, HEARTBEAT_S, policy)
    return set_maintenance(health, event[2], now, policy)


Step = tuple[DeviceHealth, Event, datetime, DeviceHealth, list[Transition]]


def run(events: Sequence[Event], policy: HealthPolicy) -> list[Step]:
    """Every step of a run: health before, event, time, health after, transitions."""
    health, now, steps = DeviceHealth.initial(T0), T0, []
    for event in events:
        now += timedelta(seconds=event[1])
        after, transitions = apply(health, event, now, policy)
        steps.append((health, event, now, after, transitions))
        health = after
    return steps


SETTINGS = settings(max_examples=200, deadline=None)
any_events = st.lists(st.one_of(observation_events, tick_events, maintenance_events), max_size=40)
events_without_ticks = st.lists(st.one_of(observation_events, maintenance_events), max_size=40)


@SETTINGS
@given(any_events, policies)
def test_transitions_chain_move_forward_and_always_change_something(events: list[Event], policy: HealthPolicy) -> None:
    steps = run(events, policy)
    shown = UNKNOWN
    last_at = T0
    for _, _, _, after, transitions in steps:
        for t in transitions:
            assert t.old is shown
            assert t.old is not t.new or t.faults_added or t.faults_removed
            assert t.at >= last_at
            shown, last_at = t.new, t.at
        assert after.state is shown
        assert after.state is (MAINTENANCE if after.in_maintenance else after.true_state)


@SETTINGS
@given(events_without_ticks, policies)
def test_confirmation_is_never_skipped(events: list[Event], policy: HealthPolicy) -> None:
    failures = successes = 0
    for _, event, _, _, transitions in run(events, policy):
        if event[0] == "obs":
            failures, successes = (0, successes + 1) if event[2] else (failures + 1, 0)
        for t in transitions:
            if t.new is DOWN and t.old is not MAINTENANCE:
                assert failures >= policy.failures_to_down
            if t.old is DOWN and t.new is not MAINTENANCE:
                assert successes >= policy.successes_to_up


@SETTINGS
@given(events_without_ticks, policies)
def test_flapping_is_set_exactly_when_the_threshold_is_reached(events: list[Event], policy: HealthPolicy) -> None:
    changes: list[datetime] = []
    window = timedelta(seconds=policy.flap_window_s)
    for before, _, _, after, transitions in run(events, policy):
        for t in transitions:
            if t.old is not t.new and MAINTENANCE not in (t.old, t.new):
                changes.append(t.at)
                in_window = sum(1 for c in changes if c > t.at - window)
                if in_window >= policy.flap_threshold:
                    assert t.flapping
        if after.flapping and not before.flapping:
            assert transitions and transitions[-1].flapping
            assert sum(1 for c in changes if c > transitions[-1].at - window) >= policy.flap_threshold


@SETTINGS
@given(any_events, policies)
def test_maintenance_always_exits_to_the_true_state(events: list[Event], policy: HealthPolicy) -> None:
    for before, _, _, after, transitions in run(events, policy):
        for t in transitions:
            if t.old is MAINTENANCE:
                assert t.new is before.true_state is after.state


@SETTINGS
@given(any_events, policies)
def test_maintenance_never_changes_what_the_machine_knows(events: list[Event], policy: HealthPolicy) -> None:
    # Ticks count from `since` for a device never heard, which maintenance moves: compare once heard.
    events = [("obs", 0, True, frozenset()), *events]
    with_maintenance = [after for _, event, _, after, _ in run(events, policy) if event[0] != "maint"]
    without_events = [event if event[0] != "maint" else ("obs_gap", event[1]) for event in events]
    plain = run_without_maintenance(without_events, policy)

    for a, b in zip(with_maintenance, plain, strict=True):
        assert (a.true_state, a.faults, a.consecutive_failures, a.consecutive_successes) == (
            b.true_state,
            b.faults,
            b.consecutive_failures,
            b.consecutive_successes,
        )


def run_without_maintenance(events: Sequence[Event], policy: HealthPolicy) -> list[DeviceHealth]:
    """Like `run`, but a maintenance event only lets time pass."""
    health, now, seen = DeviceHealth.initial(T0), T0, []
    for event in events:
        now += timedelta(seconds=event[1])
        if event[0] == "obs_gap":
            continue
        health, _ = apply(health, event, now, policy)
        seen.append(health)
    return seen


@SETTINGS
@given(any_events, policies)
def test_a_restart_changes_nothing(events: list[Event], policy: HealthPolicy) -> None:
    for before, event, now, after, transitions in run(events, policy):
        reloaded = DeviceHealth.from_dict(json.loads(json.dumps(before.to_dict())))
        assert reloaded == before
        assert apply(reloaded, event, now, policy) == (after, transitions)


@SETTINGS
@given(any_events, policies)
def test_an_observation_agreeing_with_the_state_is_no_transition(events: list[Event], policy: HealthPolicy) -> None:
    steps = run(events, policy)
    if not steps:
        return
    health = DeviceHealth.from_dict(steps[-1][3].to_dict())
    later = steps[-1][2] + timedelta(seconds=1)
    agreeing = {
        UP: ("obs", 0, True, frozenset()),
        DEGRADED: ("obs", 0, True, health.faults),
        DOWN: ("obs", 0, False, frozenset()),
    }.get(health.state)
    if agreeing is not None:
        assert apply(health, agreeing, later, policy)[1] == []


@SETTINGS
@given(any_events, policies, st.integers(1, 10_000), st.booleans(), st.frozensets(st.sampled_from(FAULT_POOL)))
def test_an_observation_from_the_past_changes_nothing(
    events: list[Event], policy: HealthPolicy, back_s: int, reachable: bool, faults: frozenset[str]
) -> None:
    steps = run([("obs", 0, True, frozenset()), *events], policy)
    health = steps[-1][3]
    assert health.last_observation_at is not None
    past = Observation(1, health.last_observation_at - timedelta(seconds=back_s), "http", reachable, faults=faults)

    assert observe(health, past, policy) == (health, [])


@SETTINGS
@given(any_events, policies, st.integers(0, 5000), st.integers(0, 5000))
def test_ticking_is_idempotent_and_additive(
    events: list[Event], policy: HealthPolicy, first_s: int, then_s: int
) -> None:
    steps = run(events, policy)
    health, now = (steps[-1][3], steps[-1][2]) if steps else (DeviceHealth.initial(T0), T0)
    middle, end = now + timedelta(seconds=first_s), now + timedelta(seconds=first_s + then_s)

    in_two, _ = tick(tick(health, middle, HEARTBEAT_S, policy)[0], end, HEARTBEAT_S, policy)
    in_one, _ = tick(health, end, HEARTBEAT_S, policy)
    again, transitions = tick(in_one, end, HEARTBEAT_S, policy)

    assert again == in_one
    assert transitions == []
    assert (in_two.true_state, in_two.consecutive_failures, in_two.silence_counted_until) == (
        in_one.true_state,
        in_one.consecutive_failures,
        in_one.silence_counted_until,
    )


# Hypothesis wants naive bounds and adds the time zone itself.
datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001
    max_value=datetime(2040, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
healths = st.builds(
    DeviceHealth,
    state=st.sampled_from(DeviceState),
    true_state=st.sampled_from(DeviceState),
    since=st.none() | datetimes,
    consecutive_failures=st.integers(0, 10**6),
    consecutive_successes=st.integers(0, 10**6),
    faults=st.frozensets(st.sampled_from(list(FaultCode)).map(str) | st.text(min_size=1, max_size=20)),
    last_seen=st.none() | datetimes,
    last_observation_at=st.none() | datetimes,
    recent_changes=st.lists(datetimes, max_size=6).map(tuple),
    last_change_at=st.none() | datetimes,
    flapping=st.booleans(),
    in_maintenance=st.booleans(),
    faults_before_maintenance=st.frozensets(st.sampled_from(FAULT_POOL)),
    last_error=st.none() | st.text(max_size=30),
    silence_counted_until=st.none() | datetimes,
)


@SETTINGS
@given(healths)
def test_to_dict_and_from_dict_round_trip_through_json(health: DeviceHealth) -> None:
    assert DeviceHealth.from_dict(json.loads(json.dumps(health.to_dict()))) == health
