"""How the served processes run: the web process under uvicorn, its access log and its metrics warm-up."""

from __future__ import annotations

import asyncio
import logging

import httpx

from monitor.config import Settings
from monitor.db import make_engine
from monitor.runtime import QuietMachineTraffic, _server
from monitor.web.app import create_app
from tests.peers import free_port


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_served_web_process_logs_people_not_scrapes_and_warms_its_metrics(sqlite_settings: Settings) -> None:
    engine = make_engine(sqlite_settings)
    app = create_app(sqlite_settings, engine)
    port = free_port()
    server = _server(app, sqlite_settings, "127.0.0.1", port)
    access = logging.getLogger("uvicorn.access")
    # a second server adds no second filter
    _server(create_app(sqlite_settings, engine), sqlite_settings, "127.0.0.1", free_port())
    assert sum(isinstance(f, QuietMachineTraffic) for f in access.filters) == 1
    lines = Lines()
    access.addHandler(lines)

    async def run() -> list[int]:
        serving = asyncio.create_task(server.serve())
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(200):
                    if server.started:
                        break
                    await asyncio.sleep(0.05)
                for _ in range(200):  # warmed at start: a snapshot exists before anyone scrapes
                    if app.state.metrics._snapshot is not None:
                        break
                    await asyncio.sleep(0.05)
                assert app.state.metrics._snapshot is not None, "the first build started with the process"
                answers = [
                    (await client.get("/metrics")).status_code,
                    (await client.get("/healthz")).status_code,
                    (await client.post("/api/v1/heartbeats/NO-SUCH-DEVICE", json={})).status_code,
                ]
        finally:
            server.should_exit = True
            await serving
        return answers

    try:
        metrics, healthz, refused = asyncio.run(run())
    finally:
        access.removeHandler(lines)
        engine.dispose()
    assert (metrics, healthz) == (200, 200) and refused >= 400
    assert not any("/metrics" in line for line in lines.lines), "a successful scrape is not logged"
    assert any("/healthz" in line for line in lines.lines), "people's requests are"
    assert any("/api/v1/heartbeats/NO-SUCH-DEVICE" in line for line in lines.lines), "a refused heartbeat is"
