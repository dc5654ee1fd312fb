"""The words of notifications, in Vietnamese (first) and English: one event, a digest of many, a test. Pure.

Output is plain text, never markup: e-mail goes as text/plain and Telegram without `parse_mode`, so
a device name or a note cannot inject anything. Every piece of text that came from outside (titles,
notes, names) is flattened to one line, so it cannot forge lines or e-mail headers either.
Times are shown in Asia/Ho_Chi_Minh as dd/mm/yyyy HH:MM.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alerts.notify.events import ProblemEvent, ProblemEventKind
from monitor.health.states import fault_label
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
LANGUAGES = ("vi", "en")
#: Subjects are kept short enough for every mail client and for the deliveries table (300).
SUBJECT_MAX = 250
#: Device codes listed in a grouped problem's message before "and N more".
MEMBERS_SHOWN = 10

# The catalogue: every sentence people read, Vietnamese first.
CATALOGUE: Mapping[str, Mapping[str, str]] = {
    "vi": {
        "subject": "[{priority}] {event}: {problem} – {where}",
        "field.problem": "Sự cố",
        "field.scope": "Phạm vi",
        "field.commune": "Xã",
        "field.district": "Huyện",
        "field.devices": "Thiết bị ({count})",
        "field.ticket": "Phiếu sửa chữa",
        "field.time": "Thời điểm",
        "field.note": "Ghi chú",
        "scope.device": "Thiết bị {code}",
        "scope.commune": "Toàn xã ({count} thiết bị)",
        "scope.district": "Toàn huyện ({count} thiết bị)",
        "members.more": "… và {count} thiết bị khác",
        "digest.opened": "{count} sự cố mới ở {place}",
        "digest.resolved": "{count} sự cố đã khắc phục ở {place}",
        "digest.escalated": "{count} sự cố leo thang ở {place}",
        "digest.acknowledged": "{count} sự cố đã được tiếp nhận ở {place}",
        "digest.mixed": "{count} thông báo sự cố ở {place}",
        "digest.more": "… và {count} thông báo khác.",
        "digest.ticket": "phiếu {code}",
        "place.province": "toàn tỉnh",
        "place.several": "nhiều huyện",
        "test.subject": "Thử kênh thông báo «{channel}»",
        "test.text": "Đây là tin nhắn thử của kênh thông báo «{channel}», gửi lúc {time}.\n"
        "Nếu bạn nhận được tin này, kênh đang hoạt động.",
        "footer": "— Thông báo tự động của hệ thống giám sát thông tin cơ sở.",
    },
    "en": {
        "subject": "[{priority}] {event}: {problem} – {where}",
        "field.problem": "Problem",
        "field.scope": "Scope",
        "field.commune": "Commune",
        "field.district": "District",
        "field.devices": "Devices ({count})",
        "field.ticket": "Repair ticket",
        "field.time": "Time",
        "field.note": "Note",
        "scope.device": "Device {code}",
        "scope.commune": "Whole commune ({count} devices)",
        "scope.district": "Whole district ({count} devices)",
        "members.more": "… and {count} more devices",
        "digest.opened": "{count} new problems in {place}",
        "digest.resolved": "{count} problems resolved in {place}",
        "digest.escalated": "{count} problems escalated in {place}",
        "digest.acknowledged": "{count} problems acknowledged in {place}",
        "digest.mixed": "{count} problem notifications in {place}",
        "digest.more": "… and {count} more notifications.",
        "digest.ticket": "ticket {code}",
        "place.province": "the whole province",
        "place.several": "several districts",
        "test.subject": "Test of notification channel «{channel}»",
        "test.text": "This is a test message of notification channel «{channel}», sent at {time}.\n"
        "If you receive it, the channel works.",
        "footer": "— Automatic notification of the grassroots information monitoring service.",
    },
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def one_line(text: str | None) -> str:
    """`text` without control characters or line breaks, spaces collapsed: safe in a line or a header."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text or "")).strip()


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def local_time(at: datetime, tz: ZoneInfo = VIETNAM) -> str:
    """`at` as people read it: dd/mm/yyyy HH:MM in Vietnam's time zone."""
    return at.astimezone(tz).strftime("%d/%m/%Y %H:%M")


def _text(language: str) -> Mapping[str, str]:
    return CATALOGUE["en" if language == "en" else "vi"]


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
    return notice.district or one_line(event.scope_code) or _text(language)["place.province"]


def _members(event: ProblemEvent, language: str) -> str:
    shown = ", ".join(one_line(code) for code in event.members[:MEMBERS_SHOWN])
    hidden = len(event.members) - MEMBERS_SHOWN
    return shown + (" " + _text(language)["members.more"].format(count=hidden) if hidden > 0 else "")


def render_event(notice: Notice, language: str = "vi", *, tz: ZoneInfo = VIETNAM) -> Message:
    """The message for one event, in `language` (`vi` or `en`; anything else is Vietnamese)."""
    t = _text(language)
    event = notice.event
    problem = fault_label(event.problem_kind, language)
    subject = t["subject"].format(
        priority=event.priority.value,
        event=event.kind.label(language),
        problem=problem,
        where=_where(notice, language),
    )
    scope = {
        ProblemScope.DEVICE: t["scope.device"].format(code=one_line(event.scope_code)),
        ProblemScope.COMMUNE: t["scope.commune"].format(count=len(event.members)),
        ProblemScope.DISTRICT: t["scope.district"].format(count=len(event.members)),
    }[event.scope]
    lines = [f"{event.kind.label(language)} – {event.priority.label(language)}"]
    if one_line(event.title):
        lines.append(one_line(event.title))
    lines += ["", f"{t['field.problem']}: {problem}", f"{t['field.scope']}: {scope}"]
    if notice.commune:
        lines.append(f"{t['field.commune']}: {notice.commune}")
    if notice.district:
        lines.append(f"{t['field.district']}: {notice.district}")
    if event.members and event.scope is not ProblemScope.DEVICE:
        lines.append(f"{t['field.devices'].format(count=len(event.members))}: {_members(event, language)}")
    if event.ticket_code:
        lines.append(f"{t['field.ticket']}: {one_line(event.ticket_code)}")
    lines.append(f"{t['field.time']}: {local_time(event.at, tz)}")
    if one_line(event.note):
        lines.append(f"{t['field.note']}: {one_line(event.note)}")
    lines += ["", t["footer"]]
    return Message(shorten(one_line(subject), SUBJECT_MAX), "\n".join(lines))


def _digest_place(notices: Sequence[Notice], language: str) -> str:
    districts = {n.event.district_code for n in notices}
    if len(districts) == 1 and None not in districts:
        return notices[0].district
    t = _text(language)
    return t["place.province"] if None in districts else t["place.several"]


def _digest_line(notice: Notice, language: str, tz: ZoneInfo) -> str:
    event = notice.event
    parts = [
        f"• [{event.priority.value}] {event.kind.label(language)}: {fault_label(event.problem_kind, language)}",
        _where(notice, language),
        local_time(event.at, tz),
    ]
    if event.ticket_code:
        parts.append(_text(language)["digest.ticket"].format(code=one_line(event.ticket_code)))
    return " – ".join(parts)


def _urgency(notice: Notice) -> tuple[int, datetime]:
    return list(Priority).index(notice.event.priority), notice.event.at


def render_digest(
    notices: Sequence[Notice], language: str = "vi", *, limit: int = 20, tz: ZoneInfo = VIETNAM
) -> Message:
    """One message for many events to one recipient: a count in the subject, the `limit` most urgent
    listed (then by time), and how many more there are."""
    if not notices:
        raise ValueError("a digest needs at least one event")
    t = _text(language)
    kinds = Counter(n.event.kind for n in notices)
    place = _digest_place(notices, language)
    key = f"digest.{next(iter(kinds)).value}" if len(kinds) == 1 else "digest.mixed"
    subject = t[key].format(count=len(notices), place=place)
    lines = [subject + ":"]
    if len(kinds) > 1:
        lines.append(" · ".join(f"{kind.label(language)}: {kinds[kind]}" for kind in ProblemEventKind if kinds[kind]))
    lines.append("")
    ordered = sorted(notices, key=_urgency)
    lines += [_digest_line(n, language, tz) for n in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(t["digest.more"].format(count=len(ordered) - limit))
    lines += ["", t["footer"]]
    return Message(shorten(one_line(subject), SUBJECT_MAX), "\n".join(lines))


def render_test(channel_name: str, at: datetime, language: str = "vi", *, tz: ZoneInfo = VIETNAM) -> Message:
    """The message `POST /channels/{id}/test` sends."""
    t = _text(language)
    name = one_line(channel_name)
    subject = t["test.subject"].format(channel=name)
    return Message(shorten(subject, SUBJECT_MAX), t["test.text"].format(channel=name, time=local_time(at, tz)))
