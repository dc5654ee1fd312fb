"""Long tables for the offices that live in Excel, written as they are read: CSV in chunks, XLSX in constant memory.

A row is a sequence of cells: text, numbers, instants (timezone-aware, shown dd/mm/yyyy HH:MM in Vietnam's
zone) or None (an empty cell). The rows come from an iterator and are never all held at once: a province's
million tickets go out in chunks of a few tens of kilobytes (CSV), or through xlsxwriter's `constant_memory`
mode, which writes each row to a temporary file as soon as the next one starts (XLSX).

    csv_chunks(header, rows)              the CSV's bytes, UTF-8 with a BOM (so Excel reads Vietnamese)
    write_xlsx(file, header, rows, ...)   the workbook into an open binary file
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO

import xlsxwriter

from monitor.i18n import format_datetime, to_local

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": CSV_MEDIA_TYPE, "xlsx": XLSX_MEDIA_TYPE}
#: Excel's rows per sheet; a longer table goes on into "Name (2)", header repeated.
XLSX_MAX_ROWS = 1_048_576
#: Bytes gathered before a CSV chunk is handed on: large enough that a million rows are not a million
#: writes to the socket, small enough to stay a few pages of memory.
CSV_CHUNK_BYTES = 64 * 1024

Cell = str | int | float | datetime | None


def _csv_cell(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value)
    return value


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], *, chunk_bytes: int = CSV_CHUNK_BYTES
) -> Iterator[bytes]:
    """The table as CSV (a BOM, the header, the rows), in chunks of about `chunk_bytes`; lazy: a chunk is
    made only when asked for, from the rows read so far."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def write_xlsx(
    file: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sheet_name: str,
    widths: Sequence[int] = (),
    max_rows: int = XLSX_MAX_ROWS,
) -> int:
    """Write the table as an Excel workbook into `file` (open, binary, seekable); returns the rows written.

    `constant_memory`: each row goes to a temporary file as soon as the next begins, so memory stays flat
    whatever the length. Instants are real dates shown dd/mm/yyyy hh:mm (local time, so that Excel sorts
    and filters them). Past `max_rows` per sheet the table goes on in another sheet under the same header.
    """
    book = xlsxwriter.Workbook(file, {"constant_memory": True, "remove_timezone": True})
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1})
    when = book.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    count = 0
    sheet = None
    line = 0
    sheets = 0

    def new_sheet() -> xlsxwriter.worksheet.Worksheet:
        nonlocal sheets
        sheets += 1
        name = sheet_name if sheets == 1 else f"{sheet_name} ({sheets})"
        added = book.add_worksheet(name[:31])
        for column, width in enumerate(widths):
            added.set_column(column, column, width)
        added.write_row(0, 0, list(header), bold)
        added.freeze_panes(1, 0)
        return added

    def finish(done: xlsxwriter.worksheet.Worksheet, last_line: int) -> None:
        done.autofilter(0, 0, max(last_line, 0), max(len(header) - 1, 0))

    for row in rows:
        if sheet is None or line >= max_rows - 1:
            if sheet is not None:
                finish(sheet, line)
            sheet, line = new_sheet(), 0
        line += 1
        for column, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime):
                sheet.write_datetime(line, column, to_local(value), when)
            else:
                sheet.write(line, column, value)
        count += 1
    if sheet is None:
        sheet = new_sheet()
    finish(sheet, line)
    book.close()
    return count
