"""Who hears about an event, through which channel: routing by district and priority. Pure.

A channel takes an event when it is active, covers the event's district (a channel of no district
covers them all; a province-wide event goes only to such channels), and the event is at least as
urgent as the channel's `min_priority`. Its recipients are then, unless the channel names its own
(`to` for e-mail, `chat_ids` for Telegram, `recipients` for Zalo):

- the officers and technicians of the event's district, and nobody of another district;
- the province's administrators for P1 and P2 events, and for province-wide events of any priority
  (they are the only people such an event concerns).

A webhook has one recipient: the endpoint itself. A Zalo OA channel reaches only the followers it names
(a user's Zalo id is the OA's to know, not ours); a Zalo ZNS channel reaches people at their phone numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.alerts.choices import ChannelKind
from monitor.alerts.notify.events import ProblemEvent
from monitor.alerts.notify.schemas import RECIPIENT_KEYS, zalo_phone
from monitor.auth.models import Role
from monitor.priority import Priority

#: The recipient of every webhook delivery: a webhook has one endpoint, named in its channel's config.
WEBHOOK_RECIPIENT = "webhook"
#: Priorities that the province's administrators hear about wherever they happen.
PROVINCE_PRIORITIES: frozenset[Priority] = frozenset({Priority.P1, Priority.P2})
_RANK = {priority: rank for rank, priority in enumerate(Priority)}


def at_least(priority: Priority, minimum: Priority) -> bool:
    """Whether `priority` is as urgent as `minimum` or more (P1 is the most urgent)."""
    return _RANK[Priority(priority)] <= _RANK[Priority(minimum)]


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What routing needs to know of a channel."""

    id: int
    kind: ChannelKind
    district_code: str | None
    min_priority: Priority
    active: bool = True
    #: Recipients the channel names itself (e-mail `to`, Telegram `chat_ids`); empty: the district's people.
    explicit: tuple[str, ...] = ()
    #: The language of messages to explicit recipients and webhooks.
    language: str = "vi"
    #: Whether the district's people can be reached when the channel names nobody (not by Zalo OA).
    reaches_people: bool = True

    @classmethod
    def of(
        cls,
        *,
        id: int,
        kind: str,
        district_code: str | None,
        min_priority: str,
        active: bool,
        config: Mapping[str, Any],
    ) -> ChannelRule:
        """The rule of a channel row's values (its config as stored)."""
        channel_kind = ChannelKind(kind)
        key = RECIPIENT_KEYS.get(channel_kind)
        explicit = tuple(str(r) for r in config.get(key) or ()) if key else ()
        language = "en" if config.get("language") == "en" else "vi"
        reaches_people = not (channel_kind is ChannelKind.ZALO and config.get("mode", "oa") == "oa")
        return cls(id, channel_kind, district_code, Priority(min_priority), active, explicit, language, reaches_people)


@dataclass(frozen=True, slots=True)
class Person:
    """What routing needs to know of a user."""

    id: int
    role: Role
    district_code: str | None
    email: str | None = None
    telegram_chat_id: str | None = None
    language: str = "vi"
    active: bool = True
    phone: str | None = None

    def address(self, kind: ChannelKind) -> str | None:
        """Where this person receives messages of `kind`, if anywhere (Zalo: a ZNS phone number)."""
        if kind is ChannelKind.EMAIL:
            return (self.email or "").strip() or None
        if kind is ChannelKind.TELEGRAM:
            return (self.telegram_chat_id or "").strip() or None
        if kind is ChannelKind.ZALO and self.phone:
            try:
                return zalo_phone(self.phone)
            except ValueError:  # a landline or a foreign number: ZNS cannot reach it
                return None
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """One delivery to make: a recipient of a channel, and the language to write in."""

    channel_id: int
    recipient: str
    language: str


def channel_takes(channel: ChannelRule, event: ProblemEvent) -> bool:
    """Whether `channel` carries `event`: active, of its district (or of every district), urgent enough."""
    if not channel.active or not at_least(event.priority, channel.min_priority):
        return False
    return channel.district_code is None or channel.district_code == event.district_code


def concerned(person: Person, event: ProblemEvent) -> bool:
    """Whether `person` should hear about `event` (see the module's docstring)."""
    if not person.active:
        return False
    if person.role.is_district_scoped:
        return event.district_code is not None and person.district_code == event.district_code
    if person.role is Role.ADMIN:
        return event.district_code is None or event.priority in PROVINCE_PRIORITIES
    return False


def recipients(channel: ChannelRule, event: ProblemEvent, people: Iterable[Person]) -> list[tuple[str, str]]:
    """The (recipient, language) pairs of `event` on `channel`, each recipient once, in a stable order."""
    if not channel_takes(channel, event):
        return []
    if channel.kind is ChannelKind.WEBHOOK:
        return [(WEBHOOK_RECIPIENT, channel.language)]
    if channel.explicit:
        found = [(r.strip(), channel.language) for r in channel.explicit if r.strip()]
    elif not channel.reaches_people:
        found = []
    else:
        found = []
        for person in sorted(people, key=lambda p: p.id):
            address = person.address(channel.kind)
            if address and concerned(person, event):
                found.append((address, "en" if person.language == "en" else "vi"))
    seen: set[str] = set()
    unique = []
    for recipient, language in found:
        # Addresses differing only in case are one mailbox.
        if recipient.casefold() not in seen:
            seen.add(recipient.casefold())
            unique.append((recipient, language))
    return unique


def route(event: ProblemEvent, channels: Sequence[ChannelRule], people: Sequence[Person]) -> list[Route]:
    """Every delivery `event` needs: one per channel that carries it and recipient of that channel."""
    return [
        Route(channel.id, recipient, language)
        for channel in channels
        for recipient, language in recipients(channel, event, people)
    ]
