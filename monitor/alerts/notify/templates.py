"""The words of notifications, in Vietnamese (first) and English: one event, a digest of many, a test. Pure.

Output is plain text, never markup: e-mail goes as text/plain and Telegram without `parse_mode`, so
a device name or a note cannot inject anything. Every piece of text that came from outside (titles,
notes, names) is flattened to one line, so it cannot forge lines or e-mail headers either.
Words, times and dates come from `monitor.i18n` (Asia/Ho_Chi_Minh, dd/mm/yyyy HH:MM), as everywhere else.
`language` is "vi" or "en" (anything else is Vietnamese); left out, the current context's language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from monitor.alerts.notify.events import ProblemEvent, ProblemEventKind
from monitor.health.states import fault_label
from monitor.i18n import LOCAL_ZONE, N_, format_datetime, get_language, translator
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope

#: Subjects are kept short enough for every mail client and for the deliveries table (300).
SUBJECT_MAX = 250
#: Device codes listed in a grouped problem's message before "and N more".
MEMBERS_SHOWN = 10

SUBJECT = N_("[{priority}] {event}: {problem} – {where}")
FOOTER = N_("— Thông báo tự động của hệ thống giám sát thông tin cơ sở.")
#: A digest's subject when all its events are of one kind, and when they are mixed.
DIGEST_SUBJECTS: Mapping[ProblemEventKind, str] = {
    ProblemEventKind.OPENED: N_("{count} sự cố mới ở {place}"),
    ProblemEventKind.RESOLVED: N_("{count} sự cố đã khắc phục ở {place}"),
    ProblemEventKind.ESCALATED: N_("{count} sự cố leo thang ở {place}"),
    ProblemEventKind.ACKNOWLEDGED: N_("{count} sự cố đã được tiếp nhận ở {place}"),
}
DIGEST_MIXED = N_("{count} thông báo sự cố ở {place}")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def one_line(text: str | None) -> str:
    """`text` without control characters or line breaks, spaces collapsed: safe in a line or a header."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text or "")).strip()


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def ticket_url(public_url: str | None, code: str | None) -> str | None:
    """The page of ticket `code` at the service's address (`public_url`), when both are known."""
    if not public_url or not code:
        return None
    return f"{public_url.rstrip('/')}/tickets/{quote(one_line(code), safe='')}"


def _gettext(language: str) -> Callable[[str], str]:
    return translator(language).gettext


@dataclass(frozen=True, slots=True)
class Notice:
    """An event with the names of its places, looked up once when it is enqueued."""

    event: ProblemEvent
    district_name: str | None = None
    commune_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What a delivery row keeps, and the item a webhook receives (with labels in both languages)."""
        event = self.event
        return {
            **event.to_json(),
            "district_name": self.district_name,
            "commune_name": self.commune_name,
            "problem_label_vi": fault_label(event.problem_kind, "vi"),
            "problem_label_en": fault_label(event.problem_kind, "en"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        """The notice back from `to_json`'s output."""
        return cls(ProblemEvent.from_json(data), data.get("district_name"), data.get("commune_name"))

    @property
    def district(self) -> str:
        """The district's name, or its code when the name is unknown."""
        return one_line(self.district_name or self.event.district_code or "")

    @property
    def commune(self) -> str:
        """The commune's name, or its code when the name is unknown."""
        return one_line(self.commune_name or self.event.commune_code or "")


@dataclass(frozen=True, slots=True)
class Message:
    """A notification as people read it: a subject (one line) and a plain-text body."""

    subject: str
    text: str


def _where(notice: Notice, language: str) -> str:
    """Where the problem is, in a few words: the device and its places, the commune, or the district."""
    event = notice.event
    places = [p for p in (notice.commune, notice.district) if p]
    if event.scope is ProblemScope.DEVICE:
        return f"{one_line(event.scope_code)} ({', '.join(places)})" if places else one_line(event.scope_code)
    if event.scope is ProblemScope.COMMUNE:
        return ", ".join(places) or one_line(event.scope_code)
    if event.scope is ProblemScope.PROVINCE:
        return _gettext(language)(N_("toàn tỉnh"))
    return notice.district or one_line(event.scope_code) or _gettext(language)(N_("toàn tỉnh"))


def _members(event: ProblemEvent, language: str) -> str:
    shown = ", ".join(one_line(code) for code in event.members[:MEMBERS_SHOWN])
    hidden = len(event.members) - MEMBERS_SHOWN
    more = _gettext(language)(N_("… và {count} thiết bị khác"))
    return shown + (" " + more.format(count=hidden) if hidden > 0 else "")


def render_event(notice: Notice, language: str | None = None, *, tz: ZoneInfo = LOCAL_ZONE) -> Message:
    """The message for one event, in `language` (`vi` or `en`; anything else is Vietnamese)."""
    language = language or get_language()
    _ = _gettext(language)
    event = notice.event
    problem = fault_label(event.problem_kind, language)
    subject = _(SUBJECT).format(
        priority=event.priority.value,
        event=event.kind.label(language),
        problem=problem,
        where=_where(notice, language),
    )
    scope = {
        ProblemScope.DEVICE: _("Thiết bị {code}").format(code=one_line(event.scope_code)),
        ProblemScope.COMMUNE: _("Toàn xã ({count} thiết bị)").format(count=len(event.members)),
        ProblemScope.DISTRICT: _("Toàn huyện ({count} thiết bị)").format(count=len(event.members)),
        ProblemScope.PROVINCE: _("Toàn tỉnh"),
    }[event.scope]
    lines = [f"{event.kind.label(language)} – {event.priority.label(language)}"]
    if one_line(event.title):
        lines.append(one_line(event.title))
    lines += ["", f"{_('Sự cố')}: {problem}", f"{_('Phạm vi')}: {scope}"]
    if notice.commune:
        lines.append(f"{_('Xã')}: {notice.commune}")
    if notice.district:
        lines.append(f"{_('Huyện')}: {notice.district}")
    if event.members and event.scope is not ProblemScope.DEVICE:
        devices = _("Thiết bị ({count})").format(count=len(event.members))
        lines.append(f"{devices}: {_members(event, language)}")
    if event.ticket_code:
        lines.append(f"{_('Phiếu sửa chữa')}: {one_line(event.ticket_code)}")
    lines.append(f"{_('Thời điểm')}: {format_datetime(event.at, tz)}")
    if one_line(event.note):
        lines.append(f"{_('Ghi chú')}: {one_line(event.note)}")
    lines += ["", _(FOOTER)]
    return Message(shorten(one_line(subject), SUBJECT_MAX), "\n".join(lines))


def _digest_place(notices: Sequence[Notice], language: str) -> str:
    districts = {n.event.district_code for n in notices}
    if len(districts) == 1 and None not in districts:
        return notices[0].district
    _ = _gettext(language)
    return _("toàn tỉnh") if None in districts else _("nhiều huyện")


def _digest_line(notice: Notice, language: str, tz: ZoneInfo, public_url: str | None = None) -> str:
    event = notice.event
    parts = [
        f"• [{event.priority.value}] {event.kind.label(language)}: {fault_label(event.problem_kind, language)}",
        _where(notice, language),
        format_datetime(event.at, tz),
    ]
    if event.ticket_code:
        parts.append(_gettext(language)(N_("phiếu {code}")).format(code=one_line(event.ticket_code)))
    link = ticket_url(public_url, event.ticket_code)
    return " – ".join(parts) + (f" {link}" if link else "")


def _urgency(notice: Notice) -> tuple[int, datetime]:
    return list(Priority).index(notice.event.priority), notice.event.at


def render_digest(
    notices: Sequence[Notice],
    language: str | None = None,
    *,
    limit: int = 20,
    tz: ZoneInfo = LOCAL_ZONE,
    public_url: str | None = None,
) -> Message:
    """One message for many events to one recipient: a count in the subject, the `limit` most urgent
    listed (then by time), and how many more there are; with `public_url`, each line with a ticket ends
    with the ticket's page."""
    if not notices:
        raise ValueError("a digest needs at least one event")
    language = language or get_language()
    _ = _gettext(language)
    kinds = Counter(n.event.kind for n in notices)
    place = _digest_place(notices, language)
    template = DIGEST_SUBJECTS[next(iter(kinds))] if len(kinds) == 1 else DIGEST_MIXED
    subject = _(template).format(count=len(notices), place=place)
    lines = [subject + ":"]
    if len(kinds) > 1:
        lines.append(" · ".join(f"{kind.label(language)}: {kinds[kind]}" for kind in ProblemEventKind if kinds[kind]))
    lines.append("")
    ordered = sorted(notices, key=_urgency)
    lines += [_digest_line(n, language, tz, public_url) for n in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(_("… và {count} thông báo khác.").format(count=len(ordered) - limit))
    lines += ["", _(FOOTER)]
    return Message(shorten(one_line(subject), SUBJECT_MAX), "\n".join(lines))


def render_test(channel_name: str, at: datetime, language: str | None = None, *, tz: ZoneInfo = LOCAL_ZONE) -> Message:
    """The message `POST /channels/{id}/test` sends."""
    _ = _gettext(language or get_language())
    name = one_line(channel_name)
    subject = _("Thử kênh thông báo «{channel}»").format(channel=name)
    text = _(
        "Đây là tin nhắn thử của kênh thông báo «{channel}», gửi lúc {time}.\n"
        "Nếu bạn nhận được tin này, kênh đang hoạt động."
    )
    return Message(shorten(subject, SUBJECT_MAX), text.format(channel=name, time=format_datetime(at, tz)))
