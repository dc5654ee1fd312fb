"""The fleet file by upload (administrators): the same reading and checking as `monitor fleet import`, every
refused row named with its line, a dry run to check a file first, and an entry in the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, File, Form, UploadFile
from pydantic import BaseModel

from monitor.auth.audit import AuditAction, record
from monitor.auth.models import Role
from monitor.inventory.fleetfile import read_fleet_bytes
from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows
from monitor.web.bodies import api_router
from monitor.web.deps import AuditActor, Principal, SessionDep, SettingsDep, require_roles
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/fleet", tags=["inventory"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


class ImportAnswer(BaseModel):
    """What the file did (or, in a dry run, would do): devices valid, created, updated, unchanged."""

    file: str
    valid: int
    created: int
    updated: int
    unchanged: int
    dry_run: bool


@router.post("/import", response_model=ImportAnswer, responses=problems(400, 403, 422))
def import_fleet(
    session: SessionDep,
    settings: SettingsDep,
    _admin: Admin,
    actor: AuditActor,
    file: Annotated[UploadFile, File(description="a fleet file, CSV or YAML (see examples/fleet.csv)")],
    dry_run: Annotated[bool, Form(description="check only, write nothing")] = False,
    file_format: Annotated[Literal["csv", "yaml"] | None, Form(description="default: from the file's name")] = None,
) -> ImportAnswer:
    """Add or update devices from a fleet file (by code). Any bad row refuses the whole file: the 422 lists each
    refused row as `line`, `field` and `reason`, as the CLI prints them."""
    name = file.filename or "fleet.csv"
    data = file.file.read(settings.web_max_upload_bytes + 1)
    raw = read_fleet_bytes(data, name, file_format)
    rows = validate_fleet_rows(raw, session=session, source=name)
    if dry_run:
        session.rollback()
        return ImportAnswer(file=name, valid=len(rows), created=0, updated=0, unchanged=0, dry_run=True)
    result = apply_fleet_rows(rows, session=session)
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    record(AuditAction.FLEET_IMPORTED, session=session, actor=actor, target=name, details=counts)
    session.commit()
    return ImportAnswer(file=name, valid=len(rows), dry_run=False, **counts)
