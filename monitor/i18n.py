"""How the service speaks to people: Vietnam's time zone, dd/mm/yyyy dates, and the message catalogue.

Pages, reports, notifications and the CLI all show times and words through this module, so that they
say the same thing the same way. Pure: the standard library only (no I/O), so any package may use it.

    LOCAL_ZONE                      Asia/Ho_Chi_Minh, where the people are (times are stored in UTC)
    to_local(at)                    an instant in Vietnam's zone
    format_date(day_or_instant)     "05/12/2026"
    format_time(time_or_instant)    "14:05"
    format_datetime(instant)        "05/12/2026 14:05"
    translator(language)            a gettext `NullTranslations` for "vi" (the source) or "en"
    gettext(message)                `message` in the current language (a ContextVar, "vi" by default)
    use_language(language)          `with use_language("en"): ...` for one request, job or task

Messages are written in Vietnamese in the code (the source language, Vietnamese first): a message id
*is* its Vietnamese text, so Vietnamese needs no catalogue and anything untranslated reads in
Vietnamese. Other languages are catalogues from Vietnamese to that language. Messages are `str.format`
templates (`"Toàn xã ({count} thiết bị)"`), formatted after translation. Every call passes a literal,
`gettext("...")` or `N_("...")` for text chosen later, so that `pybabel extract -k N_` finds them all;
the English catalogue below can then become `locale/en/LC_MESSAGES/monitor.po` and `translator` load the
compiled `.mo` files with `gettext.translation(..., fallback=True)`, its callers unchanged.

Text that is stored (ticket and problem titles) is always made with `translator("vi")`, never with the
language of whoever happened to trigger it.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, date, datetime, time
from functools import cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

#: Where the people are: every time shown to them is in this zone.
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DATE_FORMAT = "%d/%m/%Y"
TIME_FORMAT = "%H:%M"
DATETIME_FORMAT = f"{DATE_FORMAT} {TIME_FORMAT}"
#: The languages people may choose, Vietnamese first (the default and the source of every message).
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
#: The gettext domain of the future compiled catalogues (`locale/<language>/LC_MESSAGES/monitor.mo`).
DOMAIN = "monitor"


def local_zone() -> ZoneInfo:
    """The zone times are shown in (Asia/Ho_Chi_Minh)."""
    return LOCAL_ZONE


# --- times -------------------------------------------------------------------------------------


def to_local(at: datetime, zone: ZoneInfo = LOCAL_ZONE) -> datetime:
    """`at` in Vietnam's zone. A naive datetime is taken as UTC, the zone every stored time is in."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(zone)


def local_date(at: datetime, zone: ZoneInfo = LOCAL_ZONE) -> date:
    """The date in Vietnam at the instant `at` (17:30 UTC on 31/12 is already 01/01 there)."""
    return to_local(at, zone).date()


def local_today(now: datetime | None = None, zone: ZoneInfo = LOCAL_ZONE) -> date:
    """Today's date where the people are; `now` (any zone) instead of the clock when given."""
    return local_date(now if now is not None else datetime.now(UTC), zone)


def format_date(value: date | datetime, zone: ZoneInfo = LOCAL_ZONE) -> str:
    """A date as people read it, dd/mm/yyyy; an instant is first moved to Vietnam's zone."""
    day = local_date(value, zone) if isinstance(value, datetime) else value
    return day.strftime(DATE_FORMAT)


def format_time(value: time | datetime, zone: ZoneInfo = LOCAL_ZONE) -> str:
    """A time of day as HH:MM (24 hours); an instant is first moved to Vietnam's zone."""
    clock = to_local(value, zone).time() if isinstance(value, datetime) else value
    return clock.strftime(TIME_FORMAT)


def format_datetime(at: datetime, zone: ZoneInfo = LOCAL_ZONE) -> str:
    """An instant as people read it, dd/mm/yyyy HH:MM in Vietnam's zone."""
    return to_local(at, zone).strftime(DATETIME_FORMAT)


# --- the language of this request, job or task --------------------------------------------------

#: The language of the current context. A ContextVar, so concurrent requests and asyncio tasks
#: (each runs in a copy of its creator's context) never see each other's choice.
current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


def language_of(value: str | None) -> str:
    """One of `LANGUAGES`: English when `value` is "en", Vietnamese for anything else (or nothing)."""
    return "en" if value == "en" else DEFAULT_LANGUAGE


def get_language() -> str:
    """The language of the current context ("vi" unless something chose another)."""
    return current_language.get()


def set_language(language: str | None) -> Token[str]:
    """Make `language` the current context's; returns the token that `reset_language` takes back."""
    return current_language.set(language_of(language))


def reset_language(token: Token[str]) -> None:
    """Undo the `set_language` that returned `token`."""
    current_language.reset(token)


@contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Speak `language` inside the block (then what was spoken before); yields the language chosen."""
    token = set_language(language)
    try:
        yield current_language.get()
    finally:
        reset_language(token)


# --- the catalogue ------------------------------------------------------------------------------


def N_(message: str) -> str:  # gettext's own name for it, the one extractors look for
    """Mark `message` for the catalogue without translating it now (it is translated where shown)."""
    return message


#: Vietnamese (the message ids) to English: notifications, grouped problems, planned work.
ENGLISH: Mapping[str, str] = MappingProxyType(
    {
        # notifications: fields of one event
        "Sự cố": "Problem",
        "Phạm vi": "Scope",
        "Xã": "Commune",
        "Huyện": "District",
        "Thiết bị ({count})": "Devices ({count})",
        "Phiếu sửa chữa": "Repair ticket",
        "Thời điểm": "Time",
        "Ghi chú": "Note",
        "Thiết bị {code}": "Device {code}",
        "Toàn xã ({count} thiết bị)": "Whole commune ({count} devices)",
        "Toàn huyện ({count} thiết bị)": "Whole district ({count} devices)",
        "… và {count} thiết bị khác": "… and {count} more devices",
        # notifications: digests
        "{count} sự cố mới ở {place}": "{count} new problems in {place}",
        "{count} sự cố đã khắc phục ở {place}": "{count} problems resolved in {place}",
        "{count} sự cố leo thang ở {place}": "{count} problems escalated in {place}",
        "{count} sự cố đã được tiếp nhận ở {place}": "{count} problems acknowledged in {place}",
        "{count} thông báo sự cố ở {place}": "{count} problem notifications in {place}",
        "… và {count} thông báo khác.": "… and {count} more notifications.",
        "phiếu {code}": "ticket {code}",
        "toàn tỉnh": "the whole province",
        "nhiều huyện": "several districts",
        # notifications: a channel's test message
        "Thử kênh thông báo «{channel}»": "Test of notification channel «{channel}»",
        "Đây là tin nhắn thử của kênh thông báo «{channel}», gửi lúc {time}.\n"
        "Nếu bạn nhận được tin này, kênh đang hoạt động.": "This is a test message of notification channel "
        "«{channel}», sent at {time}.\nIf you receive it, the channel works.",
        "— Thông báo tự động của hệ thống giám sát thông tin cơ sở.": "— Automatic notification of the "
        "grassroots information monitoring service.",
        # grouped problems (stored in Vietnamese; English for pages that show them translated)
        "{problem} diện rộng: {place} ({count} thiết bị)": "Widespread {problem}: {place} ({count} devices)",
        "huyện/khu vực {code}": "district/area {code}",
        "xã {code}": "commune {code}",
        "Thiết bị: {members}": "Devices: {members}",
        # planned work
        "{schedule} – {target} – hạn {due}": "{schedule} – {target} – due {due}",
    }
)


class CatalogueTranslations(_gettext.NullTranslations):
    """A gettext translations object over an in-memory catalogue (message id -> text).

    Behaves like the `GNUTranslations` a compiled `.mo` file gives (and Jinja2's i18n extension takes):
    a message missing from the catalogue goes to the fallback, then comes back as it is (Vietnamese).
    """

    def __init__(self, language: str, messages: Mapping[str, str]) -> None:
        super().__init__()
        self.language = language
        self._messages = messages

    def gettext(self, message: str) -> str:
        """`message` in this catalogue's language."""
        found = self._messages.get(message)
        return found if found is not None else super().gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        """The singular or plural form for `n`; only one form per message today (Vietnamese has one)."""
        found = self._messages.get(msgid1 if n == 1 else msgid2)
        return found if found is not None else super().ngettext(msgid1, msgid2, n)

    def info(self) -> dict[str, str]:
        """The catalogue's metadata, as a `.mo` file would carry it."""
        return {"language": self.language}


_CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType({"vi": MappingProxyType({}), "en": ENGLISH})


@cache
def _translations(language: str) -> _gettext.NullTranslations:
    return CatalogueTranslations(language, _CATALOGUES[language])


def translator(language: str | None = None) -> _gettext.NullTranslations:
    """The translations of `language` ("vi" or "en"; anything else is Vietnamese); one object each.

    `translator()` follows nothing: with no argument it is Vietnamese, the stored language. Use
    `gettext` (module level) to speak the current context's language.
    """
    return _translations(language_of(language))  # normalised first: the cache holds one per language


def gettext(message: str) -> str:
    """`message` in the current context's language."""
    return translator(current_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current context's language."""
    return translator(current_language.get()).ngettext(singular, plural, n)


_ = gettext
