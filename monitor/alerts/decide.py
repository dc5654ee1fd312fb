"""What is a problem: the dispatcher's decisions as plain functions over plain data. Pure, no I/O.

The dispatcher claims state changes, loads what these functions need, calls them, and writes what
they decide (see `monitor.alerts.dispatcher`). In the order it calls them:

    sync_device          a device's unresolved problems against its health: keep, resolve, open
    still_suppressed     whether what explained a suppressed problem is still there
    split_muted          due problems muted by an open maintenance window (first: muting hides nothing
                         of the true state, it only holds alerting back)
    group_due            device problems that fill their commune or district -> one grouped problem
    explain_by_parents   an offline device whose parent is down has no problem of its own
    members_now          the devices a grouped problem covers now (none: it is resolved)

Problems are anything with the attributes of `ProblemFacts` (the dispatcher passes its `AlertProblem`
rows, tests pass `Due`); results keep their order, which is the order tickets are opened in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from monitor.alerts.choices import ProblemStatus, SuppressionReason
from monitor.alerts.rules import AlertRules
from monitor.health.states import fault_label
from monitor.i18n import translator
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, problem_key

OFFLINE = "offline"
TITLE_MAX = 300
_stored = translator("vi").gettext  # problem and ticket titles are stored, so always in Vietnamese


@dataclass(frozen=True, slots=True)
class Subject:
    """What a maintenance window may cover: a device, where it stands and what it is."""

    device_code: str | None
    commune_code: str | None
    district_code: str | None
    kind: str | None


class ProblemFacts(Protocol):
    """What the decisions read of a problem."""

    @property
    def scope(self) -> str: ...
    @property
    def scope_code(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def device_id(self) -> int | None: ...
    @property
    def commune_code(self) -> str | None: ...
    @property
    def district_code(self) -> str | None: ...


P = TypeVar("P", bound=ProblemFacts)


@dataclass(frozen=True, slots=True)
class Due:
    """A problem as plain data (tests and callers without a row)."""

    scope: str
    scope_code: str
    kind: str
    device_id: int | None = None
    commune_code: str | None = None
    district_code: str | None = None


def subject_of(problem: ProblemFacts, device_kinds: Mapping[int | None, str]) -> Subject:
    """What a maintenance window may cover, of a problem: its device (if any), places and device kind."""
    device_code = problem.scope_code if problem.scope == ProblemScope.DEVICE.value else None
    return Subject(device_code, problem.commune_code, problem.district_code, device_kinds.get(problem.device_id))


# --- device problems follow device health -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSync:
    """What to do with one device's problems: `keep` (kind -> flapping to record), `resolve`, `open`."""

    keep: Mapping[str, bool] = field(default_factory=dict)
    resolve: tuple[str, ...] = ()
    open: tuple[str, ...] = ()


def sync_device(statuses: Mapping[str, str], faults: frozenset[str] | None, flapping: bool = False) -> DeviceSync:
    """A device's unresolved problems (`statuses`: kind -> status) brought in step with its health.

    `faults` is what health says now (`offline` when down); None when the device is gone from the
    inventory, which resolves everything. A problem whose fault is there is kept; an active `offline`
    problem of a flapping device that is up for the moment is kept too (one problem, not one per flap);
    any other is resolved. Each fault without a problem opens one, in the order of the fault codes.
    """
    wanted = faults if faults is not None else frozenset()
    keep: dict[str, bool] = {}
    resolve: list[str] = []
    for kind, status in statuses.items():
        if kind in wanted:
            keep[kind] = flapping if faults is not None else False
        elif faults is not None and flapping and kind == OFFLINE and status == ProblemStatus.ACTIVE.value:
            keep[kind] = True
        else:
            resolve.append(kind)
    opened = tuple(sorted(wanted - set(statuses))) if faults is not None else ()
    return DeviceSync(keep, tuple(resolve), opened)


def device_problem_title(kind: str, device_name: str) -> str:
    """The stored title of a device's problem: what is wrong, and with which device."""
    return f"{fault_label(kind)}: {device_name}"[:TITLE_MAX]


# --- suppressed problems are looked at again ----------------------------------------------------


def device_codes_of(keys: Iterable[str]) -> list[str]:
    """The device codes of those problem keys that name a device (`device:06613-CL01:offline`)."""
    return [key.split(":")[1] for key in keys if key.startswith("device:")]


def still_suppressed(
    reason: str | None,
    suppressed_by: str | None,
    *,
    muted: Callable[[], bool],
    open_groups: Collection[str],
    down_parents: Collection[str],
) -> bool:
    """Whether a suppressed problem stays suppressed: its window still mutes it (`muted()`, asked only for
    maintenance), its group is still active, or its parent (the key of its offline problem) still down.
    Without a reason nothing keeps it suppressed."""
    if reason == SuppressionReason.MAINTENANCE:
        return muted()
    if reason == SuppressionReason.GROUPED:
        return suppressed_by in open_groups
    if reason == SuppressionReason.PARENT_DOWN:
        return suppressed_by in down_parents
    return False


# --- due problems: mute, group, explain by a parent, or activate --------------------------------


def split_muted(problems: Sequence[P], muted: Callable[[P], bool]) -> tuple[list[P], list[P]]:
    """(muted by maintenance, the others), each in the given order."""
    held: list[P] = []
    rest: list[P] = []
    for problem in problems:
        (held if muted(problem) else rest).append(problem)
    return held, rest


@dataclass(frozen=True, slots=True)
class Counts:
    """Of one problem kind at one level (communes or districts): active devices per place, and the codes of
    those that have the problem now."""

    totals: Mapping[str, int] = field(default_factory=dict)
    having: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def count(self, place: str) -> int:
        """How many devices of `place` have the problem."""
        return len(self.having.get(place, ()))


@dataclass(frozen=True, slots=True)
class KindCounts:
    """One kind's counts per commune and per district."""

    communes: Counts
    districts: Counts


@dataclass(frozen=True, slots=True)
class Group:
    """A grouped problem: one kind over a commune or a district, with the codes of its devices."""

    scope: ProblemScope
    code: str
    kind: str
    members: Sequence[str]  # the counts' own list, not a copy: a storm asks for its group once per device
    commune_code: str | None
    district_code: str

    @property
    def key(self) -> str:
        """The grouped problem's identity (`commune:06184:offline`)."""
        return problem_key(self.scope, self.code, self.kind)


def _fills(count: int, total: int, minimum: int, share: float) -> bool:
    return count >= minimum and count >= share * total


def group_for(kind: str, commune: str, district: str, counts: KindCounts, rules: AlertRules) -> Group | None:
    """The grouped problem a device's problem of `kind` belongs to, if its district or its commune is full.

    A district is full when at least `district_min_devices` of its active devices, and `district_share` of
    them, have the problem; a commune when `commune_min_devices` and `commune_share` do. The district wins.
    """
    found = counts.districts.count(district)
    if _fills(found, counts.districts.totals.get(district, 0), rules.district_min_devices, rules.district_share):
        members = counts.districts.having.get(district, ())
        return Group(ProblemScope.DISTRICT, district, kind, members, None, district)
    found = counts.communes.count(commune)
    if _fills(found, counts.communes.totals.get(commune, 0), rules.commune_min_devices, rules.commune_share):
        members = counts.communes.having.get(commune, ())
        return Group(ProblemScope.COMMUNE, commune, kind, members, commune, district)
    return None


def kinds_to_count(problems: Iterable[ProblemFacts]) -> list[str]:
    """The kinds of the device problems among `problems`, in order of first appearance: what `group_due`
    needs counts of."""
    return list(dict.fromkeys(p.kind for p in problems if p.scope == ProblemScope.DEVICE.value))


def group_due(
    problems: Sequence[P], counts: Mapping[str, KindCounts], rules: AlertRules
) -> tuple[list[tuple[P, Group]], list[P]]:
    """(device problems folded into a group, with it; the problems kept), given the counts of every kind in
    `kinds_to_count(problems)`. Kept: problems that are not a device's first, then, kind by kind in order
    of first appearance, the device problems of places that are not full."""
    kept = [p for p in problems if p.scope != ProblemScope.DEVICE.value]
    grouped: list[tuple[P, Group]] = []
    for kind in kinds_to_count(problems):
        for problem in problems:
            if problem.scope != ProblemScope.DEVICE.value or problem.kind != kind:
                continue
            group = group_for(kind, problem.commune_code or "", problem.district_code or "", counts[kind], rules)
            if group is None:
                kept.append(problem)
            else:
                grouped.append((problem, group))
    return grouped, kept


def group_priority(scope: ProblemScope, priority: Priority) -> Priority:
    """A grouped problem weighs more than one device's: a commune one step, a district two."""
    steps = 2 if scope is ProblemScope.DISTRICT else 1
    for _ in range(steps):
        priority = AlertRules.more_urgent(priority)
    return priority


def group_title(group: Group, commune_name: str | None = None) -> str:
    """The stored title of a grouped problem (`Mất kết nối diện rộng: Xã Bắc Lãng (5 thiết bị)`)."""
    if group.scope is ProblemScope.DISTRICT:
        place = _stored("huyện/khu vực {code}").format(code=group.code)
    else:
        place = commune_name if commune_name is not None else _stored("xã {code}").format(code=group.code)
    title = _stored("{problem} diện rộng: {place} ({count} thiết bị)")
    return title.format(problem=fault_label(group.kind), place=place, count=len(group.members))


def needs_parent_check(problems: Iterable[P]) -> list[P]:
    """The problems a down parent may explain: a device's `offline`."""
    return [p for p in problems if p.kind == OFFLINE and p.device_id is not None]


def parent_problem_key(parent_code: str) -> str:
    """The key of the problem that explains its children's: the parent's `offline`."""
    return problem_key(ProblemScope.DEVICE, parent_code, OFFLINE)


def explain_by_parents(problems: Sequence[P], down_parents: Mapping[int, str]) -> tuple[list[tuple[P, str]], list[P]]:
    """(problems explained by a down parent, with its problem key; problems to activate), in order.

    `down_parents` maps a device id to the key of its down parent's `offline` problem, for the devices
    of `needs_parent_check(problems)`: a device with such a parent has no due problem of its own.
    """
    explained: list[tuple[P, str]] = []
    active: list[P] = []
    for problem in problems:
        parent = down_parents.get(problem.device_id or -1)
        if parent is not None:
            explained.append((problem, parent))
        else:
            active.append(problem)
    return explained, active


# --- groups follow their members ----------------------------------------------------------------


def members_now(group: ProblemFacts, counts: Counts) -> list[str]:
    """The sorted codes of the devices a grouped problem covers now; empty when it is over."""
    return sorted(counts.having.get(group.scope_code, ()))
