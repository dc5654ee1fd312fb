"""A collector process's own small HTTP server: `GET /metrics` (and `/healthz`) for Prometheus.

A collector has no web framework (only `web` imports FastAPI) and must not depend on the web process
being up to be watched, so it answers Prometheus itself: HTTP/1.1 with keep-alive, GET and HEAD, bounded
request lines and headers, an idle timeout. The body is the exporter's cached snapshot (`monitor.metrics.exporter`),
gzip-encoded when asked. Shard I listens on `COLLECTOR_METRICS_PORT + I` unless told otherwise. Given a
token (MONITOR_METRICS_TOKEN), `/metrics` answers only a request bearing it; `/healthz` stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from monitor.metrics.exporter import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, MetricsExporter, scrape_allowed

log = logging.getLogger(__name__)

COLLECTOR_METRICS_PORT = 9180
MAX_LINE = 8192
MAX_HEADERS = 100
IDLE_TIMEOUT_S = 60.0
MAX_REQUESTS_PER_CONNECTION = 1000
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


def collector_metrics_port(shard_index: int, base: int = COLLECTOR_METRICS_PORT) -> int:
    """The default metrics port of a collector shard: several collectors on one host never collide."""
    return base + shard_index


class _BadRequest(Exception):
    pass


class MetricsServer:
    """Serves one exporter on `host:port` (port 0: any free port, see `port` after `start()`)."""

    def __init__(
        self,
        exporter: MetricsExporter,
        host: str = "127.0.0.1",
        port: int = COLLECTOR_METRICS_PORT,
        *,
        token: str | None = None,
    ) -> None:
        self.exporter = exporter
        self.token = token
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; the metrics are served from then on."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics at http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close the open connections."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                try:
                    method, path, headers, keep_alive = await asyncio.wait_for(_read_request(reader), IDLE_TIMEOUT_S)
                except _BadRequest as exc:
                    await _write(writer, 400, {"Content-Type": "text/plain"}, f"{exc}\n".encode(), keep_alive=False)
                    return
                status, answer_headers, body = await self._answer(method, path, headers)
                await _write(writer, status, answer_headers, b"" if method == "HEAD" else body, keep_alive, len(body))
                if not keep_alive:
                    return
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return  # an idle, vanished or misbehaving client: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        route = path.split("?", 1)[0]
        if route not in ("/metrics", "/healthz"):
            return 404, {"Content-Type": "text/plain"}, b"not found: try /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, {"Content-Type": "text/plain", "Allow": "GET, HEAD"}, b"method not allowed\n"
        if route == "/healthz":
            return 200, {"Content-Type": "text/plain"}, b"ok\n"
        if not scrape_allowed(self.token, headers.get("authorization", "")):
            return 401, dict(UNAUTHORIZED_HEADERS), UNAUTHORIZED_BODY
        answer = await self.exporter.respond(headers.get("accept-encoding", ""))
        return 200, dict(answer.headers), answer.body


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bool]:
    """Method, path, headers (lower-case names) and whether the client keeps the connection open."""
    line = await reader.readuntil(b"\r\n")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("malformed request line")
    method, path, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest("malformed header")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest("too many headers")
    if headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers:
        raise _BadRequest("a request body is not expected here")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, path, headers, keep_alive


async def _write(
    writer: asyncio.StreamWriter,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    keep_alive: bool,
    length: int | None = None,
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [
        f"Content-Length: {len(body) if length is None else length}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    writer.write(body)
    await writer.drain()


__all__ = ["COLLECTOR_METRICS_PORT", "MetricsServer", "collector_metrics_port"]
