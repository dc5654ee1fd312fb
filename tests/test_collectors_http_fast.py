"""The plain-http fast path of HttpPoller (monitor/collectors/http_fast.py) against raw sockets on loopback.

Each device here is a bare asyncio server that writes exactly the bytes a test gives it, so every framing of an
answer (Content-Length, chunked, close-delimited) and every way of breaking one is exercised on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop
from yarl import URL

from monitor.collectors.http import HttpPoller
from monitor.collectors.http_fast import FastHttp
from monitor.collectors.target import PollTarget
from monitor.health.machine import Observation
from tests.peers import free_port
from tests.test_collectors_mapping import VIETLOA

PROFILE_NAME = "vietloa-ip200-http"
BODY = json.dumps(VIETLOA).encode()


class RawDevice:
    """Answers every connection with `reply(path)`: a list of byte strings (written with a short pause between
    them), then closes unless `hang` (keeps the connection open, reading nothing)."""

    def __init__(self, replies: dict[str, list[bytes]], hang: bool = False) -> None:
        self.replies = replies
        self.hang = hang
        self.requests: list[bytes] = []
        self.write_error: str | None = None
        self.written = 0
        self.ended = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            path = head.split(b" ")[1].decode()
            for part in self.replies.get(path, [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]):
                writer.write(part)
                await writer.drain()
                self.written += len(part)
                await asyncio.sleep(0.005)
            if self.hang:
                await asyncio.sleep(10)
        except (ConnectionError, OSError) as exc:
            self.write_error = type(exc).__name__
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()
            self.ended.set()


@asynccontextmanager
async def raw_device(device: RawDevice) -> AsyncIterator[int]:
    server = await asyncio.start_server(device.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in asyncio.all_tasks():  # handlers still hanging
            if task is not asyncio.current_task() and task.get_coro().__qualname__ == "RawDevice.handle":  # type: ignore[union-attr]
                task.cancel()


LOOPS: dict[str, Any] = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
_loop_factory: list[Any] = [asyncio.new_event_loop]


@pytest.fixture(autouse=True, params=sorted(LOOPS))
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test on both loops: the service runs on uvloop, whose transports are not asyncio's."""
    _loop_factory[0] = LOOPS[request.param]
    yield request.param
    _loop_factory[0] = asyncio.new_event_loop


T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_loop_factory[0]) as runner:
        return runner.run(coroutine)


def target(url: str, port: int | None = None) -> PollTarget:
    return PollTarget(1, "06613-CL01", "http", url, port, PROFILE_NAME, None, 60)


class AiohttpSpy:
    """Counts the requests that went through aiohttp (the fast path must leave it alone)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.urls: list[str] = []
        original = aiohttp.ClientSession._request
        spy = self

        async def counting(session: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
            spy.urls.append(str(url))
            return await original(session, method, url, *args, **kwargs)

        monkeypatch.setattr(aiohttp.ClientSession, "_request", counting)


@pytest.fixture
def aiohttp_spy(monkeypatch: pytest.MonkeyPatch) -> AiohttpSpy:
    return AiohttpSpy(monkeypatch)


def poll(device: RawDevice, path: str = "/status", **poller_args: Any) -> Observation:
    from monitor.collectors.profiles import load_profiles

    profile = load_profiles().get(PROFILE_NAME)

    async def scenario() -> Observation:
        async with raw_device(device) as port, HttpPoller(**{"timeout_s": 1.0, **poller_args}) as poller:
            observation = await poller.poll(target(f"http://127.0.0.1:{port}{path}"), profile)
            assert poller.counters.outcome("http", kind(observation)) == 1
            if not device.hang:  # let the handler see what the poller did to the connection
                await asyncio.wait_for(device.ended.wait(), 5)
            return observation

    return run(scenario())


def kind(observation: Observation) -> str:
    return "ok" if observation.reachable else (observation.error or "").split(":")[0]


def ok_head(*headers: str) -> bytes:
    return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + "".join(f"{h}\r\n" for h in headers)).encode()


def chunked(body: bytes, size: int = 7) -> list[bytes]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param([ok_head(f"Content-Length: {len(BODY)}", "") + BODY], id="content-length"),
        pytest.param([ok_head(f"Content-Length: {len(BODY)}", ""), BODY[:10], BODY[10:]], id="content-length-split"),
        pytest.param([ok_head("Transfer-Encoding: chunked", ""), *chunked(BODY)], id="chunked"),
        pytest.param([ok_head(""), BODY[:20], BODY[20:]], id="close-delimited"),
        pytest.param([ok_head(f"Content-Length: {len(BODY)}", "") + BODY + b"\x00junk after"], id="then-junk"),
        pytest.param([ok_head("Transfer-Encoding: chunked", ""), b"".join(chunked(BODY, 1))], id="one-byte-chunks"),
        pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n", ok_head(f"Content-Length: {len(BODY)}", "") + BODY], id="1xx"),
    ],
)
def test_every_framing_of_a_body_is_read_on_the_fast_path(reply: list[bytes], aiohttp_spy: AiohttpSpy) -> None:
    device = RawDevice({"/status": reply})
    observation = poll(device)
    assert kind(observation) == "ok" and observation.readings["uptime_s"] == 123456
    assert aiohttp_spy.urls == []
    head = device.requests[0].decode()
    assert head.startswith("GET /status HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "User-Agent: lang-son-fleet-monitor\r\n" in head and "Accept: application/json\r\n" in head
    assert "Connection: close\r\n" in head


def test_a_body_over_the_cap_is_cut_off_without_reading_the_rest(aiohttp_spy: AiohttpSpy) -> None:
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    device = RawDevice({"/big": [ok_head("Transfer-Encoding: chunked", ""), *[chunk] * 160]})  # 10 MiB
    observation = poll(device, "/big", max_body_bytes=1000)
    assert observation.error == "too_large: body over the 1000-byte cap (stopped reading)"
    assert device.write_error is not None and device.written < 10 * 65536
    assert aiohttp_spy.urls == []


def test_a_declared_length_over_the_cap_is_refused_before_the_body() -> None:
    device = RawDevice({"/big": [ok_head("Content-Length: 10485760", "") + b" " * 1000]})
    observation = poll(device, "/big", max_body_bytes=1000)
    assert observation.error == "too_large: Content-Length 10485760 is over the 1000-byte cap"


def test_a_device_that_never_answers_times_out_at_the_deadline() -> None:
    device = RawDevice({"/status": []}, hang=True)
    started = time.perf_counter()
    observation = poll(device, timeout_s=0.3)
    assert observation.error == "timeout: no complete answer within 0.3 s"
    assert 0.25 < time.perf_counter() - started < 1.5


def test_headers_without_an_end_time_out_too() -> None:
    device = RawDevice({"/status": [b"HTTP/1.1 200 OK\r\nContent-Le"]}, hang=True)
    assert poll(device, timeout_s=0.3).error == "timeout: no complete answer within 0.3 s"


def test_a_closed_port_is_refused_on_the_fast_path(aiohttp_spy: AiohttpSpy) -> None:
    from monitor.collectors.profiles import load_profiles

    async def scenario() -> Observation:
        async with HttpPoller(timeout_s=1) as poller:
            return await poller.poll(target("127.0.0.1", free_port()), load_profiles().get(PROFILE_NAME))

    observation = run(scenario())
    assert kind(observation) == "refused" and "refused the connection" in (observation.error or "")
    assert aiohttp_spy.urls == []


def test_an_error_status_is_http_status_with_its_reason() -> None:
    device = RawDevice({"/status": [b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!"]})
    assert poll(device).error == "http_status: HTTP 500 Internal Server Error"
    device = RawDevice({"/status": [b"HTTP/1.1 304 \r\n\r\n"]})
    assert poll(device).error == "http_status: HTTP 304"


def test_a_redirect_to_the_same_host_is_followed_through_aiohttp(aiohttp_spy: AiohttpSpy) -> None:
    moved = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /v2/status\r\nContent-Length: 0\r\n\r\n"
    device = RawDevice({"/status": [moved], "/v2/status": [ok_head(f"Content-Length: {len(BODY)}", "") + BODY]})
    observation = poll(device)
    assert kind(observation) == "ok"
    assert [r.split(b" ")[1] for r in device.requests] == [b"/status", b"/v2/status"]  # the first hop once
    assert len(aiohttp_spy.urls) == 1 and aiohttp_spy.urls[0].endswith("/v2/status")


def test_a_redirect_to_another_host_is_refused_without_following_it(aiohttp_spy: AiohttpSpy) -> None:
    elsewhere = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:9/status\r\nContent-Length: 0\r\n\r\n"
    observation = poll(RawDevice({"/status": [elsewhere]}))
    assert kind(observation) == "redirect_refused" and "another host" in (observation.error or "")
    assert aiohttp_spy.urls == []
    no_location = poll(RawDevice({"/status": [b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"]}))
    assert no_location.error == "http_status: HTTP 302 redirect without a Location"


@pytest.mark.parametrize(
    ("reply", "hang", "expected"),
    [
        ([b"\x00\x01garbage\xff\r\n\r\n"], False, "bad_payload: malformed HTTP answer"),
        ([b"SSH-2.0-OpenSSH_9.2\r\n"], True, "bad_payload: malformed HTTP answer"),  # fails at once, no timeout
        ([b"HTTP/1.1 OK 200\r\n\r\n"], False, "bad_payload: malformed HTTP answer"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n{}"], False, "bad_payload: malformed HTTP answer"),
        ([b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n{}"], False, "bad_payload: malformed HTTP answer"),
        ([ok_head("Transfer-Encoding: chunked", ""), b"zz\r\n"], False, "bad_payload: malformed HTTP answer"),
        ([ok_head("Content-Length: 100", ""), b'{"uptime": 1'], False, "bad_payload: malformed HTTP answer"),
        ([ok_head("Transfer-Encoding: chunked", ""), b"5\r\nabc"], False, "bad_payload: malformed HTTP answer"),
        ([ok_head("Content-Length: 3", "Content-Length: 4", ""), b"abc"], False, "bad_payload: malformed HTTP"),
        ([b"HTTP/1.1 200 OK\r\nContent-Ty"], False, "unreachable: the device closed the connection before"),
        ([b"HTT"], False, "unreachable: the device closed the connection before"),
        ([], False, "unreachable: the device closed the connection before"),
        ([ok_head(""), b"<html>It works!</html>"], False, "bad_json: not JSON"),
    ],
)
def test_broken_http_is_a_failure_with_a_reason_never_an_exception(
    reply: list[bytes], hang: bool, expected: str
) -> None:
    started = time.perf_counter()
    observation = poll(RawDevice({"/status": reply}, hang=hang), timeout_s=2.0)
    assert (observation.error or "").startswith(expected), observation.error
    assert time.perf_counter() - started < 1.5


def test_a_compressed_body_is_left_to_aiohttp_which_decodes_it(aiohttp_spy: AiohttpSpy) -> None:
    packed = gzip.compress(BODY)
    reply = [ok_head("Content-Encoding: gzip", f"Content-Length: {len(packed)}", "") + packed]
    observation = poll(RawDevice({"/status": reply}))
    assert kind(observation) == "ok" and len(aiohttp_spy.urls) == 1


@pytest.mark.parametrize(
    ("url", "fast"),
    [
        ("http://127.1.0.5:18080/status", True),
        ("http://10.0.0.1/status?x=1", True),
        ("https://127.1.0.5/status", False),
        ("http://board.example.vn/status", False),
        ("http://[::1]:8080/status", False),
        ("http://user:secret@127.1.0.5/status", False),
        ("http://999.1.0.5/status", False),
    ],
)
def test_only_plain_http_to_an_ipv4_address_takes_the_fast_path(url: str, fast: bool) -> None:
    async def route() -> tuple[str, int, bytes] | None:
        return FastHttp(user_agent="ua", timeout_s=1, max_body_bytes=10, limit=1).route(URL(url))

    routed = run(route())
    assert (routed is not None) == fast
    if url == "http://10.0.0.1/status?x=1":
        assert routed == (
            "10.0.0.1",
            80,
            b"GET /status?x=1 HTTP/1.1\r\nHost: 10.0.0.1\r\n"
            b"User-Agent: ua\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        )
