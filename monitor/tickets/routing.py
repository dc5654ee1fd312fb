"""Routing: which district (or maintenance area) must fix the problems of a commune.

A problem of the province's service itself (scope `province`: a collector, Prometheus) is routed to no
district: its ticket's district is None, the province operator's (administrators; leaders read it), and the
scoped look-ups (`district_code IN (...)`) keep it out of every district's sight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, select

from monitor.errors import NotFound
from monitor.inventory.models import Commune, District

_PLACES = "monitor.tickets.places"


@dataclass(frozen=True, slots=True)
class Places:
    """The province's communes (code -> district code, name) and districts (code -> name)."""

    communes: Mapping[str, tuple[str, str]]
    districts: Mapping[str, str]


def places(session: Session) -> Places:
    """The communes and districts, read once per session: routing a storm of problems reads them once.

    Administrative units change with a reform, not during a session; a new session sees any change.
    """
    cached = session.info.get(_PLACES)
    if not isinstance(cached, Places):
        communes = {c.code: (c.district_code, c.name) for c in session.exec(select(Commune))}
        districts = {d.code: d.name for d in session.exec(select(District))}
        cached = session.info[_PLACES] = Places(communes, districts)
    return cached


def route_district(commune_code: str, *, session: Session, overrides: Mapping[str, str] | None = None) -> str:
    """The district responsible for `commune_code`: the deployment's override if any, else the commune's district.

    Overrides map commune codes to district codes: after the 2025 reform, a deployment may define
    maintenance areas that do not follow the former districts' borders. Raises NotFound for a commune
    that is not in the inventory (even when overridden: a ticket always stands in a real commune).
    """
    commune = places(session).communes.get(commune_code)
    if commune is None:
        raise NotFound("commune", commune_code)
    if overrides and commune_code in overrides:
        return overrides[commune_code]
    return commune[0]
