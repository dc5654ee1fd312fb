"""The annual results report's tables as an Excel workbook (xlsxwriter): a summary sheet, then one sheet per
table of the report, numbers kept as numbers (shares as percentages, money in đồng, hours as hours) so that
the offices can add, sort and chart them."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import xlsxwriter

from monitor.reports.annual_document import AnnualDocument, Paragraph, Table

_FORMATS = {
    "int": {"num_format": "#,##0"},
    "vnd": {"num_format": "#,##0"},
    "percent": {"num_format": "0.00%"},
    "hours": {"num_format": "#,##0.0"},
    "number": {"num_format": "#,##0.0"},
    "date": {"num_format": "dd/mm/yyyy"},
}


def _value(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return None
    if kind == "hours":
        return float(value) / 3600
    return value


def _sheet_name(number: int, table: Table, used: set[str]) -> str:
    name = f"PL{number} {table.title}"
    for bad in "[]:*?/\\":
        name = name.replace(bad, " ")
    name = name[:31].rstrip()
    while name in used:
        name = name[:28] + f"~{len(used)}"
    used.add(name)
    return name


def render_xlsx(doc: AnnualDocument) -> bytes:
    """The report's summary and tables as XLSX bytes."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    title = book.add_format({"bold": True, "font_size": 14})
    bold = book.add_format({"bold": True})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    italic = book.add_format({"italic": True, "text_wrap": True, "valign": "top"})
    header = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "border": 1, "bg_color": "#DDEBF7"})
    formats = {kind: book.add_format(spec) for kind, spec in _FORMATS.items()}
    total_formats = {kind: book.add_format({**spec, "bold": True}) for kind, spec in _FORMATS.items()}

    summary = book.add_worksheet("Báo cáo")
    summary.set_column(0, 0, 110)
    lines: list[tuple[str, Any]] = [
        (doc.parent_body, None),
        (doc.body, bold),
        (doc.number, None),
        (doc.place_date, italic),
        ("", None),
        (doc.title, title),
        (doc.subject, bold),
        ("", None),
    ]
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            style = {"heading": bold, "subheading": bold, "to_write": italic}.get(block.style, wrap)
            lines.append((block.text, style))
    lines.append((doc.closing, wrap))
    for row, (text, style) in enumerate(lines):
        summary.write_string(row, 0, text, style) if style is not None else summary.write_string(row, 0, text)

    used: set[str] = {"Báo cáo"}
    for number, table in enumerate(doc.tables, start=1):
        sheet = book.add_worksheet(_sheet_name(number, table, used))
        sheet.write_string(0, 0, f"Phụ lục {number}: {table.title}", title)
        sheet.write_string(1, 0, f"{doc.scope_name}, kỳ {doc.period_text}")
        top = 3
        for column, spec in enumerate(table.columns):
            sheet.write_string(top, column, spec.label, header)
        rows = [(row, False) for row in table.rows] + ([(table.total, True)] if table.total is not None else [])
        for index, (values, is_total) in enumerate(rows, start=top + 1):
            for column, spec in enumerate(table.columns):
                value = _value(values[column], spec.kind)
                shape = (total_formats if is_total else formats).get(spec.kind, bold if is_total else None)
                if value is None:
                    sheet.write_blank(index, column, None, shape)
                elif isinstance(value, date):
                    sheet.write_datetime(index, column, value, shape)
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    sheet.write_number(index, column, value, shape)
                else:
                    sheet.write_string(index, column, str(value), shape)
        if table.note:
            sheet.write_string(top + len(rows) + 2, 0, table.note, italic)
        widths = [max(len(spec.label), 10) for spec in table.columns]
        for column, width in enumerate(widths):
            sheet.set_column(column, column, min(width + 2, 40))
        sheet.freeze_panes(top + 1, 0)
    book.close()
    return buffer.getvalue()
