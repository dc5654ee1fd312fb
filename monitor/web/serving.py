"""How the web app is served: uvicorn, with a deadline on request headers and bounded connections.

uvicorn closes idle keep-alive connections but sets no deadline on a request's line and headers: a client
that connects and sends nothing, or a byte a second, keeps its connection forever, and enough of them
exhaust the process's file descriptors. Here a connection must deliver its headers within
`web_header_timeout_s` of connecting (or of starting its next request), or it is closed. Bodies are timed
by the guard at the door (`monitor.web.guard`); connections beyond `web_max_connections` get a 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from monitor.config import Settings


def protocol_with_header_deadline(timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose headers do not arrive within `timeout_s`."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(timeout_s, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def server_config(app: ASGIApp, settings: Settings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the service (configures logging)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=settings.web_access_log,
        lifespan="on",
        http=protocol_with_header_deadline(settings.web_header_timeout_s),
        limit_concurrency=settings.web_max_connections,
        timeout_keep_alive=5,
        # Open connections get this long to finish at shutdown; the process's own deadline is longer.
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout_s / 4)),
        **options,
    )
