"""How a page is rendered: one Jinja2 Environment for every request, the language of each request, the security
headers of every page, and the filters people read (dates dd/mm/yyyy in Vietnam time, durations in words).

The language is a ContextVar (`monitor.i18n.current_language`), set per request by `LanguageMiddleware` from
the `lang` cookie, then `Accept-Language`, else Vietnamese. The Environment's gettext callables read that
ContextVar when a template calls them, so two requests rendering at once in two languages never mix (which is
what `install_gettext_translations` on a shared Environment would do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor import __version__, i18n
from monitor.auth.audit import AuditAction
from monitor.auth.models import Role
from monitor.durations import format_duration
from monitor.health.states import DeviceState, fault_label
from monitor.i18n import LANGUAGES, format_date, format_datetime, gettext, ngettext, to_local
from monitor.inventory.choices import DeviceKind
from monitor.tickets.choices import EventKind, TicketAction, TicketSource, TicketStatus

LANGUAGE_COOKIE = "lang"
STATIC_DIR = files("monitor") / "web" / "static"


def page_policy(tile_url: str | None = None) -> str:
    """The Content-Security-Policy of every page: scripts and styles from this service only (no inline script,
    no eval), images from here (and the map's tile server, when one is set), nothing framed, forms posted here."""
    images = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0").replace("{y}", "0"))
        if parts.scheme in ("http", "https") and parts.hostname:
            images += f" {parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; connect-src 'self'; "
        "font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "worker-src 'self'; manifest-src 'self'"
    )


def choose_language(cookie: str | None, accept: str | None) -> str:
    """The language of a request: the `lang` cookie when it names one we speak, then the first language of
    `Accept-Language` we speak (by its q order), else Vietnamese."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else i18n.DEFAULT_LANGUAGE


class LanguageMiddleware:
    """Sets the request's language (a ContextVar) for everything the request runs, its threads included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", [])}
        cookie = None
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == LANGUAGE_COOKIE:
                cookie = value
        token = i18n.set_language(choose_language(cookie, headers.get("accept-language")))
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.reset_language(token)


# --- the filters people read ---------------------------------------------------------------------


def duration_words(seconds: float | None) -> str:
    """'2 ngày 3 giờ', '45 phút' (in the request's language): how long, the way people say it."""
    return "–" if seconds is None else format_duration(timedelta(seconds=seconds), i18n.get_language())


def since(at: datetime | None, now: datetime | None = None) -> str:
    """How long ago `at` was, in words."""
    if at is None:
        return "–"
    now = now or datetime.now(UTC)
    return duration_words((now - at).total_seconds())


def percent(share: float | None, digits: int = 2) -> str:
    """0.99641 -> '99,64%' in Vietnamese, '99.64%' in English."""
    if share is None:
        return "–"
    text = f"{share * 100:.{digits}f}%"
    return text.replace(".", ",") if i18n.get_language() == "vi" else text


def number(value: float | int | None) -> str:
    """1234567 -> '1.234.567' in Vietnamese, '1,234,567' in English."""
    if value is None:
        return "–"
    text = f"{round(value):,}"
    return text.replace(",", ".") if i18n.get_language() == "vi" else text


def _date(value: date | datetime | None) -> str:
    return "" if value is None else format_date(value)


def _datetime(value: datetime | None) -> str:
    return "" if value is None else format_datetime(value)


def _iso(value: datetime | None) -> str:
    return "" if value is None else to_local(value).isoformat(timespec="minutes")


def _label(value: Any) -> str:
    """A choice's label in the request's language (LabelledEnum), or the value itself."""
    label = getattr(value, "label", None)
    return str(label(i18n.get_language())) if callable(label) else str(value)


def _choice(kind: type[Any]) -> Any:
    def label(value: Any) -> str:
        try:
            return str(kind(value).label(i18n.get_language()))
        except ValueError:
            return str(value)

    return label


def _fault(code: str) -> str:
    return fault_label(code, i18n.get_language())


@cache
def _version(path: str) -> str:
    try:
        return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    except (FileNotFoundError, IsADirectoryError):
        return __version__


def static_url(path: str) -> str:
    """/static/<path>?v=<content hash>: cached for a year by the browser, refetched when the file changes."""
    return f"/static/{path}?v={_version(path)}"


@lru_cache(maxsize=8192)
def _translated_markup(language: str, message: str) -> Markup:
    """A template's message in `language`, as markup (the catalogue's text is trusted, like Jinja's own i18n)."""
    return Markup(i18n.translator(language).gettext(message))


def page_gettext(message: str, /, **variables: Any) -> Markup:
    """`_()` of the pages' templates, in the request's language: what Jinja's newstyle gettext does for an
    autoescaped template (the message as markup, `%(name)s` filled with its variables escaped, `%%` a percent
    sign), without its three calls deep per message (a queue page says a few hundred; they cost a seventh of
    its rendering). The message ids are the templates' literals: a bounded set, so each is looked up once."""
    return _translated_markup(i18n.get_language(), message) % variables


@cache
def environment() -> Environment:
    """The one Environment of the pages (templates in monitor/web/templates, autoescaped)."""
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship in the package: no stat of the file on every render
    )
    env.install_gettext_callables(gettext=gettext, ngettext=ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(_=page_gettext, gettext=page_gettext)  # every template is autoescaped (.html)
    env.filters.update(
        date=_date,
        datetime=_datetime,
        iso=_iso,
        duration=duration_words,
        since=since,
        percent=percent,
        number=number,
        label=_label,
        status_label=_choice(TicketStatus),
        action_label=_choice(TicketAction),
        state_label=_choice(DeviceState),
        kind_label=_choice(DeviceKind),
        source_label=_choice(TicketSource),
        event_label=_choice(EventKind),
        fault=_fault,
        role_label=_choice(Role),
        audit_label=_choice(AuditAction),
    )
    env.globals.update(static_url=static_url, version=__version__, languages=LANGUAGES)
    return env


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page (or, for an htmx request, the fragment it asks for) with the headers every page carries."""
    settings = request.app.state.settings
    values = {
        "request": request,
        "language": i18n.get_language(),
        "htmx": request.headers.get("hx-request") == "true",
        "path": request.url.path,
        "map_tile_url": settings.map_tile_url,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **(context or {}),
    }
    body = environment().get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    response.headers["Content-Security-Policy"] = page_policy(settings.map_tile_url)
    response.headers["Cache-Control"] = "no-store"  # people's data: never kept by a shared or back cache
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
