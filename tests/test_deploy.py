"""Deployment files: docker-compose.yml, the Dockerfile and the systemd units.

No container engine runs on the test machine: the compose file is checked for what can be checked without
one (it parses, every file it mounts exists, every command it runs is a real `monitor` command, and the
addresses Prometheus and Alertmanager use match its services). The systemd units are checked by
`systemd-analyze verify` (with the program path replaced, as /opt/monitor is not installed here).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.metrics import collector_metrics_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
UNITS = ROOT / "deploy" / "systemd"


def monitor_services() -> dict[str, Any]:
    """The services that run this project's image."""
    return {name: s for name, s in SERVICES.items() if s.get("build") == "."}


def test_the_compose_file_has_every_part_of_the_service() -> None:
    expected = {"db", "mosquitto", "web", "prometheus", "alertmanager", "grafana"}
    expected |= {"collector-0", "collector-1", "collector-2", "dispatcher-0", "dispatcher-1"}
    assert expected <= set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["trial"] and SERVICES["trial-seed"]["profiles"] == ["trial"]
    assert all("profiles" not in SERVICES[name] for name in expected)


def test_every_file_the_compose_file_mounts_exists() -> None:
    mounted = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "/")):
                mounted.append((name, source))
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file()
    assert len(mounted) >= 5
    for volume in {v.split(":", 1)[0] for s in SERVICES.values() for v in s.get("volumes", [])}:
        assert volume.startswith(("./", "/")) or volume in COMPOSE["volumes"], volume


def test_every_command_the_compose_file_runs_is_a_monitor_command() -> None:
    runner = CliRunner()
    for name, service in monitor_services().items():
        command = service.get("command") or []
        if service.get("entrypoint") or not command:
            continue
        words = [w for w in command if not w.startswith("-")][:2]
        result = runner.invoke(app, [*words[: 2 if words[0] in ("db", "simulate") else 1], "--help"])
        assert result.exit_code == 0, f"{name}: monitor {' '.join(command)}: {result.output}"


def test_prometheus_and_alertmanager_reach_the_services_where_compose_runs_them() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["fleet-web"]["static_configs"][0]["targets"] == ["web:8000"]
    assert "8000:8000" in SERVICES["web"]["ports"]
    targets = yaml.safe_load((ROOT / "deploy" / "prometheus" / "targets" / "collectors.yml").read_text())
    collectors = [name for name in SERVICES if re.fullmatch(r"collector-\d+", name)]
    expected = []
    assert len(collectors) == 3
    for name in collectors:  # the pool: each its own name and metrics port
        assert SERVICES[name]["network_mode"] == "service:collectors"
        command = SERVICES[name]["command"]
        assert "--shard" not in command and command[command.index("--name") + 1] == name
        index = int(name.rsplit("-", 1)[1])
        assert command[command.index("--metrics-port") + 1] == str(collector_metrics_port(index))
        expected.append(f"collectors:{collector_metrics_port(index)}")
    assert sorted(targets[0]["targets"]) == sorted(expected)
    web = SERVICES["web"]["command"]
    assert web[web.index("--workers") + 1] == "2" and "--no-dispatcher" in web
    assert [SERVICES[f"dispatcher-{i}"]["command"] for i in (0, 1)] == [["dispatch"], ["dispatch"]]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    alertmanager = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    webhook = alertmanager["receivers"][0]["webhook_configs"][0]
    assert webhook["url"] == "http://web:8000/api/v1/integrations/alertmanager"
    secret = SERVICES["alertmanager"]["secrets"][0]
    assert webhook["http_config"]["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert COMPOSE["secrets"][secret]["environment"] == "MONITOR_ALERTMANAGER_TOKEN"
    assert SERVICES["prometheus"]["secrets"] == ["metrics_token"]
    assert COMPOSE["secrets"]["metrics_token"]["environment"] == "MONITOR_METRICS_TOKEN"
    for job in ("fleet-web", "fleet-collector"):
        assert jobs[job]["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    retention = [a for a in SERVICES["prometheus"]["command"] if a.startswith("--storage.tsdb.retention.time=")]
    assert retention == ["--storage.tsdb.retention.time=400d"], "the 365-day uptime rules need a year of data"


def test_secrets_come_from_the_environment_and_are_required() -> None:
    environment = SERVICES["web"]["environment"]
    for name in ("MONITOR_SECRET_KEY", "MONITOR_ALERTMANAGER_TOKEN", "MONITOR_METRICS_TOKEN"):
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", environment[name]), environment[name]
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    for variable in re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()):
        assert f"\n{variable}=" in f"\n{example}", f"{variable} is missing from deploy/compose.env.example"


def test_the_image_installs_the_locked_dependencies_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["monitor"]' in dockerfile


def read_unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)  # units repeat some keys
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.parametrize("name", ["monitor-web.service", "monitor-collector@.service", "monitor-dispatcher@.service"])
def test_the_systemd_units_run_as_monitor_with_the_environment_file_and_hardening(name: str) -> None:
    service = read_unit(UNITS / name)["Service"]
    assert service["User"] == "monitor" and service["EnvironmentFile"] == "/etc/monitor/monitor.env"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    if name.startswith("monitor-collector@"):
        assert service["ExecStart"].endswith("collect --name %H-%i --metrics-port 918%i")
        assert "MONITOR_COLLECTOR_SHARDS=" in (UNITS / "monitor.env.example").read_text()
    if name.startswith("monitor-dispatcher@"):
        assert service["ExecStart"].endswith("monitor dispatch")


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed: run scripts/ensure-debs (Debian package systemd)")
    for unit in UNITS.glob("*.service"):
        text = unit.read_text().replace("/opt/monitor/venv/bin/monitor", "/bin/true")
        text = text.replace("EnvironmentFile=/etc/monitor/monitor.env", "EnvironmentFile=-/etc/monitor/monitor.env")
        (tmp_path / unit.name.replace("@.", "@0.")).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_the_readme_says_how_the_deployment_files_are_tested() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker-compose.yml" in readme and "No container engine runs" in readme
