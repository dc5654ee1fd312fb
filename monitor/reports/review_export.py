"""The yearly review as a file: JSON (plain dicts: seconds, fractions, whole đồng) or an Excel workbook.

The workbook has one sheet per table (communes, devices proposed for replacement, planned work, costs, parts,
next year's estimate), Vietnamese headers first (English with `language="en"`), dates as dd/mm/yyyy. The JSON
lists every commune with its figures and only the flagged devices: the province's 100,000 devices would make
an answer nobody reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import xlsxwriter
from pydantic import BaseModel, Field

from monitor.i18n import format_date, format_datetime
from monitor.inventory.choices import BroadcastTechnology, SystemCondition
from monitor.reports.review import (
    METHOD_EN,
    METHOD_VI,
    CommuneReview,
    CostRow,
    DeviceReview,
    EstimateLine,
    MaintenanceRow,
    ReplaceReason,
    YearlyReview,
    kind_label,
)

REVIEW_FORMATS = ("json", "xlsx")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def device_dict(device: DeviceReview) -> dict[str, Any]:
    """A device's review as JSON values."""
    return {
        "code": device.code,
        "name": device.name,
        "kind": device.kind,
        "commune_code": device.commune_code,
        "installed_on": None if device.installed_on is None else device.installed_on.isoformat(),
        "age_years": device.age_years,
        "availability": _rounded(device.availability),
        "outages": device.outages,
        "down_s": round(device.down_s, 3),
        "repairs": device.repairs,
        "cost_vnd": device.cost_vnd,
        "reasons": [reason.value for reason in device.reasons],
    }


def commune_dict(commune: CommuneReview) -> dict[str, Any]:
    """A commune's review as JSON values (its devices counted, the flagged ones listed apart)."""
    return {
        "code": commune.code,
        "name": commune.name,
        "district_code": commune.district_code,
        "district_name": commune.district_name,
        "systems": [
            {"technology": technology, "condition": condition, "installed_year": year}
            for technology, condition, year in commune.systems
        ],
        "has_radio": commune.has_radio,
        "ip_based": commune.ip_based,
        "legacy": commune.legacy,
        "devices": len(commune.devices),
        "flagged": len(commune.flagged),
        "availability": _rounded(commune.availability),
        "outages": commune.outages,
        "repairs": commune.repairs,
        "cost_vnd": commune.cost_vnd,
    }


def _maintenance_dict(row: MaintenanceRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "scheduled": row.scheduled,
        "done": row.done,
        "done_on_time": row.done_on_time,
        "open_overdue": row.open_overdue,
    }


def _cost_dict(row: CostRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "tickets": row.tickets,
        "parts_vnd": row.parts_vnd,
        "labour_vnd": row.labour_vnd,
        "total_vnd": row.total_vnd,
    }


def _estimate_dict(line: EstimateLine) -> dict[str, Any]:
    return {
        "key": line.key,
        "label_vi": line.label_vi,
        "label_en": line.label_en,
        "quantity": line.quantity,
        "unit_vnd": line.unit_vnd,
        "amount_vnd": line.amount_vnd,
    }


def review_dict(review: YearlyReview, made_at: datetime) -> dict[str, Any]:
    """The whole review as plain dicts, as the API answers it."""
    policy, costs = review.policy, review.policy.costs
    return {
        "from": review.first.isoformat(),
        "to": review.last.isoformat(),
        "generated_at": made_at.isoformat(),
        "method": METHOD_EN,
        "method_vi": METHOD_VI,
        "policy": {
            "replace_after_years": policy.replace_after_years,
            "replace_after_repairs": policy.replace_after_repairs,
            "replace_below_availability": policy.replace_below_availability,
            "inspection_vnd": dict(costs.inspection_vnd),
            "replacement_vnd": dict(costs.replacement_vnd),
            "repair_fallback_vnd": costs.repair_fallback_vnd,
            "inspections_per_year": dict(costs.inspections_per_year),
        },
        "devices": review.devices,
        "communes": [commune_dict(commune) for commune in review.communes],
        "flagged_devices": [device_dict(device) for device in review.flagged_devices],
        "maintenance": [_maintenance_dict(row) for row in review.maintenance],
        "maintenance_total": _maintenance_dict(review.maintenance_total),
        "costs_by_district": [_cost_dict(row) for row in review.costs_by_district],
        "costs_by_kind": [_cost_dict(row) for row in review.costs_by_kind],
        "costs_total": _cost_dict(review.costs_total),
        "parts": [{"name": part.name, "count": part.count} for part in review.parts],
        "estimate": [_estimate_dict(line) for line in review.estimate],
        "estimate_total_vnd": review.estimate_total_vnd,
    }


def render_review(review: YearlyReview, fmt: str, made_at: datetime, language: str = "vi") -> bytes:
    """The review in `fmt` (one of REVIEW_FORMATS)."""
    if fmt == "json":
        return json.dumps(review_dict(review, made_at), ensure_ascii=False, indent=1).encode()
    if fmt == "xlsx":
        return review_xlsx(review, made_at, language)
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(REVIEW_FORMATS)}")


# --- the workbook ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    vi: str
    en: str
    value: Callable[[Any], Any]
    how: str = "text"  # text, int, vnd, percent, hours, date, years
    width: float = 13


def _labelled(enum: Any, value: str, language: str) -> str:
    try:
        return str(enum(value).label(language))
    except ValueError:
        return value


def _yes(value: bool, language: str) -> str:
    if language == "en":
        return "yes" if value else "no"
    return "có" if value else "không"


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 3)


def _commune_columns(language: str) -> list[_Column]:
    def systems(c: CommuneReview) -> str:
        return "; ".join(
            f"{_labelled(BroadcastTechnology, t, language)} ({_labelled(SystemCondition, s, language)}"
            + (f", {y})" if y else ")")
            for t, s, y in c.systems
        )

    return [
        _Column("Mã huyện/khu vực", "District", lambda c: c.district_code, width=10),
        _Column("Huyện/khu vực", "District name", lambda c: c.district_name, width=22),
        _Column("Mã xã", "Commune", lambda c: c.code, width=9),
        _Column("Tên xã", "Commune name", lambda c: c.name, width=24),
        _Column("Hệ thống truyền thanh", "Broadcast systems", systems, width=40),
        _Column("Có đài truyền thanh", "Has a radio system", lambda c: _yes(c.has_radio, language)),
        _Column("Ứng dụng CNTT-VT", "IT-telecom based", lambda c: _yes(c.ip_based, language)),
        _Column("Còn hữu tuyến/FM cần chuyển đổi", "Wired/FM left to convert", lambda c: _yes(c.legacy, language)),
        _Column("Số thiết bị", "Devices", lambda c: len(c.devices), "int"),
        _Column("Tỷ lệ hoạt động (%)", "Availability (%)", lambda c: _percent(c.availability), "percent"),
        _Column("Số lần mất kết nối", "Outages", lambda c: c.outages, "int"),
        _Column("Số lần sửa chữa", "Repairs", lambda c: c.repairs, "int"),
        _Column("Chi phí sửa chữa (đồng)", "Repair costs (VND)", lambda c: c.cost_vnd, "vnd", 16),
        _Column("Thiết bị đề xuất thay thế", "Devices to replace", lambda c: len(c.flagged), "int"),
    ]


def _device_columns(language: str, communes: dict[str, CommuneReview]) -> list[_Column]:
    def place(d: DeviceReview, attribute: str) -> str:
        commune = communes.get(d.commune_code)
        return "" if commune is None else str(getattr(commune, attribute))

    def reasons(d: DeviceReview) -> str:
        return "; ".join(ReplaceReason(r).label(language) for r in d.reasons)

    return [
        _Column("Huyện/khu vực", "District", lambda d: place(d, "district_name"), width=22),
        _Column("Xã", "Commune", lambda d: place(d, "name"), width=22),
        _Column("Mã thiết bị", "Device code", lambda d: d.code, width=14),
        _Column("Tên thiết bị", "Device name", lambda d: d.name, width=30),
        _Column("Loại", "Kind", lambda d: kind_label(d.kind, language), width=22),
        _Column("Ngày lắp đặt", "Installed on", lambda d: d.installed_on, "date", 12),
        _Column("Tuổi (năm)", "Age (years)", lambda d: d.age_years, "years"),
        _Column("Tỷ lệ hoạt động (%)", "Availability (%)", lambda d: _percent(d.availability), "percent"),
        _Column("Số lần mất kết nối", "Outages", lambda d: d.outages, "int"),
        _Column("Mất kết nối (giờ)", "Down (h)", lambda d: round(d.down_s / 3600, 2), "hours"),
        _Column("Số lần sửa chữa", "Repairs", lambda d: d.repairs, "int"),
        _Column("Chi phí sửa chữa (đồng)", "Repair costs (VND)", lambda d: d.cost_vnd, "vnd", 16),
        _Column("Lý do đề xuất thay thế", "Why replace", reasons, width=40),
    ]


def _maintenance_columns() -> list[_Column]:
    return [
        _Column("Mã", "Code", lambda r: r.key, width=10),
        _Column("Huyện/khu vực", "District", lambda r: r.name, width=26),
        _Column("Theo kế hoạch", "Scheduled", lambda r: r.scheduled, "int"),
        _Column("Đã thực hiện", "Done", lambda r: r.done, "int"),
        _Column("Đúng hạn", "On time", lambda r: r.done_on_time, "int"),
        _Column("Quá hạn chưa thực hiện", "Open, overdue", lambda r: r.open_overdue, "int"),
    ]


def _cost_columns() -> list[_Column]:
    return [
        _Column("Mã", "Code", lambda r: r.key, width=16),
        _Column("Tên", "Name", lambda r: r.name, width=32),
        _Column("Số phiếu sửa chữa", "Repair tickets", lambda r: r.tickets, "int"),
        _Column("Vật tư (đồng)", "Parts (VND)", lambda r: r.parts_vnd, "vnd", 16),
        _Column("Nhân công (đồng)", "Labour (VND)", lambda r: r.labour_vnd, "vnd", 16),
        _Column("Tổng (đồng)", "Total (VND)", lambda r: r.total_vnd, "vnd", 16),
    ]


def _estimate_columns(language: str) -> list[_Column]:
    return [
        _Column("Hạng mục", "Item", lambda e: e.label_en if language == "en" else e.label_vi, width=60),
        _Column("Số lượng", "Quantity", lambda e: e.quantity, "int"),
        _Column("Đơn giá (đồng)", "Unit cost (VND)", lambda e: e.unit_vnd, "vnd", 16),
        _Column("Thành tiền (đồng)", "Amount (VND)", lambda e: e.amount_vnd, "vnd", 18),
    ]


@dataclass(frozen=True, slots=True)
class _EstimateTotal:
    label_vi: str
    label_en: str
    quantity: None
    unit_vnd: None
    amount_vnd: int


class _Book:
    """An xlsxwriter workbook with the formats every sheet shares."""

    def __init__(self, language: str, title: str, made_at: datetime) -> None:
        self.buffer = io.BytesIO()
        self.book = xlsxwriter.Workbook(self.buffer, {"in_memory": True, "remove_timezone": True})
        self.language, self.title, self.made_at = language, title, made_at
        self.bold = self.book.add_format({"bold": True})
        self.big = self.book.add_format({"bold": True, "font_size": 14})
        self.header = self.book.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "border": 1, "bg_color": "#DDEBF7"}
        )
        numbers = {"int": "#,##0", "vnd": "#,##0", "percent": "0.000", "hours": "#,##0.00", "years": "0.0"}
        numbers["date"] = "dd/mm/yyyy"
        self.formats = {how: self.book.add_format({"num_format": fmt}) for how, fmt in numbers.items()}
        self.total_formats = {
            how: self.book.add_format({"num_format": fmt, "bold": True}) for how, fmt in numbers.items()
        }

    def sheet(
        self,
        name_vi: str,
        name_en: str,
        subtitle: str,
        columns: Sequence[_Column],
        rows: Sequence[Any],
        total: Any = None,
    ) -> None:
        """A sheet: the review's title, its subtitle and when it was made, then the table (the total in bold)."""
        english = self.language == "en"
        sheet = self.book.add_worksheet((name_en if english else name_vi)[:31])
        sheet.write(0, 0, self.title, self.big)
        sheet.write(1, 0, subtitle)
        sheet.write(2, 0, f"{'Generated' if english else 'Lập lúc'}: {format_datetime(self.made_at)}")
        top = 4
        for index, column in enumerate(columns):
            sheet.write(top, index, column.en if english else column.vi, self.header)
            sheet.set_column(index, index, column.width)
        everything = [*rows] + ([total] if total is not None else [])
        for line, row in enumerate(everything, start=top + 1):
            is_total = total is not None and line == top + len(everything)
            for index, column in enumerate(columns):
                value = column.value(row)
                formats = self.total_formats if is_total else self.formats
                if value is None or value == "":
                    sheet.write_blank(line, index, None)
                elif column.how == "date" and isinstance(value, date):
                    sheet.write_datetime(line, index, datetime.combine(value, datetime.min.time()), formats["date"])
                elif column.how == "text":
                    sheet.write_string(line, index, str(value), self.bold if is_total else None)
                else:
                    sheet.write_number(line, index, value, formats[column.how])
        sheet.freeze_panes(top + 1, 0)
        if everything:
            sheet.autofilter(top, 0, top + len(everything), len(columns) - 1)

    def close(self) -> bytes:
        self.book.close()
        return self.buffer.getvalue()


def review_xlsx(review: YearlyReview, made_at: datetime, language: str = "vi") -> bytes:
    """The review as an Excel workbook, one sheet per table."""
    english = language == "en"
    period = f"{format_date(review.first)} – {format_date(review.last)}"
    title = f"Yearly review of the stations, {period}" if english else f"Rà soát hiện trạng đài truyền thanh, {period}"
    book = _Book(language, title, made_at)
    communes = {commune.code: commune for commune in review.communes}
    policy = review.policy
    book.sheet(
        "Xã",
        "Communes",
        METHOD_EN if english else METHOD_VI,
        _commune_columns(language),
        review.communes,
    )
    rules = (
        f"Flagged: older than {policy.replace_after_years} years, more than {policy.replace_after_repairs} repairs, "
        f"or availability below {policy.replace_below_availability:.1%}"
        if english
        else f"Đề xuất khi: quá {policy.replace_after_years} năm sử dụng, sửa chữa quá {policy.replace_after_repairs} "
        f"lần, hoặc tỷ lệ hoạt động dưới {policy.replace_below_availability * 100:.1f}%"
    )
    book.sheet(
        "Đề xuất thay thế", "Flagged devices", rules, _device_columns(language, communes), review.flagged_devices
    )
    book.sheet(
        "Bảo trì định kỳ",
        "Maintenance",
        "Planned work due in the period" if english else "Công việc bảo trì, kiểm tra định kỳ đến hạn trong kỳ",
        _maintenance_columns(),
        review.maintenance,
        review.maintenance_total,
    )
    by_kind = [
        CostRow(row.key, kind_label(row.key, language), row.tickets, row.parts_vnd, row.labour_vnd)
        for row in review.costs_by_kind
    ]
    book.sheet(
        "Chi phí sửa chữa",
        "Costs",
        "Corrective tickets resolved in the period, by district then by kind of device"
        if english
        else "Phiếu sự cố được khắc phục trong kỳ, theo huyện rồi theo loại thiết bị",
        _cost_columns(),
        [*review.costs_by_district, review.costs_total, *by_kind],
    )
    book.sheet(
        "Vật tư thay thế",
        "Parts",
        "Parts most replaced" if english else "Vật tư được thay nhiều nhất",
        [
            _Column("Vật tư", "Part", lambda p: p.name, width=36),
            _Column("Số lần thay", "Times replaced", lambda p: p.count, "int"),
        ],
        review.parts,
    )
    total = _EstimateTotal("Tổng cộng", "Total", None, None, review.estimate_total_vnd)
    book.sheet(
        "Dự toán",
        "Estimate",
        "Next year's estimate" if english else "Dự toán kinh phí năm sau",
        _estimate_columns(language),
        review.estimate,
        total,
    )
    return book.close()


# --- the API's answer --------------------------------------------------------------------------


class ReviewPolicyPublic(BaseModel):
    """The rules and unit costs the review used."""

    replace_after_years: int
    replace_after_repairs: int
    replace_below_availability: float
    inspection_vnd: dict[str, int]
    replacement_vnd: dict[str, int]
    repair_fallback_vnd: int
    inspections_per_year: dict[str, int]


class BroadcastSystemPublic(BaseModel):
    technology: str
    condition: str
    installed_year: int | None


class CommuneReviewPublic(BaseModel):
    """A commune: its broadcast systems, its devices (counted; the flagged ones listed apart) and figures."""

    code: str
    name: str
    district_code: str
    district_name: str
    systems: list[BroadcastSystemPublic]
    has_radio: bool
    ip_based: bool
    legacy: bool = Field(description="a wired or FM system is still there, to convert")
    devices: int
    flagged: int
    availability: float | None
    outages: int
    repairs: int
    cost_vnd: int


class DeviceReviewPublic(BaseModel):
    """A device proposed for replacement, with its figures and why."""

    code: str
    name: str
    kind: str
    commune_code: str
    installed_on: date | None
    age_years: float | None
    availability: float | None
    outages: int
    down_s: float
    repairs: int
    cost_vnd: int
    reasons: list[ReplaceReason]


class MaintenanceRowPublic(BaseModel):
    """Planned work due in the period."""

    key: str
    name: str
    scheduled: int
    done: int
    done_on_time: int
    open_overdue: int


class CostRowPublic(BaseModel):
    """Corrective tickets resolved in the period and their costs, in đồng."""

    key: str
    name: str
    tickets: int
    parts_vnd: int
    labour_vnd: int
    total_vnd: int


class PartRowPublic(BaseModel):
    name: str
    count: int


class EstimateLinePublic(BaseModel):
    """A line of next year's estimate: amount = quantity x unit cost, in đồng."""

    key: str
    label_vi: str
    label_en: str
    quantity: int
    unit_vnd: int
    amount_vnd: int


class YearlyReviewPublic(BaseModel):
    """The yearly review of `from`..`to` (local days) and next year's estimate."""

    from_: date = Field(alias="from")
    to: date
    generated_at: datetime
    method: str
    method_vi: str
    policy: ReviewPolicyPublic
    devices: int
    communes: list[CommuneReviewPublic]
    flagged_devices: list[DeviceReviewPublic]
    maintenance: list[MaintenanceRowPublic]
    maintenance_total: MaintenanceRowPublic
    costs_by_district: list[CostRowPublic]
    costs_by_kind: list[CostRowPublic]
    costs_total: CostRowPublic
    parts: list[PartRowPublic]
    estimate: list[EstimateLinePublic]
    estimate_total_vnd: int


__all__ = [
    "REVIEW_FORMATS",
    "XLSX_MEDIA_TYPE",
    "YearlyReviewPublic",
    "commune_dict",
    "device_dict",
    "render_review",
    "review_dict",
    "review_xlsx",
]
