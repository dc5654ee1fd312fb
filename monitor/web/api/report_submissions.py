"""Submission of the signed annual results report: a district officer uploads theirs (PDF or DOCX), the
province sees who has sent it and who is late, and downloads it.

An officer reaches their own district only (another district's, or the province's own report, is a 404);
administrators submit for any district and the province's own report; leaders and technicians read or
nothing (403 on upload). The file's type is decided by its bytes, never by its name.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from monitor.auth.models import Role
from monitor.bounds import PRINTABLE
from monitor.db import utcnow
from monitor.errors import InvalidInput, NotFound, Problem
from monitor.i18n import local_today
from monitor.reports import submission
from monitor.reports.submission import DOCX, PDF, PROVINCE, Deadlines, ReportSubmission, SubmissionStatus
from monitor.web.bodies import api_router
from monitor.web.deps import (
    Principal,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    VisibleSubmission,
    require_roles,
)
from monitor.web.openapi import problems
from monitor.web.params import YearPath

router = api_router(prefix="/api/v1/reports/annual", tags=["reports"])
Submitter = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.OFFICER))]
_BINARY = {"schema": {"type": "string", "format": "binary"}}


class SubmissionFile(BaseModel):
    """One uploaded signed report."""

    id: int
    year: int
    district_code: str | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: int | None
    uploaded_at: datetime
    note: str | None
    superseded_at: datetime | None

    @classmethod
    def build(cls, record: ReportSubmission) -> SubmissionFile:
        return cls.model_validate(record, from_attributes=True)


class SubmissionRowPublic(BaseModel):
    """A district's standing (`district_code` null: the province's own report) for the year's report."""

    district_code: str | None
    name: str
    due: date
    status: SubmissionStatus
    status_label: str
    submitted_at: datetime | None
    submitted_by: str | None
    submission: SubmissionFile | None
    earlier: list[SubmissionFile]


@router.post("/{year}/submissions", response_model=SubmissionFile, status_code=201, responses=problems(400, 404))
def submit_report(
    year: YearPath,
    session: SessionDep,
    principal: Submitter,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the signed report: PDF (often scanned) or DOCX")],
    district: Annotated[
        str | None,
        Form(
            min_length=1,
            max_length=16,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description=f"the district's code, or `{PROVINCE}` for the province's own report; "
            "required for administrators, an officer's own district by default",
        ),
    ] = None,
    note: Annotated[str | None, Form(max_length=500, pattern=PRINTABLE)] = None,
) -> SubmissionFile:
    """Upload the signed annual results report of a district; a newer upload replaces the current one
    (which stays in the history)."""
    scope = principal.scope.district_codes
    if district is None:
        if scope is None:
            reason = f"a district's code, or {PROVINCE!r} for the province's own report"
            raise InvalidInput("which report?", [Problem("district", reason)])
        if len(scope) != 1:
            raise NotFound("district", "")
        district = next(iter(scope))
    max_bytes = settings.web_max_upload_bytes
    data = file.file.read(max_bytes + 1)  # parsed (spooled) before the route runs
    record = submission.submit_report(
        year=year,
        district_code=None if district == PROVINCE else district,
        filename=file.filename or "bao-cao",
        data=data,
        note=note,
        uploaded_by=principal.user.id,
        data_dir=settings.data_dir,
        max_bytes=max_bytes,
        session=session,
        district_codes=scope,
        now=utcnow(),
    )
    session.commit()
    return SubmissionFile.build(record)


@router.get("/{year}/submissions", response_model=list[SubmissionRowPublic])
def list_submissions(
    year: YearPath, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> list[SubmissionRowPublic]:
    """Who has sent the year's signed report and who is late: every district and the province's own for
    the province's people, an officer's or technician's own district for them."""
    rows = submission.submission_status(
        session,
        year,
        district_codes=principal.scope.district_codes,
        today=local_today(utcnow()),
        deadlines=Deadlines.of(settings),
    )
    return [
        SubmissionRowPublic(
            district_code=row.district_code,
            name=row.name,
            due=row.due,
            status=row.status,
            status_label=row.status.label_vi,
            submitted_at=row.current.uploaded_at if row.current else None,
            submitted_by=row.uploader,
            submission=SubmissionFile.build(row.current) if row.current else None,
            earlier=[SubmissionFile.build(r) for r in row.earlier],
        )
        for row in rows
    ]


@router.get(
    "/{year}/submissions/{submission_id}/file",
    response_class=FileResponse,
    responses={200: {"content": {PDF: _BINARY, DOCX: _BINARY}}},
)
def download_submission(record: VisibleSubmission, settings: SettingsDep) -> FileResponse:
    """The uploaded file as it was sent (an earlier, replaced upload too)."""
    path = submission.submission_path(record, settings.data_dir)
    if path is None:
        raise NotFound("report file", str(record.id))
    return FileResponse(path, media_type=record.content_type, filename=record.filename)
