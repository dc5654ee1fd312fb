"""SIGTERM ends every process of the service within 10 s, whatever it is doing: here, with its database
locked by another connection (a writer stuck on SQLite's busy timeout), and it says what it could not save."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from monitor.config import Settings
from monitor.db import make_engine, session_scope
from monitor.inventory.demo import seed_demo
from tests.conftest import TEST_SECRET
from tests.peers import free_port, stop_process


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "monitor", *command], env=env, stdout=out, stderr=out)


def _ends_within(process: subprocess.Popen[bytes], seconds: float, log: Path) -> float:
    began = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        stop_process(process, grace_s=1)
        pytest.fail(f"SIGTERM did not end it within {seconds:g} s:\n{log.read_text(errors='replace')[-3000:]}")
    return time.monotonic() - began


def _sigterm_while_locked(process: subprocess.Popen[bytes], database: Path | str, log: Path) -> float:
    """Lock the database for writing, let the process's writes queue behind the lock, then SIGTERM it."""
    lock = sqlite3.connect(database, timeout=10)
    lock.execute("BEGIN IMMEDIATE")
    try:
        time.sleep(2)  # its writes are now waiting on the lock
        return _ends_within(process, 10, log)
    finally:
        lock.rollback()
        lock.close()


def _environment(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return env | {
        "MONITOR_DATABASE_URL": settings.effective_database_url,
        "MONITOR_DATA_DIR": str(tmp_path),
        "MONITOR_SECRET_KEY": TEST_SECRET,
        "MONITOR_HOST": "127.0.0.1",
    }


@pytest.mark.parametrize("command", [["collect"], ["dispatch"]], ids=["collect", "dispatch"])
def test_sigterm_ends_the_process_within_ten_seconds_while_its_database_is_locked(
    command: list[str], sqlite_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_settings)
    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
    engine.dispose()
    env = _environment(sqlite_settings, tmp_path)
    if command == ["collect"]:
        command = [*command, "--metrics-port", str(free_port())]
        env["MONITOR_HTTP_TIMEOUT_S"] = "0.5"  # nothing answers: polls fail fast and queue up
    log = tmp_path / "process.log"
    process = _start(command, env, log)
    try:
        time.sleep(4)
        assert process.poll() is None, log.read_text(errors="replace")
        took = _sigterm_while_locked(process, sqlite_settings.effective_database_url.removeprefix("sqlite:///"), log)
    finally:
        stop_process(process)
    assert took < 10
    text = log.read_text(errors="replace")
    assert "SIGTERM received: stopping" in text


def test_the_demo_stops_within_ten_seconds_on_sigterm_while_its_database_is_locked(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "demo.log"
    process = _start(["demo", "--port", str(port), "--seed", "3", "--no-history"], env, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        time.sleep(3)  # the fleet answers, the collector saves
        took = _sigterm_while_locked(process, tmp_path / "data" / "monitor.db", log)
    finally:
        stop_process(process)
    assert took < 10
    text = log.read_text(errors="replace")
    assert "SIGTERM received: stopping" in text
    assert "Traceback" not in text, text[-3000:]
