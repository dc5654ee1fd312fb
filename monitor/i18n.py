"""How the service speaks to people: Vietnam's time zone, dd/mm/yyyy dates, and the message catalogue.

Pages, reports, notifications and the CLI all show times and words through this module, so that they
say the same thing the same way. Its only I/O is reading a language's catalogue file once, on first use,
so any package may use it.

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
`gettext("...")` or `N_("...")` for text chosen later, so that `pybabel extract` (`make messages`, with
babel.cfg) finds them all, in the code and in the page templates. The English catalogue is
`locale/en/LC_MESSAGES/monitor.po`, read as it is (Babel's reader): no compiled `.mo` to build or ship.
tests/test_catalogue.py fails when a message of the code or the templates has no English.

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
from pathlib import Path
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


#: Where the catalogues live: `locale/<language>/LC_MESSAGES/monitor.po`, from Vietnamese (the ids) to that language.
LOCALE_DIR = Path(__file__).parent / "locale"


def catalogue_path(language: str) -> Path:
    """The `.po` file of `language`'s catalogue (pybabel's layout: `make messages` extracts and updates it)."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """The translated messages of `language` (id -> text), read once from its `.po` file; Vietnamese is the
    source and has none. Untranslated and fuzzy entries are left out (they read in Vietnamese)."""
    if language == DEFAULT_LANGUAGE:
        return MappingProxyType({})
    from babel.messages.pofile import read_po  # read once per language and process, at the first message

    with catalogue_path(language).open("rb") as source:
        entries = read_po(source, locale=language, domain=DOMAIN)
    messages = {
        message.id: message.string
        for message in entries
        if isinstance(message.id, str)
        and message.id
        and isinstance(message.string, str)
        and message.string
        and not message.fuzzy
    }
    return MappingProxyType(messages)


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


@cache
def _translations(language: str) -> _gettext.NullTranslations:
    return CatalogueTranslations(language, catalogue(language))


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
