"""The HTTP poller against real aiohttp servers on loopback: every way a device can answer becomes one observation."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.collectors.errors import CollectError
from monitor.collectors.http import HttpPoller, build_url
from monitor.collectors.profiles import load_profiles
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation
from tests.peers import free_port
from tests.test_collectors_mapping import VIETLOA, from_json

REGISTRY = load_profiles()
PROFILE = REGISTRY.get("vietloa-ip200-http")
TEN_MB = 10 * 1024 * 1024


class Device:
    """A fake device's web server: routes for each way of answering, and what it managed to send."""

    def __init__(self, other_host: str = "127.0.0.2", other_port: int = 0) -> None:
        self.streamed = 0
        self.stream_error: str | None = None
        self.stream_started = False
        self.stream_ended = asyncio.Event()
        self.hits: list[str] = []
        self.other = f"http://{other_host}:{other_port}"

    def app(self) -> web.Application:
        app = web.Application()
        routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "/status": self.status,
            "/slow": self.slow,
            "/big": self.big,
            "/big-declared": self.big_declared,
            "/redirect-same": self.redirect_same,
            "/redirect-other": self.redirect_other,
            "/redirect-loop": self.redirect_loop,
            "/error": self.error,
            "/not-json": self.not_json,
            "/wrong-types": self.wrong_types,
        }
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        app.middlewares.append(self.record)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        self.hits.append(request.path)
        return await handler(request)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(VIETLOA)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3)  # longer than the poller's timeout
        return web.json_response(VIETLOA)

    async def big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to warn the client
        await response.prepare(request)
        self.stream_started = True
        chunk = b" " * 65536
        try:
            while self.streamed < TEN_MB:
                await response.write(chunk)
                self.streamed += len(chunk)
        except (ConnectionError, OSError) as exc:
            self.stream_error = type(exc).__name__
        except asyncio.CancelledError:
            self.stream_error = "cancelled: the client disconnected"  # aiohttp's handler_cancellation
            raise
        finally:
            self.stream_ended.set()
        return response

    async def big_declared(self, request: web.Request) -> web.Response:
        return web.Response(body=b"{" + b" " * TEN_MB + b"}", content_type="application/json")

    async def redirect_same(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/status")

    async def redirect_other(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{self.other}/status")

    async def redirect_loop(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/redirect-loop")

    async def error(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="internal error")

    async def not_json(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>It works!</body></html>", content_type="text/html")

    async def wrong_types(self, request: web.Request) -> web.Response:
        return web.json_response({**VIETLOA, "temp": "hot"})


@asynccontextmanager
async def serve(
    app: web.Application, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def target(url: str, port: int | None = None) -> PollTarget:
    return PollTarget(1, "06613-CL01", "http", url, port, PROFILE.name, None, 60)


async def poll_paths(*paths: str, timeout_s: float = 0.5, device: Device | None = None) -> dict[str, Observation]:
    device = device or Device()
    other = Device()
    async with serve(other.app(), "127.0.0.2") as other_port:
        device.other = f"http://127.0.0.2:{other_port}"
        async with serve(device.app()) as port, HttpPoller(timeout_s=timeout_s) as poller:
            results = await asyncio.gather(
                *(poller.poll(target(f"http://127.0.0.1:{port}{p}"), PROFILE) for p in paths)
            )
            assert other.hits == [], "the collector must never be sent to another host"
            if device.stream_started:  # let the streaming handler notice the dropped connection
                await asyncio.wait_for(device.stream_ended.wait(), 5)
            return dict(zip(paths, results, strict=True))


def kind(observation: Observation) -> str:
    return "ok" if observation.reachable else (observation.error or "").split(":")[0]


def test_a_device_answering_json_is_reachable_with_its_readings() -> None:
    observation = asyncio.run(poll_paths("/status"))["/status"]
    assert observation.reachable and observation.source == "http"
    assert observation.readings["uptime_s"] == 123456 and observation.readings["power"] == "mains"
    assert observation.latency_s is not None and 0 < observation.latency_s < 0.5


def test_each_way_of_failing_has_its_own_kind() -> None:
    results = asyncio.run(poll_paths("/slow", "/error", "/not-json", "/wrong-types"))
    assert {path: kind(o) for path, o in results.items()} == {
        "/slow": "timeout",
        "/error": "http_status",
        "/not-json": "bad_json",
        "/wrong-types": "bad_payload",
    }
    assert results["/error"].error == "http_status: HTTP 500 Internal Server Error"
    assert "temp (temperature_c): expected a number, got string 'hot'" in (results["/wrong-types"].error or "")
    slow = results["/slow"]
    assert slow.latency_s is not None and 0.45 < slow.latency_s < 1.5


def test_a_ten_megabyte_body_is_cut_off_at_the_cap_without_reading_it() -> None:
    device = Device()
    results = asyncio.run(poll_paths("/big", "/big-declared", device=device))
    assert kind(results["/big"]) == "too_large" and "262144-byte cap" in (results["/big"].error or "")
    assert "Content-Length" in (results["/big-declared"].error or "")
    # The connection was dropped: the device could not push its 10 MB (only what socket buffers held).
    assert device.stream_error is not None and device.streamed < TEN_MB


def test_redirects_are_followed_only_to_the_same_host_and_at_most_three_times() -> None:
    device = Device()
    results = asyncio.run(poll_paths("/redirect-same", "/redirect-other", "/redirect-loop", device=device))
    assert kind(results["/redirect-same"]) == "ok"
    assert kind(results["/redirect-other"]) == "redirect_refused"
    assert "another host" in (results["/redirect-other"].error or "") and "127.0.0.2" in (
        results["/redirect-other"].error or ""
    )
    assert results["/redirect-loop"].error == "redirect_refused: more than 3 redirects"
    assert device.hits.count("/redirect-loop") == 4  # the first request and three redirects


def test_a_closed_port_is_refused() -> None:
    async def scenario() -> Observation:
        async with HttpPoller(timeout_s=1) as poller:
            return await poller.poll(target("127.0.0.1", free_port()), PROFILE)

    observation = asyncio.run(scenario())
    assert kind(observation) == "refused" and "refused the connection" in (observation.error or "")


def test_outcomes_and_latencies_are_counted_by_kind() -> None:
    async def scenario() -> HttpPoller:
        device = Device()
        async with serve(device.app()) as port, HttpPoller(timeout_s=0.5) as poller:
            for path in ("/status", "/status", "/error", "/not-json"):
                await poller.poll(target(f"http://127.0.0.1:{port}{path}"), PROFILE)
            return poller

    counters = asyncio.run(scenario()).counters
    assert counters.outcomes() == {("http", "ok"): 2, ("http", "http_status"): 1, ("http", "bad_json"): 1}
    assert counters.latency("http").total == 4


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "device.pem", folder / "device.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_is_verified_by_default_and_an_operator_ca_is_trusted(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def scenario() -> tuple[Observation, Observation]:
        async with serve(Device().app(), ssl_context=server_context) as port:
            url = target(f"https://127.0.0.1:{port}/status")
            async with HttpPoller(timeout_s=2) as default:
                refused = await default.poll(url, PROFILE)
            async with HttpPoller(timeout_s=2, ssl_context=ssl.create_default_context(cafile=str(cert))) as trusting:
                trusted = await trusting.poll(url, PROFILE)
            return refused, trusted

    refused, trusted = asyncio.run(scenario())
    assert kind(refused) == "tls" and "certificate" in (refused.error or "")
    assert trusted.reachable


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("http://127.1.0.5:18080/status", None, "http://127.1.0.5:18080/status"),
        ("http://127.1.0.5/status", 18080, "http://127.1.0.5:18080/status"),
        ("http://127.1.0.5:8080/api/v2", 18080, "http://127.1.0.5:8080/api/v2"),
        ("http://127.1.0.5", None, "http://127.1.0.5/status"),
        ("127.1.0.5", 18080, "http://127.1.0.5:18080/status"),
        ("board.example.vn:8443", None, "http://board.example.vn:8443/status"),
        ("https://board.example.vn/", None, "https://board.example.vn/"),
        ("[::1]", 8080, "http://[::1]:8080/status"),
    ],
)
def test_the_url_comes_from_address_port_and_the_profile_path(address: str, port: int | None, expected: str) -> None:
    assert str(build_url(address, port, "/status")) == expected


@pytest.mark.parametrize("address", ["", "ftp://127.0.0.1/status", "http://", "http://[::1"])
def test_an_unusable_address_is_a_failure_not_a_crash(address: str) -> None:
    with pytest.raises(CollectError):
        build_url(address, None, "/status")

    async def scenario() -> Observation:
        async with HttpPoller() as poller:
            return await poller.poll(target(address), PROFILE)

    assert kind(asyncio.run(scenario())) == "unreachable"


def test_the_sample_json_survives_the_round_trip_exactly() -> None:
    # The same bytes through HTTP and through the pure mapping give the same readings.
    observation = asyncio.run(poll_paths("/status"))["/status"]
    assert dict(observation.readings) == dict(from_json(PROFILE.name, json.dumps(VIETLOA).encode()).readings)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "bad_payload: malformed HTTP answer"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"uptime": 1', "bad_payload: malformed HTTP answer"),
        (b"", "unreachable: the device closed the connection before a complete answer"),
    ],
)
def test_a_device_speaking_broken_http_fails_with_a_reason(reply: bytes, expected: str) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def scenario() -> Observation:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with HttpPoller(timeout_s=2) as poller:
                return await poller.poll(target(f"http://127.0.0.1:{port}/status"), PROFILE)
        finally:
            server.close()
            await server.wait_closed()

    observation = asyncio.run(scenario())
    assert not observation.reachable and (observation.error or "").startswith(expected)
