"""The annual results report as a Word document (python-docx), laid out as Nghị định 30/2020/NĐ-CP, Phụ lục I
asks of an administrative document, for the officer to edit, sign and submit.

A4 portrait; margins top and bottom 20 mm, left 30 mm, right 18 mm; Times New Roman; the heading as a
borderless two-column table (issuing body on the left with its number, the national name and motto on the
right with the place and date line); "BÁO CÁO" and its subject; the body in 14 pt, justified, first lines
indented 1.27 cm, 6 pt between paragraphs; "Nơi nhận:" and the signature block side by side; the page
number at the top centre from page 2 on; the appendix tables after the signature, each on its own page.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt

from monitor.reports.annual_document import AnnualDocument, Paragraph, Table

FONT = "Times New Roman"
MARGINS_MM = {"top": 20, "bottom": 20, "left": 30, "right": 18}
BODY_PT = 14
TABLE_PT = 11


def _font(run: Any, size: float, *, bold: bool = False, italic: bool = False) -> None:
    run.font.name = FONT
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.italic = italic
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), FONT)  # Word picks East Asian text's font from here, Vietnamese included
    fonts.set(qn("w:cs"), FONT)


def _line(paragraph: Any, text: str, size: float, **style: bool) -> Any:
    run = paragraph.add_run(text)
    _font(run, size, **style)
    return run


def _para(container: Any, text: str = "", size: float = BODY_PT, *, align: Any = None, **style: bool) -> Any:
    paragraph = container.add_paragraph()
    fmt = paragraph.paragraph_format
    fmt.space_before, fmt.space_after, fmt.first_line_indent = Pt(0), Pt(0), None
    fmt.line_spacing = 1.0
    if align is not None:
        paragraph.alignment = align
    if text:
        _line(paragraph, text, size, **style)
    return paragraph


def _rule(container: Any, indent_cm: float) -> None:
    """A short centred line under a heading (NĐ 30: a third to a half of the text above), drawn as the bottom
    border of an empty paragraph narrowed by its indents."""
    paragraph = _para(container, size=4, align=WD_ALIGN_PARAGRAPH.CENTER)
    paragraph.paragraph_format.left_indent = Cm(indent_cm)
    paragraph.paragraph_format.right_indent = Cm(indent_cm)
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    paragraph._p.get_or_add_pPr().append(borders)


def _no_borders(table: Any) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def _page_number_header(section: Any) -> None:
    """The page number at the top centre, from page 2 on (the first page's header stays empty)."""
    section.different_first_page_header_footer = True
    paragraph = section.header.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = paragraph.add_run()
    _font(run, 13)
    for kind, text in (("begin", None), (None, "PAGE"), ("separate", None), (None, "2"), ("end", None)):
        if kind is not None:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
            run._r.append(element)
        elif text == "PAGE":
            instruction = OxmlElement("w:instrText")
            instruction.set(qn("xml:space"), "preserve")
            instruction.text = " PAGE "
            run._r.append(instruction)
        else:
            shown = OxmlElement("w:t")
            shown.text = text
            run._r.append(shown)


def _heading_block(document: Any, doc: AnnualDocument) -> None:
    table = document.add_table(rows=1, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _no_borders(table)
    left, right = table.rows[0].cells
    left.width, right.width = Cm(6.2), Cm(10.0)
    left.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _line(left.paragraphs[0], doc.parent_body, 13)
    _para(left, doc.body, 13, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)
    _rule(left, 1.8)
    _para(left, doc.number, 13, align=WD_ALIGN_PARAGRAPH.CENTER)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _line(right.paragraphs[0], "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 12.5, bold=True)
    _para(right, "Độc lập - Tự do - Hạnh phúc", 13, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)
    _rule(right, 2.3)
    _para(right, doc.place_date, 13, align=WD_ALIGN_PARAGRAPH.CENTER, italic=True)


def _body_paragraph(document: Any, block: Paragraph) -> None:
    paragraph = document.add_paragraph()
    fmt = paragraph.paragraph_format
    fmt.first_line_indent = Cm(1.27)
    fmt.space_before, fmt.space_after = Pt(0), Pt(6)
    fmt.line_spacing = 1.15
    paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    _line(
        paragraph,
        block.text,
        BODY_PT,
        bold=block.style in ("heading", "subheading"),
        italic=block.style == "to_write",
    )


def _cell(cell: Any, text: str, *, bold: bool = False, right: bool = False) -> None:
    paragraph = cell.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT if right else WD_ALIGN_PARAGRAPH.LEFT
    _line(paragraph, text, TABLE_PT, bold=bold)


def _table(document: Any, table: Table) -> None:
    grid = document.add_table(rows=1, cols=len(table.columns))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, column in zip(grid.rows[0].cells, table.columns, strict=True):
        _cell(cell, column.label, bold=True)
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    rows = [(row, False) for row in table.rows] + ([(table.total, True)] if table.total is not None else [])
    for values, is_total in rows:
        cells = grid.add_row().cells
        for cell, column, value in zip(cells, table.columns, values, strict=True):
            _cell(cell, table.shown(value, column.kind), bold=is_total, right=column.kind != "text")
    if not table.rows:
        cells = grid.add_row().cells
        merged = cells[0].merge(cells[-1])
        _cell(merged, "Không có số liệu trong kỳ.")


def _signature(document: Any, doc: AnnualDocument) -> None:
    table = document.add_table(rows=1, cols=2)
    _no_borders(table)
    table.autofit = False
    left, right = table.rows[0].cells
    left.width, right.width = Cm(8.0), Cm(8.2)
    _line(left.paragraphs[0], "Nơi nhận:", 12, bold=True, italic=True)
    for index, recipient in enumerate(doc.recipients):
        end = "." if index == len(doc.recipients) - 1 else ";"
        _para(left, f"- {recipient.rstrip(';.')}{end}", 11)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _line(right.paragraphs[0], doc.signer, BODY_PT, bold=True)
    for _ in range(4):
        _para(right, "", BODY_PT)
    _para(right, " ", BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)  # the signer's name, written when signed


def _appendix(document: Any, doc: AnnualDocument) -> None:
    for number, table in enumerate(doc.appendix, start=1):
        paragraph = _para(document, align=WD_ALIGN_PARAGRAPH.CENTER)
        page_break = paragraph.add_run()
        _font(page_break, BODY_PT)
        page_break.add_break(WD_BREAK.PAGE)
        _line(paragraph, f"Phụ lục {number}", BODY_PT, bold=True)
        _para(document, table.title.upper(), 13, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)
        _para(
            document,
            f"(Kèm theo Báo cáo {doc.number.replace('Số:', 'số').replace('  ', ' ')}, {doc.scope_name}, "
            f"kỳ {doc.period_text})",
            13,
            align=WD_ALIGN_PARAGRAPH.CENTER,
            italic=True,
        )
        _para(document, "", 6)
        _table(document, table)
        if table.note:
            _para(document, table.note, 11, italic=True)


def render_docx(doc: AnnualDocument) -> bytes:
    """The report as DOCX bytes."""
    document = Document()
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(BODY_PT)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    section.header_distance = Mm(10)
    _page_number_header(section)
    document.core_properties.title = f"{doc.title} – {doc.subject}"
    document.core_properties.language = "vi-VN"
    document.core_properties.author = doc.body

    _heading_block(document, doc)
    _para(document, "", 10)
    _para(document, doc.title, BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)
    _para(document, doc.subject, BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER, bold=True)
    _rule(document, 6.0)
    _para(document, "", 6)
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            _body_paragraph(document, block)
        else:
            _table(document, block)
    _body_paragraph(document, Paragraph(doc.closing))
    _signature(document, doc)
    _appendix(document, doc)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
