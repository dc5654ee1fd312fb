"""Problems and maintenance windows for people: list, acknowledge, schedule. Plain functions."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, select

from monitor.alerts.choices import ProblemStatus
from monitor.alerts.maintenance import validate_window
from monitor.alerts.models import AlertProblem, MaintenanceWindow
from monitor.errors import Conflict, NotFound
from monitor.inventory.models import Commune, Device, District


def list_problems(
    *,
    session: Session,
    district_codes: Collection[str] | None,
    statuses: Collection[str] = (ProblemStatus.ACTIVE.value,),
    district: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AlertProblem]:
    """Problems newest first; a district-scoped caller sees only their district's."""
    query = select(AlertProblem).where(col(AlertProblem.status).in_(list(statuses)))
    if district_codes is not None:
        query = query.where(col(AlertProblem.district_code).in_(list(district_codes)))
    if district:
        query = query.where(AlertProblem.district_code == district)
    return list(session.exec(query.order_by(col(AlertProblem.id).desc()).limit(limit).offset(offset)))


def get_problem(problem_id: int, *, session: Session, district_codes: Collection[str] | None) -> AlertProblem:
    problem = session.get(AlertProblem, problem_id)
    if problem is None or (district_codes is not None and problem.district_code not in district_codes):
        raise NotFound("problem", str(problem_id))
    return problem


def acknowledge(
    problem_id: int, *, note: str, user_id: int, session: Session, district_codes: Collection[str] | None, now: datetime
) -> AlertProblem:
    """Someone takes the problem in hand; the acknowledgement lasts until the problem is resolved."""
    problem = get_problem(problem_id, session=session, district_codes=district_codes)
    if problem.status == ProblemStatus.RESOLVED.value:
        raise Conflict("the problem is already resolved")
    problem.acknowledged_at, problem.acknowledged_by = now, user_id
    problem.acknowledgement_note, problem.updated_at = note.strip()[:1000], now
    session.add(problem)
    session.flush()
    return problem


def district_of_scope(scope: str, code: str, *, session: Session) -> str | None:
    """The district a window's scope lies in (None for a kind of device: province-wide)."""
    if scope == "district":
        return code if session.get(District, code) is not None else None
    if scope == "commune":
        commune = session.get(Commune, code)
        return commune.district_code if commune is not None else None
    if scope == "device":
        device = session.exec(select(Device).where(Device.code == code)).first()
        commune = session.get(Commune, device.commune_code) if device is not None else None
        return commune.district_code if commune is not None else None
    return None


def create_window(
    window: MaintenanceWindow, *, session: Session, district_codes: Collection[str] | None
) -> MaintenanceWindow:
    """Schedule a maintenance window; a district-scoped user only inside their district."""
    validate_window(window)
    district = district_of_scope(window.scope, window.scope_code, session=session)
    if window.scope != "kind" and district is None:
        raise NotFound(window.scope, window.scope_code)
    if district_codes is not None and district not in district_codes:
        raise NotFound(window.scope, window.scope_code)
    session.add(window)
    session.flush()
    return window


def list_windows(*, session: Session, district_codes: Collection[str] | None) -> list[MaintenanceWindow]:
    windows = list(session.exec(select(MaintenanceWindow).order_by(col(MaintenanceWindow.starts_at).desc())))
    if district_codes is None:
        return windows
    return [w for w in windows if district_of_scope(w.scope, w.scope_code, session=session) in district_codes]


def get_window(window_id: int, *, session: Session, district_codes: Collection[str] | None) -> MaintenanceWindow:
    """One window; NotFound also when what it mutes lies outside `district_codes`."""
    window = session.get(MaintenanceWindow, window_id)
    if window is None or (
        district_codes is not None
        and district_of_scope(window.scope, window.scope_code, session=session) not in district_codes
    ):
        raise NotFound("maintenance window", str(window_id))
    return window


def end_window(window_id: int, *, session: Session, district_codes: Collection[str] | None, now: datetime) -> None:
    """Deactivate a window (kept for history)."""
    window = get_window(window_id, session=session, district_codes=district_codes)
    window.active = False
    if window.ends_at is None or window.ends_at > now:
        window.ends_at = max(now, window.starts_at)
    session.add(window)
    session.flush()
