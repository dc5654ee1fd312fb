"""The pages people open: sign in and out, the language switch, and the overview (`/`).

Every page reaches data through the API's door and the same service functions as the API (see
`monitor.web.overview`). A technician's first page is their work ("Việc của tôi"); the others see the overview
of what their role and district cover.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from monitor.auth.audit import Actor
from monitor.auth.models import Role
from monitor.db import utcnow
from monitor.i18n import LANGUAGES, gettext
from monitor.web.api.auth import set_session_cookie, sign_in, sign_out
from monitor.web.bodies import api_router
from monitor.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, client_address
from monitor.web.overview import overview
from monitor.web.ui.door import PagePrincipal, safe_next
from monitor.web.ui.render import LANGUAGE_COOKIE, render

router = api_router(include_in_schema=False)  # a `def` page runs in one thread, its session closed there
#: A sign-in form carries this cookie's value back (double submit): another site cannot sign you in as itself.
LOGIN_CSRF_COOKIE = "login_csrf"


def _login_form(
    request: Request, *, next_path: str, error: str = "", username: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"next": next_path, "error": error, "username": username, "csrf_token": token},
        status_code=status,
    )
    settings = request.app.state.settings
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, secure=settings.cookie_secure, samesite="strict"
    )
    return response


@router.get("/login")
def login_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """The sign-in form (fields `username` and `password`)."""
    return _login_form(request, next_path=safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Sign in through the API's own sign-in (its throttle, its audit log), then go where the person was going."""
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_form(
            request,
            next_path=target,
            username=username,
            status=403,
            error=gettext("Phiên đăng nhập đã hết hạn. Vui lòng nhập lại."),
        )
    if not username or not password:
        return _login_form(
            request,
            next_path=target,
            username=username,
            status=422,
            error=gettext("Nhập tên đăng nhập và mật khẩu."),
        )
    try:
        signed = sign_in(username, password, request=request, session=session, settings=settings)
    except HTTPException as exc:
        if exc.status_code == 429:
            wait = (exc.headers or {}).get("Retry-After", "60")
            message = gettext("Đăng nhập sai quá nhiều lần. Thử lại sau %(seconds)s giây.") % {"seconds": wait}
        else:
            message = gettext("Sai tên đăng nhập hoặc mật khẩu.")
        return _login_form(request, next_path=target, username=username, status=exc.status_code, error=message)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, signed, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout_submit(request: Request, principal: PagePrincipal, session: SessionDep) -> Response:
    """Sign out (a form posted with the session's CSRF token, like every change)."""
    sign_out(request, principal, Actor.user(principal.user, client_address(request)), session)
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": "/login"})
    else:
        response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{language}")
def switch_language(
    request: Request, language: str, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    """Choose the language of the pages (kept a year in a cookie), then go back."""
    if language not in LANGUAGES:
        raise HTTPException(404, "no such language")
    response = RedirectResponse(safe_next(next), status_code=303)
    settings = request.app.state.settings
    response.set_cookie(
        LANGUAGE_COOKIE, language, max_age=365 * 86_400, httponly=False, secure=settings.cookie_secure, samesite="lax"
    )
    return response


@router.get("/")
def home(request: Request, principal: PagePrincipal, session: SessionDep) -> Response:
    """The overview of what the person's role and district cover; a technician's own work first."""
    if principal.role is Role.TECHNICIAN:
        return RedirectResponse("/tickets?view=mine", status_code=303)
    now = utcnow()
    max_age_s = request.app.state.settings.web_overview_max_age_s
    figures = overview(session, district_codes=principal.scope.district_codes, now=now, max_age_s=max_age_s)
    template = "_overview.html" if request.headers.get("hx-request") == "true" else "overview.html"
    return render(request, template, {"principal": principal, "o": figures, "now": now})
