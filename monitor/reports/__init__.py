"""Reports: uptime from the state history and its daily roll-ups, SLA figures from tickets, the yearly
review of the stations and the budget basis, the training register, and the plan's annual results report.

Where documents are rendered (decided here, kept by the `jinja` contract in `.importlinter`):

- This package renders its own documents. The annual report is needed from the CLI
  (`monitor report annual … --output FILE`, run by an officer or by cron) as much as from the API, so
  its renderers cannot live in `web`, which nothing may import. DOCX (python-docx) and XLSX (xlsxwriter)
  are built in code; the HTML preview and the PDF (weasyprint, from that same HTML) come from Jinja2
  templates kept in `reports/templates/`, with an Environment of this package's own (autoescape on,
  gettext from `monitor.i18n` per call, never installed globally).
- `web` renders the pages people browse, from `web/templates/`. A page that shows a report calls this
  package for the figures (or for the finished HTML fragment) and never its templates directly.
- Only `web` and `reports` import Jinja2.

Figures are computed once, in plain dataclasses, and every format writes the same ones, so the DOCX, the
PDF, the XLSX, the API's JSON and the pages never disagree.
"""
