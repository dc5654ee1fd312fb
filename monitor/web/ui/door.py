"""The pages' side of the one door: who is asking, and what a page answers when something goes wrong.

A page takes the same `Principal` as the API (`monitor.web.deps.get_principal`: the session cookie, its CSRF
token on every change) and reaches district data through the same scoped look-ups, so another district's
ticket is a 404 in a page exactly as in the API. What differs is the answer: a person who is not signed in is
sent to /login (and back afterwards), and an error is a page in their language, not a JSON document.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import Conflict, InvalidInput, MonitorError, NotFound
from monitor.i18n import N_, gettext
from monitor.web.deps import Principal, SessionDep, get_principal
from monitor.web.ui.render import render

#: Paths that are not pages: their errors stay problem-details JSON.
NOT_PAGES = ("/api/", "/static/", "/metrics", "/healthz", "/docs", "/openapi.json")


class SignInRequired(MonitorError):
    """A page was asked for without a valid session: the person signs in first."""


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


async def page_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in person of a page request (the API's door), or a redirect to /login."""
    try:
        principal = await get_principal(request, session)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise SignInRequired from exc
        raise
    return principal  # get_principal left the session's CSRF token in request.state for the page's forms


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this service only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _sign_in_first(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?next={quote(safe_next(target))}"
    if request.headers.get("hx-request") == "true":  # htmx follows this header with a full page load
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


TITLES = {
    400: N_("Yêu cầu không hợp lệ"),
    403: N_("Bạn không có quyền làm việc này"),
    404: N_("Không tìm thấy trang"),
    409: N_("Không thực hiện được"),
    422: N_("Thông tin chưa hợp lệ"),
    429: N_("Quá nhiều lần thử"),
}
OTHER_ERROR = N_("Có lỗi xảy ra")


def error_page(request: Request, status: int, detail: str = "") -> Response:
    """An error as a page (or, for htmx, the fragment shown in the page's message area)."""
    title = gettext(TITLES.get(status, OTHER_ERROR))
    template = "_error.html" if request.headers.get("hx-request") == "true" else "error.html"
    return render(request, template, {"status": status, "title": title, "detail": detail}, status_code=status)


def install_page_errors(app: FastAPI) -> None:
    """Answer the pages' errors as pages; the API keeps its problem details (the handlers installed before)."""
    api_handlers = dict(app.exception_handlers)

    async def sign_in_first(request: Request, _exc: Exception) -> Response:
        return _sign_in_first(request)

    app.add_exception_handler(SignInRequired, sign_in_first)

    def wrap(kind: type[Exception], status: int | None) -> None:
        original = api_handlers.get(kind)

        async def handler(request: Request, exc: Exception) -> Response:
            if is_page(request) or original is None:
                code = int(status or getattr(exc, "status_code", None) or 500)
                if code == 401:  # a dependency of the API's (a scoped list, say) found no session
                    return _sign_in_first(request)
                detail = "" if code == 404 else str(getattr(exc, "detail", "") or exc)
                return error_page(request, code, detail)
            return await original(request, exc)  # type: ignore[no-any-return]

        app.add_exception_handler(kind, handler)

    wrap(StarletteHTTPException, None)
    wrap(RequestValidationError, 422)
    wrap(NotFound, 404)
    wrap(Conflict, 409)
    wrap(InvalidInput, 422)
