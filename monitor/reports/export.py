"""An uptime report as a file for the offices: CSV (UTF-8 with BOM, so Excel reads Vietnamese), XLSX, JSON.

Headers are Vietnamese first (English with `language="en"`); people read hours and percentages, the JSON
keeps seconds and fractions for programs. Every file carries the period, the time it was made and how the
figures were computed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import xlsxwriter

from monitor.i18n import format_date, format_datetime
from monitor.reports.sla import SlaReport
from monitor.reports.uptime import METHOD_EN, METHOD_VI, UptimeReport, UptimeRow

FORMATS = ("csv", "xlsx", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}

#: (key, Vietnamese, English, how a value is shown to people)
COLUMNS: Sequence[tuple[str, str, str, str]] = (
    ("key", "Mã", "Code", "text"),
    ("name", "Tên", "Name", "text"),
    ("district_code", "Mã huyện/khu vực", "District", "text"),
    ("commune_code", "Mã xã", "Commune", "text"),
    ("kind", "Loại thiết bị", "Kind", "text"),
    ("devices", "Số thiết bị", "Devices", "int"),
    ("availability", "Tỷ lệ hoạt động (%)", "Availability (%)", "percent"),
    ("up_s", "Hoạt động (giờ)", "Up (h)", "hours"),
    ("degraded_s", "Suy giảm (giờ)", "Degraded (h)", "hours"),
    ("down_s", "Mất kết nối (giờ)", "Down (h)", "hours"),
    ("unknown_s", "Không rõ (giờ)", "Unknown (h)", "hours"),
    ("maintenance_s", "Bảo trì (giờ)", "Maintenance (h)", "hours"),
    ("outages", "Số lần mất kết nối", "Outages", "int"),
    ("longest_outage_s", "Lần mất lâu nhất (giờ)", "Longest outage (h)", "hours"),
    ("mtbf_s", "MTBF (giờ)", "MTBF (h)", "hours"),
)


def _shown(value: Any, how: str) -> Any:
    if value is None:
        return ""
    if how == "hours":
        return round(float(value) / 3600, 2)
    if how == "percent":
        return round(float(value) * 100, 3)
    return value


def _rows(report: UptimeReport) -> list[UptimeRow]:
    return [*report.rows, report.total]


def _title(report: UptimeReport, language: str) -> str:
    period = f"{format_date(report.first)} – {format_date(report.last)}"
    return f"Uptime report, {period}" if language == "en" else f"Báo cáo thời gian hoạt động, {period}"


def as_json(report: UptimeReport, made_at: datetime) -> bytes:
    """The report as JSON: seconds and fractions, the rows, the total, the maintenance laid over it."""
    body = {
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "by": report.by.value,
        "exclude_maintenance": report.exclude_maintenance,
        "generated_at": made_at.isoformat(),
        "method": METHOD_EN,
        "method_vi": METHOD_VI,
        "rows": [row.as_dict() for row in report.rows],
        "total": report.total.as_dict(),
        "maintenance": report.maintenance,
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode()


def as_csv(report: UptimeReport, made_at: datetime, language: str = "vi") -> bytes:
    """The report as CSV, one line per row then the total; UTF-8 with a BOM for Excel."""
    return table_csv(COLUMNS, [row.as_dict() for row in _rows(report)], language)


def table_csv(columns: Sequence[tuple[str, str, str, str]], rows: Sequence[dict[str, Any]], language: str) -> bytes:
    """Rows as CSV under headers in `language`; UTF-8 with a BOM for Excel."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([(en if language == "en" else vi) for _, vi, en, _ in columns])
    for values in rows:
        writer.writerow([_shown(values[key], how) for key, _, _, how in columns])
    return ("\ufeff" + out.getvalue()).encode()


def as_xlsx(report: UptimeReport, made_at: datetime, language: str = "vi") -> bytes:
    """The report as an Excel workbook: a title, the period and method, then the table with its total."""
    method = METHOD_EN if language == "en" else METHOD_VI
    rows = [row.as_dict() for row in _rows(report)]
    sheet = "Uptime" if language == "en" else "Thời gian hoạt động"
    return table_xlsx(
        COLUMNS, rows, language, title=_title(report, language), method=method, made_at=made_at, sheet_name=sheet
    )


def table_xlsx(
    columns: Sequence[tuple[str, str, str, str]],
    rows: Sequence[dict[str, Any]],
    language: str,
    *,
    title: str,
    method: str,
    made_at: datetime,
    sheet_name: str,
) -> bytes:
    """Rows as an Excel workbook: the title, when it was made and how, then the table (its last row, the
    total, in bold)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet(sheet_name[:31])
    bold = book.add_format({"bold": True})
    header = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "border": 1, "bg_color": "#DDEBF7"})
    formats = {
        "hours": book.add_format({"num_format": "#,##0.00"}),
        "int": book.add_format({"num_format": "#,##0"}),
        "percent": book.add_format({"num_format": "0.000"}),
    }
    sheet.write(0, 0, title, book.add_format({"bold": True, "font_size": 14}))
    sheet.write(1, 0, f"{'Generated' if language == 'en' else 'Lập lúc'}: {format_datetime(made_at)}")
    sheet.write(2, 0, method)
    top = 4
    for column, (_, vi, en, _) in enumerate(columns):
        sheet.write(top, column, en if language == "en" else vi, header)
    for index, values in enumerate(rows, start=top + 1):
        is_total = index == top + len(rows)
        for column, (key, _, _, how) in enumerate(columns):
            value = _shown(values[key], how)
            if value == "":
                sheet.write_blank(index, column, None)
            else:
                sheet.write(index, column, value, bold if is_total and how == "text" else formats.get(how))
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 32)
    sheet.set_column(2, len(columns) - 1, 13)
    sheet.freeze_panes(top + 1, 2)
    sheet.autofilter(top, 0, top + max(0, len(rows) - 1), len(columns) - 1)
    book.close()
    return buffer.getvalue()


SLA_COLUMNS: Sequence[tuple[str, str, str, str]] = (
    ("key", "Mã", "Code", "text"),
    ("name", "Tên", "Name", "text"),
    ("opened", "Phiếu mở", "Opened", "int"),
    ("resolved", "Đã khắc phục", "Resolved", "int"),
    ("reopened", "Phiếu mở lại", "Reopened", "int"),
    ("reopenings", "Số lần mở lại", "Reopenings", "int"),
    ("breached", "Quá hạn SLA", "SLA breached", "int"),
    ("breach_rate", "Tỷ lệ quá hạn (%)", "Breach rate (%)", "percent"),
    ("mtta_s", "Thời gian tiếp nhận TB (giờ)", "Mean time to acknowledge (h)", "hours"),
    ("mttr_s", "Thời gian khắc phục TB (giờ)", "Mean time to repair (h)", "hours"),
)


def render_sla(report: SlaReport, fmt: str, made_at: datetime, language: str = "vi") -> bytes:
    """The SLA figures in `fmt` (one of FORMATS)."""
    rows = [row.as_dict() for row in [*report.rows, report.total]]
    if fmt == "json":
        body = {
            "from": report.first.isoformat(),
            "to": report.last.isoformat(),
            "by": report.by.value,
            "generated_at": made_at.isoformat(),
            "method": SLA_METHOD_EN,
            "method_vi": SLA_METHOD_VI,
            "rows": rows[:-1],
            "total": rows[-1],
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode()
    if fmt == "csv":
        return table_csv(SLA_COLUMNS, rows, language)
    if fmt == "xlsx":
        period = f"{format_date(report.first)} – {format_date(report.last)}"
        title = f"SLA of repair tickets, {period}" if language == "en" else f"Chỉ số SLA phiếu sửa chữa, {period}"
        method = SLA_METHOD_EN if language == "en" else SLA_METHOD_VI
        return table_xlsx(SLA_COLUMNS, rows, language, title=title, method=method, made_at=made_at, sheet_name="SLA")
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


SLA_METHOD_VI = (
    "Tính trên các phiếu mở trong kỳ. Thời gian tiếp nhận: từ khi mở phiếu đến lần tiếp nhận đầu. "
    "Thời gian khắc phục: thời gian phiếu ở trạng thái mở, cộng qua các lần mở lại. "
    "Tỷ lệ quá hạn: số phiếu quá hạn SLA trên số phiếu mở."
)
SLA_METHOD_EN = (
    "Over the tickets opened in the period. Time to acknowledge: from opening to the first acknowledgement. "
    "Time to repair: the time the ticket was open, summed over its reopenings. "
    "Breach rate: tickets that missed their SLA due time over the tickets opened."
)


def render(report: UptimeReport, fmt: str, made_at: datetime, language: str = "vi") -> bytes:
    """The report in `fmt` (one of FORMATS)."""
    if fmt == "json":
        return as_json(report, made_at)
    if fmt == "csv":
        return as_csv(report, made_at, language)
    if fmt == "xlsx":
        return as_xlsx(report, made_at, language)
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
