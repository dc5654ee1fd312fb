"""The API's documentation pages, served from the package: Swagger UI works on a closed network.

FastAPI's own /docs and /redoc load their scripts from a CDN and start Swagger UI with an inline script;
here the files come from `static/vendor/` (fetched by scripts/vendor-static, committed with their
licences) and the start-up script is a file too, so that a Content-Security-Policy without inline scripts
holds.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC_DIR = files("monitor") / "web" / "static"
_PAGE = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API</title>
<link rel="icon" href="/static/vendor/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>
</body>
</html>
"""
# Swagger UI's bundle needs eval-free script from here only, its styles inline, and data: images.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class CachedStaticFiles(StaticFiles):
    """The service's own files. A URL carrying its content's hash (`?v=`, as the pages write them) never changes
    meaning, so the browser keeps it a year without asking again: on weak 4G a later page costs only itself."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            versioned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if versioned else "no-cache"
        return response


def install_docs(app: FastAPI) -> None:
    """Serve /static and /docs (create the app with docs_url=None, redoc_url=None)."""
    app.mount("/static", CachedStaticFiles(directory=str(STATIC_DIR)), name="static")
    page = _PAGE.format(title=app.title.split(" — ")[0])

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_POLICY})
