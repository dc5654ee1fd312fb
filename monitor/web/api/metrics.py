"""`GET /metrics`: the web process's Prometheus metrics (the fleet's state, tickets, the process).

The body comes from the exporter's cached snapshot (`monitor.metrics`), built off the event loop at most
once every few seconds, gzip-encoded when the scraper accepts it. Not in the OpenAPI schema: it is for
Prometheus, not for people. Keep it off the public side of a reverse proxy (it names every device); with
MONITOR_METRICS_TOKEN set, only a scrape bearing that token is answered.
"""

from __future__ import annotations

from fastapi import Request, Response

from monitor.metrics import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, MetricsExporter, scrape_allowed
from monitor.web.bodies import api_router

router = api_router(tags=["service"])


def get_exporter(request: Request) -> MetricsExporter:
    exporter: MetricsExporter = request.app.state.metrics
    return exporter


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The current snapshot of the metrics, in Prometheus text format 0.0.4."""
    token = request.app.state.settings.metrics_token
    if not scrape_allowed(token.get_secret_value() if token else None, request.headers.get("authorization", "")):
        return Response(UNAUTHORIZED_BODY, status_code=401, headers=UNAUTHORIZED_HEADERS)
    answer = await get_exporter(request).respond(request.headers.get("accept-encoding", ""))
    return Response(answer.body, headers=dict(answer.headers))
