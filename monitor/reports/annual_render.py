"""The annual results report in the format asked for: DOCX (to edit and sign), PDF, XLSX (the tables), HTML."""

from __future__ import annotations

from monitor.reports.annual_document import AnnualDocument

ANNUAL_FORMATS = ("docx", "pdf", "xlsx", "html")
ANNUAL_MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
}


def render_annual(doc: AnnualDocument, fmt: str) -> bytes:
    """`doc` as bytes of `fmt` (one of ANNUAL_FORMATS)."""
    if fmt == "docx":
        from monitor.reports.annual_docx import render_docx

        return render_docx(doc)
    if fmt in ("pdf", "html"):
        from monitor.reports.annual_html import render_html, render_pdf

        return render_pdf(doc) if fmt == "pdf" else render_html(doc)
    if fmt == "xlsx":
        from monitor.reports.annual_xlsx import render_xlsx

        return render_xlsx(doc)
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(ANNUAL_FORMATS)}")


def file_name(doc: AnnualDocument, district_code: str | None, fmt: str) -> str:
    """'bao-cao-ket-qua-2026-183.docx', 'bao-cao-ket-qua-2026-tinh.pdf': ASCII, safe in any header or disk."""
    return f"bao-cao-ket-qua-{doc.year}-{district_code or 'tinh'}.{fmt}"
