"""One voice for people: Vietnam's time zone, dd/mm/yyyy, and the catalogue with its per-context language."""

from __future__ import annotations

import asyncio
import gettext
import string
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import i18n
from monitor.i18n import (
    LOCAL_ZONE,
    N_,
    format_date,
    format_datetime,
    format_time,
    get_language,
    local_date,
    local_today,
    local_zone,
    set_language,
    to_local,
    translator,
    use_language,
)

# --- the zone -----------------------------------------------------------------------------------


def test_the_zone_is_ho_chi_minh_city_seven_hours_ahead_all_year() -> None:
    assert local_zone() is LOCAL_ZONE and LOCAL_ZONE.key == "Asia/Ho_Chi_Minh"
    for month in (1, 7):  # no daylight saving time: the same offset in winter and summer
        assert to_local(datetime(2026, month, 1, tzinfo=UTC)).utcoffset() == timedelta(hours=7)


@pytest.mark.parametrize(
    ("utc", "local_day"),
    [
        (datetime(2026, 12, 31, 16, 59, 59, tzinfo=UTC), date(2026, 12, 31)),  # 23:59:59 in Hà Nội
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), date(2027, 1, 1)),  # midnight: already next year there
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), date(2026, 3, 1)),  # 07:00 the same day
        (datetime(2028, 2, 28, 17, 0, tzinfo=UTC), date(2028, 2, 29)),  # a leap day begins in the evening UTC
    ],
)
def test_the_date_is_the_one_in_vietnam_not_in_utc(utc: datetime, local_day: date) -> None:
    assert local_date(utc) == local_day
    assert format_date(utc) == local_day.strftime("%d/%m/%Y")
    assert local_today(utc) == local_day


def test_an_instant_in_another_zone_is_the_same_instant_in_vietnam() -> None:
    paris = datetime(2026, 12, 31, 18, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 17:30 UTC
    assert format_datetime(paris) == "01/01/2027 00:30"
    assert to_local(paris) == paris and to_local(paris).tzinfo is LOCAL_ZONE


def test_a_naive_datetime_is_taken_as_utc_the_zone_times_are_stored_in() -> None:
    assert format_datetime(datetime(2026, 12, 31, 17, 30)) == "01/01/2027 00:30"  # noqa: DTZ001


def test_today_is_vietnams_date_of_now() -> None:
    before = datetime.now(UTC).astimezone(LOCAL_ZONE).date()
    assert local_today() in {before, before + timedelta(days=1)}


# --- formats ------------------------------------------------------------------------------------


def test_dates_read_day_month_year_with_leading_zeros() -> None:
    assert format_date(date(2026, 12, 5)) == "05/12/2026"
    assert format_date(date(2026, 1, 9)) == "09/01/2026"


def test_times_read_hours_and_minutes_on_a_24_hour_clock() -> None:
    assert format_time(time(7, 30)) == "07:30"
    assert format_time(time(17, 0)) == "17:00"
    assert format_time(datetime(2026, 12, 5, 7, 5, tzinfo=UTC)) == "14:05"


def test_a_datetime_reads_date_then_time_as_notifications_always_showed_it() -> None:
    assert format_datetime(datetime(2026, 12, 5, 7, 5, tzinfo=UTC)) == "05/12/2026 14:05"
    assert format_datetime(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)) == "01/01/2027 00:30"


def test_another_zone_can_be_asked_for() -> None:
    assert format_datetime(datetime(2026, 12, 5, 7, 5, tzinfo=UTC), ZoneInfo("UTC")) == "05/12/2026 07:05"


# Hypothesis takes naive bounds and attaches the zone itself.
FROM, UNTIL = datetime(2000, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001


@given(st.datetimes(min_value=FROM, max_value=UNTIL, timezones=st.just(UTC)))
def test_every_instant_formats_as_its_local_wall_clock(at: datetime) -> None:
    local = at + timedelta(hours=7)
    assert format_datetime(at) == f"{local.day:02d}/{local.month:02d}/{local.year} {local.hour:02d}:{local.minute:02d}"
    assert format_datetime(at) == f"{format_date(at)} {format_time(at)}"


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=14))])))
def test_the_local_date_never_depends_on_the_zone_the_instant_came_in(at: datetime) -> None:
    assert local_date(at) == local_date(at.astimezone(UTC))


# --- the catalogue ------------------------------------------------------------------------------


def test_vietnamese_is_the_source_and_english_its_translation() -> None:
    assert translator("vi").gettext("Phiếu sửa chữa") == "Phiếu sửa chữa"
    assert translator("en").gettext("Phiếu sửa chữa") == "Repair ticket"


def test_an_unknown_language_or_none_speaks_vietnamese() -> None:
    for language in (None, "", "fr", "EN", "en-US"):
        assert translator(language).gettext("Phiếu sửa chữa") == "Phiếu sửa chữa"


def test_a_message_missing_from_a_catalogue_reads_in_vietnamese() -> None:
    assert translator("en").gettext("Một câu chưa dịch") == "Một câu chưa dịch"


def test_translators_are_gettext_translations_one_per_language() -> None:
    english = translator("en")
    assert isinstance(english, gettext.NullTranslations)  # what a compiled .mo gives, and Jinja2 takes
    assert english is translator("en") and translator("fr") is translator("vi")
    assert english.ngettext("Thiết bị {code}", "Thiết bị {code}", 2) == "Device {code}"


def test_every_english_message_keeps_the_placeholders_of_its_vietnamese_id() -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    english = i18n.catalogue("en")
    assert len(english) > 30
    for message, text in english.items():
        assert fields(message) == fields(text), message


def test_marking_a_message_for_the_catalogue_does_not_translate_it() -> None:
    with use_language("en"):
        assert N_("Phiếu sửa chữa") == "Phiếu sửa chữa"
        assert i18n.gettext(N_("Phiếu sửa chữa")) == "Repair ticket"


# --- the language of a context ------------------------------------------------------------------


def test_the_language_is_vietnamese_unless_chosen_and_comes_back_after_the_block() -> None:
    assert get_language() == "vi" and i18n.gettext("Ghi chú") == "Ghi chú"
    with use_language("en") as chosen:
        assert chosen == "en" and i18n.gettext("Ghi chú") == "Note"
        with use_language("xx"):
            assert get_language() == "vi"
        assert get_language() == "en"
    assert get_language() == "vi"


def test_a_language_set_and_reset_by_token() -> None:
    token = set_language("en")
    try:
        assert i18n.gettext("Xã") == "Commune"
    finally:
        i18n.reset_language(token)
    assert i18n.gettext("Xã") == "Xã"


def test_concurrent_tasks_each_keep_their_own_language() -> None:
    async def speak(language: str, started: asyncio.Barrier, said: asyncio.Barrier) -> list[str]:
        set_language(language)  # for this task only: it runs in a copy of its creator's context
        heard = [i18n.gettext("Huyện")]
        await started.wait()  # every task has chosen before any speaks again
        heard.append(i18n.gettext("Huyện"))
        await said.wait()
        heard.append(get_language())
        return heard

    async def main() -> list[list[str]]:
        started, said = asyncio.Barrier(6), asyncio.Barrier(6)
        languages = ["en", "vi", "en", "fr", "en", "vi"]
        return list(await asyncio.gather(*(speak(lang, started, said) for lang in languages)))

    results = asyncio.run(main())
    for heard, language in zip(results, ["en", "vi", "en", "vi", "en", "vi"], strict=True):
        word = "District" if language == "en" else "Huyện"
        assert heard == [word, word, language]
    assert get_language() == "vi"  # and nothing leaked out to the caller


def test_a_task_starts_with_its_creators_language_and_cannot_change_it() -> None:
    async def child() -> str:
        set_language("vi")
        return i18n.gettext("Huyện")

    async def parent() -> tuple[str, str, str]:
        with use_language("en"):
            inherited = await asyncio.create_task(asyncio.to_thread(i18n.gettext, "Huyện"))
            changed = await asyncio.create_task(child())
            return inherited, changed, i18n.gettext("Huyện")

    assert asyncio.run(parent()) == ("District", "Huyện", "District")
