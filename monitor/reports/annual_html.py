"""The annual results report as HTML (a preview in the browser) and as PDF (weasyprint, from that same HTML).

The template lives in `reports/templates/` with an Environment of this package's own (autoescape on: the
figures carry names people typed). The HTML is one self-contained file (its style inline, nothing loaded from
anywhere), so it opens from a disk, a mail or the API alike. The PDF is that page printed by weasyprint,
which needs Debian's pango and, for Times New Roman's metrics, Liberation Serif (`fonts-liberation2`).
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from monitor.errors import MonitorError
from monitor.reports.annual_document import AnnualDocument


class PdfUnavailable(MonitorError):
    """The PDF cannot be made on this machine (weasyprint or its system libraries are missing)."""


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("monitor.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(doc: AnnualDocument) -> bytes:
    """The report as one self-contained HTML page (UTF-8)."""
    return _environment().get_template("annual.html.j2").render(doc=doc).encode()


def render_pdf(doc: AnnualDocument) -> bytes:
    """The report as PDF, printed from its HTML."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # weasyprint loads pango with ctypes at import
        raise PdfUnavailable(f"the PDF needs pango (Debian: libpango-1.0-0 libpangoft2-1.0-0): {exc}") from exc
    pdf = HTML(string=render_html(doc).decode()).write_pdf()
    assert pdf is not None
    return bytes(pdf)
