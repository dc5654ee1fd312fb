"""The service's own pages for people: server-rendered (Jinja2, htmx for partial updates), Vietnamese first,
phone first, behind the same door as the API. `install_pages` adds them to the app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from monitor.web.ui import admin, fleet, pages, reports, tickets
from monitor.web.ui.door import install_page_errors
from monitor.web.ui.render import LanguageMiddleware


def install_pages(app: FastAPI) -> None:
    """The pages' routes, their language per request, and their errors as pages (after the API's handlers)."""
    app.include_router(pages.router)
    app.include_router(tickets.router)
    app.include_router(fleet.router)
    app.include_router(reports.router)
    app.include_router(admin.router)
    install_page_errors(app)
    app.add_middleware(LanguageMiddleware)
    # Pages, their files and the API's answers compressed for weak 4G (never an event stream: it is excluded).
    app.add_middleware(GZipMiddleware, minimum_size=1024)


__all__ = ["install_pages"]
