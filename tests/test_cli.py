"""The `monitor` command as a user runs it: in-process for the quick ones, a real process for the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import head_revision
from tests.conftest import TEST_SECRET
from tests.postgres import free_port

EXAMPLE = Path(__file__).parent.parent / "examples" / "fleet.csv"


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_help_explains_the_commands(run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "serve", "db", "fleet"):
        assert command in result.output


def test_a_new_database_is_upgraded_then_the_province_and_a_fleet_are_loaded(run, tmp_path: Path) -> None:
    assert run("db", "current").exit_code == 1
    assert f"empty -> {head_revision()}" in run("db", "upgrade").output
    assert run("db", "current").exit_code == 0
    assert "11 districts, 200 communes; 211 created" in run("fleet", "init", "--province", "lang-son").output
    assert "0 created, 0 updated" in run("fleet", "init").output
    result = run("fleet", "import", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "4 created, 0 updated, 0 unchanged" in result.output
    assert "0 created, 0 updated, 4 unchanged" in run("fleet", "import", str(EXAMPLE)).output
    exported = tmp_path / "out.yaml"
    assert run("fleet", "export", "--format", "yaml", "-o", str(exported)).exit_code == 0
    assert "0 created, 0 updated, 4 unchanged" in run("fleet", "import", str(exported)).output

    # the province at a glance: 11 districts and a total, the 4 devices never heard yet
    lines = run("status").output.splitlines()
    assert lines[0].split()[:7] == ["district", "unknown", "up", "degraded", "down", "maintenance", "tickets"]
    assert len(lines) == 1 + 11 + 1
    assert lines[-1].split() == ["total", "4", "0", "0", "0", "0", "0"]
    assert any(line.split()[0] == "189" and line.endswith("Huyện Đình Lập") for line in lines)


def test_a_fleet_file_with_errors_is_refused_whole_with_one_line_per_problem(run, tmp_path: Path) -> None:
    run("db", "upgrade")
    run("fleet", "init")
    bad = tmp_path / "bad.csv"
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",06613,", ",00000,")  # unknown commune
    lines[4] = lines[4].replace(",120,", ",5,")  # interval too short
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("fleet", "import", str(bad))
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith(str(bad))]
    assert any(f"{bad}:3: commune_code: unknown commune '00000'" == p for p in problems)
    assert any(p.startswith(f"{bad}:5: interval_s:") for p in problems)
    assert "nothing was written" in result.output
    assert run("fleet", "export").output.count("\n") == 1  # the header only


def test_commands_refuse_a_database_that_is_not_migrated(run) -> None:
    result = run("fleet", "init")
    assert result.exit_code == 2
    assert "run `monitor db upgrade`" in result.output


def test_serve_refuses_placeholder_secrets(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_SECRET_KEY", "change-me")
    result = run("serve")
    assert result.exit_code == 2
    assert "MONITOR_SECRET_KEY" in result.output


def test_the_demo_serves_the_province_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", "--port", str(port), "--seed", "3", "--no-history"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                signed_in = httpx.post(
                    f"{base}/api/v1/auth/login", json={"username": "lanhdao", "password": "demo-password"}, timeout=2
                )
                headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
                districts = httpx.get(f"{base}/api/v1/districts", headers=headers, timeout=2).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the demo did not answer within 60 s"
                time.sleep(0.2)
        assert len(districts) == 11
        assert sum(d["commune_count"] for d in districts) == 200
        assert 1500 <= sum(d["device_count"] for d in districts) <= 2000
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/docs" in output
    assert (tmp_path / "data" / "monitor.db").exists()


def test_users_are_added_listed_and_their_password_changed(run, monkeypatch: pytest.MonkeyPatch) -> None:
    run("db", "upgrade")
    run("fleet", "init")
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "users",
            "add",
            "tech1",
            "--name",
            "Kỹ thuật viên",
            "--role",
            "technician",
            "--district",
            "183",
            "--password-stdin",
        ],
        input="a-long-password\n",
    )
    assert added.exit_code == 0, added.output
    listed = run("users", "list").output
    assert "tech1\ttechnician\t183" in listed and "password" not in listed
    refused = runner.invoke(
        app, ["users", "add", "x", "--name", "X", "--role", "officer", "--password-stdin"], input="short\n"
    )
    assert refused.exit_code == 1 and "district_code" in refused.output and "password" in refused.output
    changed = runner.invoke(app, ["users", "passwd", "tech1", "--password-stdin"], input="another-long-one\n")
    assert changed.exit_code == 0


def test_a_heartbeat_token_is_issued_once_and_only_its_hash_is_kept(run) -> None:
    run("db", "upgrade")
    run("fleet", "init")
    run("fleet", "import", str(EXAMPLE))
    token = run("fleet", "token", "06613-BB1").output.strip()
    assert len(token) >= 32
    assert token not in run("fleet", "export").output
    assert run("fleet", "token", "NOPE").exit_code == 1
