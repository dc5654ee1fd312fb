"""The figures of the plan's annual results report, for one district (maintenance area) or the province.

The provincial plan asks every district to report its year's results before 15 December and the department to
report to the province before 20 December. `annual_figures` gathers what the service knows for that report:
the plan's coverage targets (communes with a radio system, the share based on IT-telecom), the fleet, uptime
by district, kind and commune, incidents and repairs with their SLA, bulletin boards, training, and the yearly
review of the stations with the next year's budget basis. The figures are computed once here; the document
(`annual_document`) turns them into sentences and tables, and each format writes that same document.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.bounds import MAX_YEAR, MIN_YEAR
from monitor.config import Settings
from monitor.errors import InvalidInput, Problem
from monitor.i18n import local_date
from monitor.inventory.choices import BroadcastTechnology, DeviceKind
from monitor.inventory.models import BroadcastSystem, Commune, Device, District
from monitor.reports.review import ReviewPolicy, YearlyReview, yearly_review
from monitor.reports.sla import SlaBy, SlaReport, sla_report
from monitor.reports.submission import Deadlines, SubmissionRow, submission_status
from monitor.reports.timeline import period_bounds
from monitor.reports.training import Coverage, coverage
from monitor.reports.uptime import GroupBy, UptimeReport, UptimeRow, uptime_report
from monitor.tickets.choices import TicketSource
from monitor.tickets.models import Ticket

#: The plan's targets: every commune has a radio system; IT-telecom based in 80 % of them by 2025, all by 2030.
TARGET_RADIO = 1.0
TARGET_IP_2025 = 0.8
TARGET_IP_2030 = 1.0
#: The plan period the training share is also counted over (the plan runs 2021–2025, with a vision to 2030).
PLAN_FIRST_YEAR = 2021
#: Corrective work: what went wrong, as opposed to planned inspections.
CORRECTIVE = (TicketSource.AUTO.value, TicketSource.ALERTMANAGER.value, TicketSource.MANUAL.value)
WORST_COMMUNES = 10


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """The days a year's report covers (local days, both included) and the day it is due."""

    year: int
    first: date
    last: date
    due: date
    complete: bool  # False while the period is not over yet (the report is made before its end)


def _month_day(text: str, year: int) -> date:
    month, day = (int(part) for part in text.split("-"))
    try:
        return date(year, month, day)
    except ValueError:  # 02-29 outside a leap year
        return date(year, month, 28)


def report_period(year: int, *, today: date, settings: Settings, province: bool) -> ReportPeriod:
    """The period of year `year`'s report made on `today`: from the configured start (1 January, or e.g.
    15 December of the year before) to the day before the next period starts, cut at `today`."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput("year out of range", [Problem("year", f"a year from {MIN_YEAR} to {MAX_YEAR}")])
    if settings.report_period_start == "01-01":
        first, following = date(year, 1, 1), date(year + 1, 1, 1)
    else:  # a year that starts on another day ends in `year`: 15/12/2025 – 14/12/2026 is 2026's
        first, following = (
            _month_day(settings.report_period_start, year - 1),
            _month_day(settings.report_period_start, year),
        )
    last = date.fromordinal(following.toordinal() - 1)
    if first > today:
        raise InvalidInput(
            "the year has not started",
            [Problem("year", f"the reporting period of {year} starts on {first.isoformat()}, after today")],
        )
    due = _month_day(settings.report_province_due if province else settings.report_district_due, year)
    return ReportPeriod(year=year, first=first, last=min(last, today), due=due, complete=last < today)


@dataclass(frozen=True, slots=True)
class PlanCoverage:
    """Communes against the plan's targets: with a radio system, IT-telecom based, legacy still standing."""

    communes: int
    with_radio: int
    ip_based: int
    legacy_standing: int  # communes where a wired or FM system still stands
    to_convert: int  # communes with a radio system that is not IT-telecom based yet

    @property
    def share_radio(self) -> float | None:
        return None if self.communes == 0 else self.with_radio / self.communes

    @property
    def share_ip(self) -> float | None:
        return None if self.communes == 0 else self.ip_based / self.communes


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """Corrective tickets opened in the period for one cause (a fault code, `offline`, a manual report)."""

    kind: str
    tickets: int


@dataclass(slots=True)
class AnnualFigures:
    """Everything the annual report says, for one district (`district_code`) or the province (None)."""

    period: ReportPeriod
    made_at: datetime
    district_code: str | None
    district_name: str | None
    districts: list[tuple[str, str]]  # the districts the report covers, code and name
    coverage: PlanCoverage
    coverage_by_district: dict[str, PlanCoverage]
    devices_by_kind: dict[str, int]
    uptime_by_district: UptimeReport
    uptime_by_kind: UptimeReport
    uptime_by_commune: UptimeReport
    sla_by_district: SlaReport
    sla_by_kind: SlaReport
    incidents: list[IncidentLine]
    planned_tickets: int
    training_year: Coverage
    training_plan: Coverage
    plan_first_year: int
    review: YearlyReview
    #: The districts' own reports of the year, sent or not (the province's report only; empty for a district).
    submissions: list[SubmissionRow] = field(default_factory=list)

    @property
    def is_province(self) -> bool:
        return self.district_code is None

    @property
    def worst_communes(self) -> list[UptimeRow]:
        """The least available communes (that had devices judged), worst first."""
        judged = [row for row in self.uptime_by_commune.rows if row.figures.seconds.availability is not None]
        judged.sort(key=lambda row: (row.figures.seconds.availability or 0.0, -row.figures.outages.count, row.key))
        return judged[:WORST_COMMUNES]

    def kind_row(self, kind: str) -> UptimeRow | None:
        return next((row for row in self.uptime_by_kind.rows if row.key == kind), None)


def plan_coverage(session: Session, district_codes: list[str] | None) -> dict[str | None, PlanCoverage]:
    """The plan's coverage per district and in all (key None), from the communes' broadcast systems."""
    communes = select(Commune.code, Commune.district_code)
    systems = select(BroadcastSystem.commune_code, BroadcastSystem.technology).join(
        Commune, col(Commune.code) == col(BroadcastSystem.commune_code)
    )
    if district_codes is not None:
        communes = communes.where(col(Commune.district_code).in_(district_codes))
        systems = systems.where(col(Commune.district_code).in_(district_codes))
    district_of = dict(session.exec(communes).all())
    technologies: dict[str, set[str]] = {}
    for commune_code, technology in session.exec(systems):
        technologies.setdefault(commune_code, set()).add(technology)
    out: dict[str | None, PlanCoverage] = {}
    for key in [None, *sorted(set(district_of.values()))]:
        codes = [c for c, d in district_of.items() if key is None or d == key]
        radio = [c for c in codes if technologies.get(c)]
        ip = [c for c in radio if BroadcastTechnology.IP.value in technologies[c]]
        legacy = [c for c in radio if technologies[c] - {BroadcastTechnology.IP.value}]
        out[key] = PlanCoverage(
            communes=len(codes),
            with_radio=len(radio),
            ip_based=len(ip),
            legacy_standing=len(legacy),
            to_convert=len(radio) - len(ip),
        )
    return out


def _devices_by_kind(session: Session, district_codes: list[str] | None, last: date) -> dict[str, int]:
    query = (
        select(Device.kind, sa.func.count())
        .join(Commune, col(Commune.code) == col(Device.commune_code))
        .where(col(Device.active), sa.or_(col(Device.installed_on).is_(None), col(Device.installed_on) <= last))
        .group_by(col(Device.kind))
    )
    if district_codes is not None:
        query = query.where(col(Commune.district_code).in_(district_codes))
    counts = dict(session.exec(query).all())
    return {kind.value: int(counts.get(kind.value, 0)) for kind in DeviceKind}


def _incidents(session: Session, district_codes: list[str] | None, first: date, last: date) -> list[IncidentLine]:
    start, end = period_bounds(first, last)
    query = (
        select(Ticket.kind, sa.func.count())
        .where(
            col(Ticket.created_at) >= start,
            col(Ticket.created_at) < end,
            col(Ticket.source).in_(CORRECTIVE),
            # the fleet's incidents: a province ticket (a collector, Prometheus) is the service's own trouble
            col(Ticket.district_code).is_not(None),
        )
        .group_by(col(Ticket.kind))
    )
    if district_codes is not None:
        query = query.where(col(Ticket.district_code).in_(district_codes))
    counts = Counter({kind: int(n) for kind, n in session.exec(query).all()})
    return [IncidentLine(kind, n) for kind, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _planned_tickets(session: Session, district_codes: list[str] | None, first: date, last: date) -> int:
    start, end = period_bounds(first, last)
    query = (
        select(sa.func.count())
        .select_from(Ticket)
        .where(
            col(Ticket.source) == TicketSource.PLANNED.value,
            col(Ticket.resolve_due_at) >= start,
            col(Ticket.resolve_due_at) < end,
        )
    )
    if district_codes is not None:
        query = query.where(col(Ticket.district_code).in_(district_codes))
    return int(session.exec(query).one())


def annual_figures(
    session: Session,
    year: int,
    *,
    now: datetime,
    settings: Settings,
    district: District | None,
    policy: ReviewPolicy | None = None,
) -> AnnualFigures:
    """The figures of year `year`'s report for `district` (None: the province), as of `now`."""
    period = report_period(year, today=local_date(now), settings=settings, province=district is None)
    codes = None if district is None else [district.code]
    names = select(District.code, District.name).order_by(col(District.code))
    if codes is not None:
        names = names.where(col(District.code).in_(codes))
    districts = [(code, name) for code, name in session.exec(names).all()]
    first, last = period.first, period.last
    exclude = settings.report_exclude_maintenance

    def uptime(by: GroupBy) -> UptimeReport:
        return uptime_report(session, first, last, now=now, by=by, districts=codes, exclude_maintenance=exclude)

    coverages = plan_coverage(session, codes)
    plan_first = min(PLAN_FIRST_YEAR, year)
    sla_by_district = sla_report(session, first, last, by=SlaBy.DISTRICT, districts=codes, sources=CORRECTIVE)
    submissions = []
    if district is None:
        every = submission_status(
            session, year, district_codes=None, today=local_date(now), deadlines=Deadlines.of(settings)
        )
        submissions = [row for row in every if row.district_code is not None]
    return AnnualFigures(
        period=period,
        made_at=now,
        district_code=None if district is None else district.code,
        district_name=None if district is None else district.name,
        districts=districts,
        coverage=coverages[None],
        coverage_by_district={key: value for key, value in coverages.items() if key is not None},
        devices_by_kind=_devices_by_kind(session, codes, last),
        uptime_by_district=uptime(GroupBy.DISTRICT),
        uptime_by_kind=uptime(GroupBy.KIND),
        uptime_by_commune=uptime(GroupBy.COMMUNE),
        sla_by_district=sla_by_district,
        sla_by_kind=sla_report(session, first, last, by=SlaBy.KIND, districts=codes, sources=CORRECTIVE),
        incidents=_incidents(session, codes, first, last),
        planned_tickets=_planned_tickets(session, codes, first, last),
        training_year=coverage(session=session, district_codes=codes, first=first, last=last),
        training_plan=coverage(session=session, district_codes=codes, first=date(plan_first, 1, 1), last=last),
        plan_first_year=plan_first,
        review=yearly_review(
            session, first, last, now=now, districts=codes, policy=policy or ReviewPolicy.from_settings(settings)
        ),
        submissions=submissions,
    )
