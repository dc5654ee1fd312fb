"""Maintenance windows read as people write them: standard cron (0 is Sunday), in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.maintenance import cron_trigger, is_open, occurrences
from monitor.alerts.models import MaintenanceWindow
from monitor.errors import InvalidInput
from monitor.i18n import LOCAL_ZONE

SUNDAY = datetime(2026, 3, 1, tzinfo=LOCAL_ZONE)  # 1 March 2026 is a Sunday


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [
        ("0 2 * * 0", {6}),
        ("0 2 * * 7", {6}),
        ("0 2 * * 1-5", {0, 1, 2, 3, 4}),
        ("0 2 * * 0-6", set(range(7))),
        ("0 2 * * */2", {6, 1, 3, 5}),
        ("0 2 * * 6,0", {5, 6}),
        ("0 2 * * sat,sun", {5, 6}),
        ("0 2 * * *", set(range(7))),
    ],
)
def test_day_of_week_is_read_as_cron_reads_it(expression: str, weekdays: set[int]) -> None:
    trigger = cron_trigger(expression)
    fired, at = set(), SUNDAY - timedelta(days=1)
    for _ in range(14):
        next_fire = trigger.get_next_fire_time(None, at + timedelta(seconds=1))
        assert next_fire is not None and next_fire.astimezone(LOCAL_ZONE).hour == 2
        fired.add(next_fire.weekday())
        at = next_fire
    assert fired == weekdays


@pytest.mark.parametrize("expression", ["0 2 * * 8", "0 2 * *", "0 2 * * mon,3", "61 2 * * *"])
def test_a_bad_expression_is_refused_clearly(expression: str) -> None:
    with pytest.raises(InvalidInput):
        cron_trigger(expression)


def test_occurrences_of_a_weekly_window_within_a_month_keep_an_ended_windows_history() -> None:
    window = MaintenanceWindow(
        name="Bảo dưỡng Chủ nhật",
        scope="district",
        scope_code="183",
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 20, tzinfo=UTC),
        cron="0 2 * * 0",
        duration_s=3600,
        active=False,  # ended: its past occurrences still count
    )
    found = occurrences(window, SUNDAY.astimezone(UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert [start.astimezone(LOCAL_ZONE).day for start, _ in found] == [1, 8, 15]
    assert all(end - start == timedelta(hours=1) for start, end in found)
    # an occurrence cut by the period's start is clipped, not dropped
    cut = occurrences(window, datetime(2026, 3, 7, 19, 30, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC))
    assert cut == [(datetime(2026, 3, 7, 19, 30, tzinfo=UTC), datetime(2026, 3, 7, 20, 0, tzinfo=UTC))]
    window.active = True
    assert is_open(window, datetime(2026, 3, 8, 2, 30, tzinfo=LOCAL_ZONE))
    assert not is_open(window, datetime(2026, 3, 9, 2, 30, tzinfo=LOCAL_ZONE))
