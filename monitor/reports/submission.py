"""Submission of the signed annual results report: who sent theirs, who is late, and the reminders sent.

The provincial plan asks each district to send its annual results report to the provincial department by
15 December, and the department to report to the province and the ministry by 20 December (both dates are
settings: `report_district_due`, `report_province_due`). A district officer uploads the SIGNED report (a
DOCX, or more often a scanned PDF); an upload for the same (year, district) replaces the current one, and
the earlier rows stay, marked `superseded_at`, as the history. `district_code` None is the province's own.

Files live under `{data_dir}/report-submissions/{year}/{district code or "province"}/{uuid}.{ext}`, written
whole then renamed (as ticket photos are), the type decided by the bytes, never by the name.

Status is derived when read, from the upload's time and the due day in Vietnam time (like healthchecks'
`get_status`), never stored: a due date changed in the settings changes every status at once.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from monitor.auth.models import User
from monitor.config import Settings
from monitor.db import UTCDateTime, begin_write, utcnow
from monitor.errors import InvalidInput, NotFound, Problem
from monitor.i18n import local_date
from monitor.inventory.models import District
from monitor.inventory.service import get_district
from monitor.labels import LabelledEnum
from monitor.text import uploaded_name

#: The word that names the province's own report where a district code would stand (CLI, API, folders).
PROVINCE = "province"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FOLDER = "report-submissions"


class SubmissionStatus(LabelledEnum):
    """Where a district (or the province) stands with its report of a year."""

    SUBMITTED = "submitted", "Đã nộp đúng hạn", "Submitted on time"
    SUBMITTED_LATE = "submitted_late", "Nộp muộn", "Submitted late"
    PENDING = "pending", "Chưa nộp (còn hạn)", "Pending"
    LATE = "late", "Quá hạn, chưa nộp", "Late"


class ReminderStage(LabelledEnum):
    """Which reminder of a deadline: in the days before it, or on the day itself."""

    AHEAD = "ahead", "Nhắc trước hạn", "Ahead of the due day"
    DUE = "due", "Nhắc đúng ngày hạn", "On the due day"


class ReportSubmission(SQLModel, table=True):
    """One uploaded signed annual results report of a district (None: the province's own) for a year.

    The current one of a (year, district) has no `superseded_at`; earlier uploads keep their row and file.
    """

    __tablename__ = "report_submissions"
    __table_args__ = (sa.Index("ix_report_submissions_year_district", "year", "district_code"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int
    district_code: str | None = Field(default=None, foreign_key="districts.code", max_length=16)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size_bytes: int
    sha256: str = Field(max_length=64)
    path: str = Field(max_length=300, description="relative to the data folder")
    uploaded_by: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    note: str | None = Field(default=None, max_length=500)
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportReminder(SQLModel, table=True):
    """A reminder of a deadline that was queued: at most one per (year, target, stage), by a unique key.

    `target` is a district code, or "province" for the reminder to the province's administrators. The row
    is inserted in the same transaction as the deliveries it queues, so two processes (or two runs) that
    race send once: the second one's insert is skipped and it queues nothing.
    """

    __tablename__ = "report_reminders"
    __table_args__ = (sa.UniqueConstraint("year", "target", "stage", name="uq_report_reminders_year_target_stage"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int
    target: str = Field(max_length=16)
    stage: str = Field(sa_type=sa.String(8))
    deliveries: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- due dates ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The due days (MM-DD) of the districts' and the province's reports, and the reminders' lead time."""

    district: str = "12-15"
    province: str = "12-20"
    reminder_days: int = 5

    @classmethod
    def of(cls, settings: Settings) -> Deadlines:
        """The deadlines the settings name."""
        return cls(settings.report_district_due, settings.report_province_due, settings.report_reminder_days)

    def district_due(self, year: int) -> date:
        """The last day (Vietnam time) for a district to submit its report of `year`."""
        return _on(year, self.district)

    def province_due(self, year: int) -> date:
        """The last day (Vietnam time) for the province to send its own report of `year`."""
        return _on(year, self.province)

    def due(self, year: int, district_code: str | None) -> date:
        """The due day of a district's report of `year`, or of the province's own (None)."""
        return self.province_due(year) if district_code is None else self.district_due(year)


def _on(year: int, month_day: str) -> date:
    month, day = (int(part) for part in month_day.split("-"))
    return date(year, month, day)


def status_of(uploaded_at: datetime | None, due: date, today: date) -> SubmissionStatus:
    """The status of a report due on `due` (its last day, Vietnam time), uploaded at `uploaded_at` (or not)."""
    if uploaded_at is None:
        return SubmissionStatus.LATE if today > due else SubmissionStatus.PENDING
    # Late means after the due day's end where the people are, not in UTC (7 hours earlier).
    return SubmissionStatus.SUBMITTED_LATE if local_date(uploaded_at) > due else SubmissionStatus.SUBMITTED


# --- the file -----------------------------------------------------------------------------------


def sniff_report(data: bytes) -> tuple[str, str] | None:
    """`(content type, extension)` of a PDF or a DOCX document, read from its bytes; None otherwise."""
    if data.startswith(b"%PDF-"):
        return PDF, "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())  # the central directory only: nothing is decompressed
        except (zipfile.BadZipFile, ValueError):
            return None
        if "word/document.xml" in names:
            return DOCX, "docx"
    return None


def _describe(data: bytes) -> str:
    head = data[:16]
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive that is not a Word document"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Word (.doc) or Excel document"
    return "not a PDF or DOCX document"


def check_report_file(filename: str, data: bytes, *, max_bytes: int) -> tuple[str, str]:
    """`(content type, extension)` of an acceptable signed report; InvalidInput saying why otherwise."""
    if "\x00" in filename:
        raise InvalidInput("report refused", [Problem("file", "a NUL character is not allowed in the file name")])
    if not data:
        raise InvalidInput("report refused", [Problem("file", "the file is empty")])
    if len(data) > max_bytes:
        reason = f"the file has {len(data):,} bytes, more than the {max_bytes:,} allowed"
        raise InvalidInput("report refused", [Problem("file", reason)])
    sniffed = sniff_report(data)
    if sniffed is None:
        reason = f"{_describe(data)}: only the signed report as PDF or DOCX is accepted, whatever the file's name"
        raise InvalidInput("report refused", [Problem("file", reason)])
    return sniffed


# --- service ------------------------------------------------------------------------------------


def submit_report(
    *,
    year: int,
    district_code: str | None,
    filename: str,
    data: bytes,
    note: str | None,
    uploaded_by: int | None,
    data_dir: Path,
    max_bytes: int,
    session: Session,
    district_codes: Collection[str] | None,
    now: datetime,
) -> ReportSubmission:
    """Store the signed report of `district_code` (None: the province's own) for `year`; the caller commits.

    NotFound for a district outside `district_codes` (or unknown), and for the province's own report asked
    by a district-scoped caller; InvalidInput for a file that is not a PDF or DOCX by its bytes, empty, or
    larger than `max_bytes`. The current upload of the same (year, district), if any, is marked superseded.
    """
    scope = None if district_codes is None else frozenset(district_codes)
    if district_code is None:
        if scope is not None:
            raise NotFound("district", PROVINCE)
    else:
        get_district(district_code, session=session, district_codes=scope)
    content_type, extension = check_report_file(filename, data, max_bytes=max_bytes)
    begin_write(session.connection())  # the current row read below stays current until this commits

    relative = PurePosixPath(FOLDER, str(year), district_code or PROVINCE, f"{uuid.uuid4().hex}.{extension}")
    target = Path(data_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, target)

    same = [col(ReportSubmission.year) == year, col(ReportSubmission.superseded_at).is_(None)]
    same.append(
        col(ReportSubmission.district_code).is_(None)
        if district_code is None
        else col(ReportSubmission.district_code) == district_code
    )
    session.execute(sa.update(ReportSubmission).where(*same).values(superseded_at=now))
    record = ReportSubmission(
        year=year,
        district_code=district_code,
        filename=uploaded_name(filename, "bao-cao"),
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        path=str(relative),
        uploaded_by=uploaded_by,
        uploaded_at=now,
        note=(note or "").strip() or None,
    )
    session.add(record)
    session.flush()
    return record


def get_submission(
    submission_id: int, *, year: int, session: Session, district_codes: Collection[str] | None
) -> ReportSubmission:
    """One upload of `year`; NotFound also when it is another district's, or the province's own for a
    district-scoped caller."""
    record = session.get(ReportSubmission, submission_id)
    if (
        record is None
        or record.year != year
        or (district_codes is not None and record.district_code not in district_codes)
    ):
        raise NotFound("report submission", str(submission_id))
    return record


def submission_path(record: ReportSubmission, data_dir: Path) -> Path | None:
    """The stored file of an upload, if it is still there and inside the data folder."""
    root = Path(data_dir).resolve()
    path = (root / record.path).resolve()
    return path if root in path.parents and path.is_file() else None


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    """A district's (None: the province's) standing for a year's report: due day, status, what was sent."""

    district_code: str | None
    name: str
    due: date
    status: SubmissionStatus
    current: ReportSubmission | None
    uploader: str | None
    #: Earlier uploads, replaced by `current`, newest first.
    earlier: list[ReportSubmission] = field(default_factory=list)


def submission_status(
    session: Session,
    year: int,
    *,
    district_codes: Collection[str] | None,
    today: date,
    deadlines: Deadlines = Deadlines(),  # frozen, hence safe to share
    province_name: str = "Sở (báo cáo của tỉnh)",
) -> list[SubmissionRow]:
    """Each district of the scope (by code), with the province's own report last for a caller of the whole
    province (`district_codes` None). `today` is the day in Vietnam time."""
    districts = select(District).order_by(col(District.code))
    if district_codes is not None:
        districts = districts.where(col(District.code).in_(list(district_codes)))
    units: list[tuple[str | None, str]] = [(d.code, d.name) for d in session.exec(districts)]
    if district_codes is None:
        units.append((None, province_name))
    uploads = select(ReportSubmission).where(col(ReportSubmission.year) == year)
    if district_codes is not None:
        uploads = uploads.where(col(ReportSubmission.district_code).in_(list(district_codes)))
    by_unit: dict[str | None, list[ReportSubmission]] = {}
    for record in session.exec(
        uploads.order_by(col(ReportSubmission.uploaded_at).desc(), col(ReportSubmission.id).desc())
    ):
        by_unit.setdefault(record.district_code, []).append(record)
    uploader_ids = {r.uploaded_by for rows in by_unit.values() for r in rows if r.uploaded_by is not None}
    names = dict(session.exec(select(User.id, User.full_name).where(col(User.id).in_(uploader_ids))).all())
    rows = []
    for code, name in units:
        found = by_unit.get(code, [])
        current = next((r for r in found if r.superseded_at is None), found[0] if found else None)
        due = deadlines.due(year, code)
        rows.append(
            SubmissionRow(
                district_code=code,
                name=name,
                due=due,
                status=status_of(current.uploaded_at if current else None, due, today),
                current=current,
                uploader=names.get(current.uploaded_by) if current and current.uploaded_by else None,
                earlier=[r for r in found if r is not current],
            )
        )
    return rows
