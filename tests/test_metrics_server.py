"""A collector's own /metrics server, over real sockets: gzip when asked, keep-alive, HEAD, and polite refusals."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator

import httpx
import pytest

from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings
from monitor.db import make_engine
from monitor.metrics import MetricsServer, collector_exporter, collector_metrics_port


@pytest.fixture
def collector(sqlite_settings: Settings) -> Iterator[Collector]:
    engine = make_engine(sqlite_settings)
    collector = Collector(sqlite_settings, engine, registry=load_profiles(), shard=(0, 2))
    collector.counters.record("http", "ok", 0.02)
    yield collector
    engine.dispose()


async def _raw(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def test_it_serves_the_collectors_metrics_plain_or_gzip(collector: Collector) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response, bytes]:
        server = MetricsServer(collector_exporter(collector), "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
                packed = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
                head = await client.head("/metrics")
            # Two requests on one connection: keep-alive, then the client closes.
            raw = await _raw(
                server.port,
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n"
                b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n",
            )
            return plain, packed, head, raw
        finally:
            await server.stop()

    plain, packed, head, raw = asyncio.run(scenario())
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'fleet_polls_total{protocol="http",outcome="ok"} 1' in plain.content
    assert b"fleet_device_up" not in plain.content, "a collector never exports the fleet's state"
    assert packed.headers["content-encoding"] == "gzip" and packed.content == plain.content
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    first, _, second = raw.partition(b"HTTP/1.1 200 OK\r\n")[2].partition(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: keep-alive" in first and b"ok\n" in first
    assert b"Content-Encoding: gzip" in second and b"Connection: close" in second
    body = second.split(b"\r\n\r\n", 1)[1]
    assert gzip.decompress(body) == plain.content


def test_it_refuses_what_it_does_not_serve(collector: Collector) -> None:
    async def scenario() -> list[bytes]:
        server = MetricsServer(collector_exporter(collector), "127.0.0.1", 0)
        await server.start()
        try:
            return [
                await _raw(server.port, b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n"),
                await _raw(server.port, b"DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"),
                await _raw(server.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
                await _raw(server.port, b"not http at all\r\n\r\n"),
            ]
        finally:
            await server.stop()

    missing, method, with_body, garbage = asyncio.run(scenario())
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert method.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in method
    assert with_body.startswith(b"HTTP/1.1 400 ")
    assert garbage.startswith(b"HTTP/1.1 400 ")


def test_with_a_token_only_its_bearer_reads_the_metrics(collector: Collector) -> None:
    async def scenario() -> list[httpx.Response]:
        server = MetricsServer(collector_exporter(collector), "127.0.0.1", 0, token="s3cret-metrics-token")
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                return [
                    await client.get("/metrics"),
                    await client.get("/metrics", headers={"Authorization": "Bearer wrong"}),
                    await client.get("/metrics", headers={"Authorization": "Basic czNjcmV0LW1ldHJpY3MtdG9rZW4="}),
                    await client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}),
                    await client.get("/healthz"),
                ]
        finally:
            await server.stop()

    none, wrong, basic, right, health = asyncio.run(scenario())
    for refused in (none, wrong, basic):
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert b"fleet_" not in refused.content and b"s3cret" not in refused.content
    assert right.status_code == 200 and b"fleet_polls_total" in right.content
    assert health.status_code == 200, "liveness stays open"


def test_each_shard_has_its_own_default_port() -> None:
    assert [collector_metrics_port(i) for i in range(3)] == [9180, 9181, 9182]
