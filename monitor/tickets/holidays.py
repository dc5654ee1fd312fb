"""Vietnamese public holidays, for SLA clocks counted in working hours.

The Labour Code (Bộ luật Lao động 2019, Art. 112) grants: Tết Dương lịch (1 January), Tết Âm lịch
(5 days), Victory Day (30 April), International Labour Day (1 May), National Day (2 September plus
one adjacent day) and Hùng Kings' Commemoration Day (10th day of the 3rd lunar month).

The exact days of Tết and the day adjacent to National Day are fixed each year by the Prime Minister,
and compensatory days off (ngày nghỉ bù) when a holiday falls on a weekend, or swapped working days,
are published yearly too: a deployment adds or removes those through `HolidayCalendar`. The defaults
here are the statutory days only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from monitor.i18n import format_date

# Lunar New Year's Day (mùng 1 Tết) and Hùng Kings' day (10/3 lunar) in the Gregorian calendar, computed
# for UTC+7 (the Vietnamese lunar calendar, which differs from the Chinese one when a new moon falls
# between 23:00 and 24:00 Vietnam time: Tết 2030 is 2 February in Vietnam, 3 February in China).
# Cross-checked with Hồ Ngọc Đức's lunar calendar algorithm; every new moon involved is at least 50 min
# from local midnight, well beyond the algorithm's error.
LUNAR_NEW_YEAR: dict[int, date] = {
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 2),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}
HUNG_KINGS_DAY: dict[int, date] = {
    2020: date(2020, 4, 2),
    2021: date(2021, 4, 21),
    2022: date(2022, 4, 10),
    2023: date(2023, 4, 29),
    2024: date(2024, 4, 18),
    2025: date(2025, 4, 7),
    2026: date(2026, 4, 26),
    2027: date(2027, 4, 16),
    2028: date(2028, 4, 4),
    2029: date(2029, 4, 23),
    2030: date(2030, 4, 12),
    2031: date(2031, 4, 1),
    2032: date(2032, 4, 19),
    2033: date(2033, 4, 9),
    2034: date(2034, 4, 28),
    2035: date(2035, 4, 17),
}
FIRST_KNOWN_YEAR = min(LUNAR_NEW_YEAR)
LAST_KNOWN_YEAR = max(LUNAR_NEW_YEAR)


def vietnam_public_holidays(year: int) -> set[date]:
    """The statutory public holidays of `year` (Labour Code 2019, Art. 112), 11 days.

    Tết is taken as the lunar New Year's Eve plus the first 4 days of the new year; the day adjacent
    to National Day as 1 September. Both are the usual choice, but the government publishes the real
    ones each year, with any compensatory days: configure those in `HolidayCalendar`.

    Raises ValueError for a year outside the lunar table (2020–2035) rather than silently forget Tết.
    """
    return set(_statutory_holidays(year))


@cache
def _statutory_holidays(year: int) -> frozenset[date]:
    if year not in LUNAR_NEW_YEAR:
        raise ValueError(
            f"no lunar dates (Tết, Hùng Kings' day) for {year}: the table in monitor/tickets/holidays.py "
            f"covers {FIRST_KNOWN_YEAR}–{LAST_KNOWN_YEAR}, extend it"
        )
    new_year = LUNAR_NEW_YEAR[year]
    tet = {new_year + timedelta(days=offset) for offset in range(-1, 4)}
    fixed = {date(year, 1, 1), date(year, 4, 30), date(year, 5, 1), date(year, 9, 1), date(year, 9, 2)}
    return frozenset(tet | fixed | {HUNG_KINGS_DAY[year]})


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """The days off a deployment observes: the statutory holidays, plus `extra`, minus `removed`.

    `extra` carries what the government publishes each year (compensatory days off when a holiday
    falls on a weekend, the longer Tết break, 3 September instead of 1 September…); `removed` takes
    back a default day (a swapped working day). `statutory=False` drops the built-in list entirely,
    for a deployment that configures every day itself (or runs past the lunar table's last year).
    """

    extra: frozenset[date] = frozenset()
    removed: frozenset[date] = frozenset()
    statutory: bool = True

    def __post_init__(self) -> None:
        both = self.extra & self.removed
        if both:
            days = ", ".join(format_date(d) for d in sorted(both))
            raise ValueError(f"days both added and removed as holidays: {days}")

    def is_holiday(self, day: date) -> bool:
        """Whether `day` (a local date) is a day off."""
        if day in self.extra:
            return True
        if day in self.removed or not self.statutory:
            return False
        return day in _statutory_holidays(day.year)

    def holidays(self, year: int) -> set[date]:
        """Every day off in `year`, for display and configuration checks."""
        base = _statutory_holidays(year) if self.statutory else frozenset()
        return (set(base) - self.removed) | {d for d in self.extra if d.year == year}
