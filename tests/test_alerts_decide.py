"""The dispatcher's decisions, without a database: health to problems, muting, grouping, parents, release."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.alerts import decide
from monitor.alerts.choices import SuppressionReason
from monitor.alerts.decide import OFFLINE, Counts, Due, Group, KindCounts
from monitor.alerts.maintenance import Subject
from monitor.alerts.rules import AlertRules
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope

RULES = AlertRules()  # commune: 2 devices and half of them; district: 30 devices and a fifth of them
AMP = "amplifier_fault"


def device(code: str, kind: str = OFFLINE, commune: str = "06184", district: str = "183", device_id: int = 1) -> Due:
    return Due("device", code, kind, device_id, commune, district)


def counts(commune_total: int, commune_having: int, district_total: int = 1000, district_having: int = 0) -> KindCounts:
    return KindCounts(
        Counts({"06184": commune_total}, {"06184": [f"C{i:02d}" for i in range(commune_having)]}),
        Counts({"183": district_total}, {"183": [f"D{i:03d}" for i in range(district_having)]}),
    )


# --- device problems follow device health -------------------------------------------------------

STATUSES = ["pending", "active", "suppressed"]


@pytest.mark.parametrize(
    ("status", "has_fault", "flapping", "known"), list(product(STATUSES, [True, False], [True, False], [True, False]))
)
def test_an_offline_problem_is_kept_while_its_fault_is_there_or_it_flaps_while_active(
    status: str, has_fault: bool, flapping: bool, known: bool
) -> None:
    faults = (frozenset({OFFLINE}) if has_fault else frozenset()) if known else None
    plan = decide.sync_device({OFFLINE: status}, faults, flapping)
    kept = known and (has_fault or (flapping and status == "active"))
    assert (OFFLINE in plan.keep) is kept and (OFFLINE in plan.resolve) is not kept
    if kept:
        assert plan.keep[OFFLINE] is flapping or not has_fault
    assert plan.open == ()


def test_a_flapping_device_keeps_its_active_offline_problem_marked_flapping() -> None:
    assert decide.sync_device({OFFLINE: "active"}, frozenset(), flapping=True).keep == {OFFLINE: True}


def test_only_offline_is_held_by_flapping_other_faults_resolve_when_cleared() -> None:
    plan = decide.sync_device({AMP: "active"}, frozenset(), flapping=True)
    assert plan.resolve == (AMP,) and not plan.keep


def test_each_new_fault_opens_one_problem_in_the_order_of_the_codes() -> None:
    plan = decide.sync_device({OFFLINE: "active"}, frozenset({OFFLINE, "power_loss", AMP}))
    assert plan.open == (AMP, "power_loss") and plan.keep == {OFFLINE: False} and plan.resolve == ()


def test_a_device_gone_from_the_inventory_resolves_everything_and_opens_nothing() -> None:
    plan = decide.sync_device({OFFLINE: "active", AMP: "pending"}, None, flapping=True)
    assert set(plan.resolve) == {OFFLINE, AMP} and not plan.keep and plan.open == ()


@given(
    st.dictionaries(st.sampled_from([OFFLINE, AMP, "power_loss"]), st.sampled_from(STATUSES)),
    st.frozensets(st.sampled_from([OFFLINE, AMP, "power_loss", "overheat"])),
    st.booleans(),
)
def test_every_problem_is_kept_or_resolved_and_every_fault_has_a_problem(
    statuses: dict[str, str], faults: frozenset[str], flapping: bool
) -> None:
    plan = decide.sync_device(statuses, faults, flapping)
    assert set(plan.keep) | set(plan.resolve) == set(statuses) and not set(plan.keep) & set(plan.resolve)
    assert set(plan.keep) | set(plan.open) >= faults and not set(plan.open) & set(statuses)


def test_a_device_problems_title_names_the_fault_and_the_device() -> None:
    assert decide.device_problem_title(OFFLINE, "Cụm loa chợ") == "Mất kết nối: Cụm loa chợ"
    assert len(decide.device_problem_title(OFFLINE, "x" * 400)) == 300


# --- grouping thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "having", "grouped"),
    [
        (4, 1, False),
        (4, 2, True),
        (4, 3, True),
        (5, 2, False),
        (5, 3, True),
        (2, 2, True),
        (1, 1, False),
        (0, 0, False),
    ],
)
def test_half_of_a_communes_devices_with_one_problem_is_one_commune_problem(
    total: int, having: int, grouped: bool
) -> None:
    group = decide.group_for(OFFLINE, "06184", "183", counts(total, having), RULES)
    assert (group is not None) is grouped
    if group is not None:
        assert group.scope is ProblemScope.COMMUNE and group.key == "commune:06184:offline"
        assert (group.commune_code, group.district_code, len(group.members)) == ("06184", "183", having)


@pytest.mark.parametrize(
    ("total", "having", "grouped"),
    [(100, 29, False), (100, 30, True), (200, 39, False), (200, 40, True), (30, 30, True), (1000, 199, False)],
)
def test_many_devices_of_a_district_are_one_district_problem(total: int, having: int, grouped: bool) -> None:
    group = decide.group_for(OFFLINE, "06184", "183", counts(10, 0, total, having), RULES)
    assert (group is not None) is grouped
    if group is not None:
        assert group.scope is ProblemScope.DISTRICT and group.key == "district:183:offline"
        assert group.commune_code is None and len(group.members) == having


def test_a_full_district_wins_over_a_full_commune() -> None:
    group = decide.group_for(OFFLINE, "06184", "183", counts(4, 4, 100, 50), RULES)
    assert group is not None and group.scope is ProblemScope.DISTRICT


@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 300), st.integers(0, 300))
def test_grouping_follows_the_thresholds_exactly(c_total: int, c_having: int, d_total: int, d_having: int) -> None:
    c_having, d_having = min(c_having, c_total), min(d_having, d_total)
    group = decide.group_for(OFFLINE, "06184", "183", counts(c_total, c_having, d_total, d_having), RULES)
    district = d_having >= 30 and d_having >= 0.2 * d_total
    commune = c_having >= 2 and c_having >= 0.5 * c_total
    expected = ProblemScope.DISTRICT if district else ProblemScope.COMMUNE if commune else None
    assert (group.scope if group is not None else None) is expected


def test_group_due_keeps_order_non_device_problems_first_then_kind_by_kind() -> None:
    problems = [
        device("A", OFFLINE, commune="X"),
        device("B", AMP, commune="06184"),
        Due("commune", "06184", OFFLINE, None, "06184", "183"),
        device("C", OFFLINE, commune="06184"),
        device("D", AMP, commune="X"),
    ]
    full = KindCounts(Counts({"06184": 2, "X": 10}, {"06184": ["B", "C"]}), Counts({"183": 1000}, {}))
    grouped, kept = decide.group_due(problems, {OFFLINE: full, AMP: full}, RULES)
    assert [p.scope_code for p, _ in grouped] == ["C", "B"]
    assert [g.key for _, g in grouped] == ["commune:06184:offline", "commune:06184:amplifier_fault"]
    assert [p.scope_code for p in kept] == ["06184", "A", "D"]
    assert decide.kinds_to_count(problems) == [OFFLINE, AMP]


@pytest.mark.parametrize(
    ("scope", "priority", "expected"),
    [
        (ProblemScope.COMMUNE, Priority.P3, Priority.P2),
        (ProblemScope.DISTRICT, Priority.P3, Priority.P1),
        (ProblemScope.DISTRICT, Priority.P2, Priority.P1),
        (ProblemScope.COMMUNE, Priority.P1, Priority.P1),
    ],
)
def test_a_grouped_problem_weighs_more_a_district_more_than_a_commune(
    scope: ProblemScope, priority: Priority, expected: Priority
) -> None:
    assert decide.group_priority(scope, priority) is expected


def test_grouped_problems_are_titled_in_vietnamese_with_their_place_and_count() -> None:
    commune = Group(ProblemScope.COMMUNE, "06184", OFFLINE, ("a", "b", "c"), "06184", "183")
    district = Group(ProblemScope.DISTRICT, "183", OFFLINE, ("a",) * 40, None, "183")
    assert decide.group_title(commune, "Thị trấn Đồng Đăng") == "Mất kết nối diện rộng: Thị trấn Đồng Đăng (3 thiết bị)"
    assert decide.group_title(commune) == "Mất kết nối diện rộng: xã 06184 (3 thiết bị)"
    assert decide.group_title(district) == "Mất kết nối diện rộng: huyện/khu vực 183 (40 thiết bị)"


def test_a_groups_members_follow_the_devices_that_have_the_problem_now() -> None:
    group = Due("commune", "06184", OFFLINE)
    assert decide.members_now(group, Counts({}, {"06184": ["B", "A"]})) == ["A", "B"]
    assert decide.members_now(group, Counts({}, {"06185": ["A"]})) == []


# --- maintenance, parents -----------------------------------------------------------------------


def test_muted_problems_are_set_aside_first_in_order() -> None:
    problems = [device("A"), device("B", commune="06185"), device("C")]
    muted, rest = decide.split_muted(problems, lambda p: p.commune_code == "06184")
    assert [p.scope_code for p in muted] == ["A", "C"] and [p.scope_code for p in rest] == ["B"]


def test_a_maintenance_window_sees_a_problems_device_places_and_kind() -> None:
    assert decide.subject_of(device("A", device_id=7), {7: "radio_cluster"}) == Subject(
        "A", "06184", "183", "radio_cluster"
    )
    commune = Due("commune", "06184", OFFLINE, None, "06184", "183")
    assert decide.subject_of(commune, {}) == Subject(None, "06184", "183", None)


def test_a_device_behind_a_down_parent_has_no_problem_of_its_own() -> None:
    child, other, fault = device("A", device_id=1), device("B", device_id=2), device("C", AMP, device_id=3)
    assert decide.needs_parent_check([child, other, fault]) == [child, other]
    explained, active = decide.explain_by_parents([child, other, fault], {1: decide.parent_problem_key("GW")})
    assert explained == [(child, "device:GW:offline")] and active == [other, fault]


# --- suppressed problems are released when their explanation is gone ----------------------------


@pytest.mark.parametrize(
    ("reason", "by", "muted", "expected"),
    [
        (SuppressionReason.MAINTENANCE, None, True, True),
        (SuppressionReason.MAINTENANCE, None, False, False),
        (SuppressionReason.GROUPED, "commune:06184:offline", False, True),
        (SuppressionReason.GROUPED, "commune:06185:offline", True, False),
        (SuppressionReason.PARENT_DOWN, "device:GW:offline", False, True),
        (SuppressionReason.PARENT_DOWN, "device:GW2:offline", True, False),
        (None, "commune:06184:offline", True, False),
    ],
)
def test_a_suppressed_problem_stays_so_only_while_what_explained_it_is_there(
    reason: SuppressionReason | None, by: str | None, muted: bool, expected: bool
) -> None:
    still = decide.still_suppressed(
        reason,
        by,
        muted=lambda: muted,
        open_groups={"commune:06184:offline"},
        down_parents={"device:GW:offline"},
    )
    assert still is expected


def test_only_device_keys_name_a_parent() -> None:
    assert decide.device_codes_of(["device:GW:offline", "commune:06184:offline", "device:X:power_loss"]) == ["GW", "X"]
