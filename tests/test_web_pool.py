"""`monitor serve --workers N`: several web processes on one port, supervised (monitor.runtime.run_web_pool).

Real processes on loopback: the supervisor and its spawned workers on a SQLite file. A session made through
one worker is good on every worker (the state is in the database); a worker killed with -9 is replaced and
the port keeps answering; SIGTERM ends them all in order; a supervisor killed with -9 leaves no worker behind.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.auth.cast import seed_cast
from monitor.config import load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.inventory.demo import seed_demo
from tests.peers import free_port, stop_process

SECRET = "web-pool-test-secret-not-a-placeholder"


@dataclass
class Pool:
    process: subprocess.Popen[str]
    base: str
    log: Path


def _children(pid: int) -> list[int]:
    """The supervisor's web workers (its spawned children but multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat  # a zombie has ended


def _wait(condition: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Pool]:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    engine = make_engine(load_settings(database_url=url))
    upgrade(engine)
    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
        seed_cast(session=session)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {
        "MONITOR_DATABASE_URL": url,
        "MONITOR_DATA_DIR": str(tmp_path),
        "MONITOR_SECRET_KEY": SECRET,
        "MONITOR_PORT": str(port),
        "MONITOR_COOKIE_SECURE": "false",
        "MONITOR_SHUTDOWN_TIMEOUT_S": "5",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: len(_children(process.pid)) == 2, 30, "two workers started")
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Pool(process, base, log)
    finally:
        workers = _children(process.pid)
        stop_process(process, grace_s=10)
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _signed_in(base: str) -> str:
    answer = httpx.post(f"{base}/api/v1/auth/login", json={"username": "caoloc", "password": "demo-password"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_a_session_is_good_on_every_worker_and_a_killed_worker_is_replaced(pool: Pool) -> None:
    token = _signed_in(pool.base)
    cookies = {"monitor_session": token}
    for _ in range(30):  # a new connection each time: the kernel hands them to either worker
        page = httpx.get(f"{pool.base}/tickets", cookies=cookies)
        assert page.status_code == 200 and "Cao Lộc" in page.text

    victim, survivor = _children(pool.process.pid)
    os.kill(victim, signal.SIGKILL)
    for _ in range(20):  # the survivor answers meanwhile
        assert httpx.get(f"{pool.base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    _wait(lambda: len(_children(pool.process.pid)) == 2, 15, "the killed worker replaced")
    assert survivor in _children(pool.process.pid) and victim not in _children(pool.process.pid)
    assert "ended (code -9): starting it again" in pool.log.read_text()
    assert pool.process.poll() is None


def test_sigterm_ends_the_supervisor_and_every_worker(pool: Pool) -> None:
    workers = _children(pool.process.pid)
    pool.process.send_signal(signal.SIGTERM)
    assert pool.process.wait(timeout=15) == 0
    _wait(lambda: not any(_alive(pid) for pid in workers), 5, "every worker ended")


def test_a_worker_ends_by_itself_when_its_supervisor_is_killed(pool: Pool) -> None:
    workers = _children(pool.process.pid)
    pool.process.kill()
    pool.process.wait(timeout=5)
    _wait(lambda: not any(_alive(pid) for pid in workers), 10, "the orphaned workers stopped")
    assert "supervisor" in pool.log.read_text() and "is gone: stopping" in pool.log.read_text()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_target = os.readlink(fd) if fd.is_symlink() else ""
        if with_target.startswith("socket:["):
            inodes.add(with_target[8:-1])
    return inodes


def _port_sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on this local port in this state (/proc/net/tcp: 0A listening, 01 established)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return found


def test_keep_alive_connections_are_spread_over_the_workers(pool: Pool) -> None:
    """Each worker listens with its own socket (SO_REUSEPORT): a burst of 40 keep-alive connections is shared,
    not taken by the first worker to wake (on one shared socket: 46 of 50 on one worker, bench/bench_ui.py)."""
    port = int(pool.base.rsplit(":", 1)[1])
    workers = _children(pool.process.pid)
    _wait(lambda: len(_port_sockets(port, "0A")) == 2, 30, "both workers listening")
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:
        for connection in connections:  # one request each, so that a worker has accepted it
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for connection in connections:
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        established = _port_sockets(port, "01")
        held = {pid: len(_socket_inodes(pid) & established) for pid in workers}
        # (the balance may have closed a few after their answer: monitor.web.balance, the next test)
        assert sum(held.values()) >= 30, held
        assert min(held.values()) >= 8, held  # binomial(40, 1/2) below 8: about 1 in 100,000
    finally:
        for connection in connections:
            connection.close()


def test_a_lopsided_split_of_connections_is_evened_out(pool: Pool) -> None:
    """A worker holding more than its share closes a connection after a response now and then
    (monitor.web.balance): clients that keep reconnecting end up split evenly, whatever the kernel's hash did."""
    port = int(pool.base.rsplit(":", 1)[1])
    workers = _children(pool.process.pid)
    _wait(lambda: len(_port_sockets(port, "0A")) == 2, 30, "both workers listening")
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(40)]
    closed = 0
    try:
        for _ in range(30):  # rounds of one request per client; http.client reconnects after a close
            for client in clients:
                client.request("GET", "/healthz")
                answer = client.getresponse()
                answer.read()
                assert answer.status == 200
                closed += answer.getheader("connection", "") == "close"
            established = _port_sockets(port, "01")
            held = sorted(len(_socket_inodes(pid) & established) for pid in workers)
            if sum(held) == 40 and held[1] - held[0] <= 2:
                break
            time.sleep(0.1)
        assert sum(held) == 40 and held[1] - held[0] <= 2, held
    finally:
        for client in clients:
            client.close()
    assert closed < 40  # it moved a few connections, not all of them
